"""The settings each framework offers, as the convention tests and bench/conventions_agreement.py
sweep them, and one comparison of quantcalc's convention against the framework itself."""

import numpy as np

from quantcalc.engine.analysis import analyze
from quantcalc.engine.config import Config
from tests.support import framework_refs as refs


def _int_cases(convention, modes, calibrations, narrow_for, granularities=("tensor", "channel")):
    cases = []
    for bits in (4, 8):
        for mode in modes:
            narrows = narrow_for(bits, mode)
            for narrow in narrows:
                for calibration in calibrations:
                    for granularity in granularities:
                        if granularity == "channel" and calibration != "minmax":
                            continue
                        case = {"convention": convention, "bits": bits, "mode": mode,
                                "narrow_range": narrow, "calibration": calibration,
                                "granularity": granularity}
                        if calibration == "percentile":
                            case["percentile"] = 99.9
                        if calibration == "custom":
                            case.update(range_min=-1.5, range_max=2.0)
                        cases.append(case)
    return cases


CASES = {
    "pytorch": _int_cases(
        "pytorch", ("symmetric", "asymmetric"), ("minmax", "custom"),
        lambda bits, mode: (False, True) if mode == "symmetric" else (False,))
    + [{"convention": "pytorch", "bits": bits, "mode": mode, "narrow_range": narrow,
        "calibration": "mse"}  # HistogramObserver: quint8 / qint8, reduce_range, 4 bits
       for bits, mode, narrow in ((8, "asymmetric", False), (7, "asymmetric", False),
                                  (4, "asymmetric", False), (8, "symmetric", False),
                                  (8, "symmetric", True), (7, "symmetric", False))]
    + [{"convention": "pytorch", "format": fp8, "granularity": granularity, **axis}
       for fp8 in ("fp8_e4m3", "fp8_e5m2")  # torchao float8: tensorwise, rowwise
       for granularity, axis in (("tensor", {}), ("channel", {}), ("channel", {"axis": 1}))],
    "onnxruntime": _int_cases(
        "onnxruntime", ("symmetric", "asymmetric"), ("minmax", "percentile", "entropy", "custom"),
        lambda bits, mode: (bits == 8,) if mode == "symmetric" else (False,)),
    "tensorrt": _int_cases(
        "tensorrt", ("symmetric",), ("minmax", "percentile", "entropy", "mse", "custom"),
        lambda bits, mode: (False, True)),
}
REFERENCES = {"pytorch": refs.pytorch, "onnxruntime": refs.onnxruntime,
              "tensorrt": refs.modelopt}


def name(case) -> str:
    return ",".join(f"{k}={v}" for k, v in case.items() if k != "convention")


def compare(x, case):
    """(ours, the framework's): each (codes, scale, zero_point, dequantized as float32)."""
    cfg = Config(**case)
    result = analyze(x, cfg, keep=x.size)
    pv = result.per_value
    ours = (pv.codes.astype(np.int64), result.params.scale, result.params.zero_point,
            pv.dequantized.astype(np.float32))
    if cfg.format != "int":
        theirs = refs.torchao_float8(x, cfg)
    else:
        theirs = REFERENCES[cfg.convention](x, cfg)
    theirs = (np.asarray(theirs[0]).reshape(-1), np.asarray(theirs[1], np.float64).reshape(-1),
              np.asarray(theirs[2]).astype(np.int64).reshape(-1),
              np.asarray(theirs[3], np.float32).reshape(-1))
    return ours, theirs


def assert_identical(x, case):
    """Our codes, scale, zero point and reconstruction equal the framework's bit for bit (NaN
    equal to NaN), or the first places that differ are named."""
    ours, theirs = compare(x, case)
    for what, a, b in zip(("codes", "scale", "zero point", "reconstruction"), ours, theirs):
        assert a.shape == b.shape, (what, a.shape, b.shape)
        same = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b
        assert same.all(), (f"{what} differ at {np.flatnonzero(~same)[:5]}: "
                            f"ours {a[~same][:3]}, theirs {b[~same][:3]}")
