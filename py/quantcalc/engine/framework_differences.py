"""Why do they differ? The same settings under every framework convention, side by side with
quantcalc's exact arithmetic: each one's scale and zero point, how many codes differ from
exact's and why, and the SQNR each gives.

Why a code differs, checked in this order for the segment it is in:
  calibration  the framework's calibrator chose another range (ONNX Runtime's percentile edge,
               ModelOpt's histogram search, PyTorch's HistogramObserver L2 search)
  floor        the framework replaced a scale too small to use (PyTorch raises it to float32
               eps, ONNX Runtime sets 1, ModelOpt zeroes an amax <= 2^-24)
  scale_rule   the same range gives another scale or zero point (PyTorch's amax / 127.5)
  float32      the same rule in float32: the scale rounded to float32, or x · (1 / scale)
               rounded in float32 landing on the other side of a half (a tie)
"""

import numpy as np

from quantcalc.engine.analysis import DEFAULT_KEEP, analyze
from quantcalc.engine.config import Config
from quantcalc.errors import QuantcalcError
from quantcalc.formats import conventions

REASONS = ("calibration", "floor", "scale_rule", "float32")
FLOAT32_STEP = 2.0 ** -23  # a scale that moved by less than this, relatively, was only rounded


def differences(values, config: dict, keep: int = DEFAULT_KEEP) -> dict:
    """{"count": values compared, "total": values, "rows": one per convention}; a row holds
    convention, label, and either refused (the reason) and field, or scale, zero_point (the
    first segment's, and segments), codes_differ, reasons {reason: count} and sqnr_db."""
    x = np.asarray(values)
    keep = int(min(x.size, keep))
    given = {k: v for k, v in dict(config).items() if k != "convention"}
    exact = analyze(x, Config.from_dict({**given, "convention": "exact"}), keep=keep)
    segment = _segment_of_each(exact, x.shape, keep)
    rows = []
    for name in conventions.NAMES:
        row = {"convention": name, "label": conventions.LABELS[name]}
        try:
            cfg = Config.from_dict({**given, "convention": name})
        except QuantcalcError as refused:
            rows.append({**row, "refused": refused.message, "field": refused.field})
            continue
        result = exact if name == "exact" else analyze(x, cfg, keep=keep)
        rows.append({**row, **_measured(result, exact, segment)})
    return {"count": keep, "total": int(x.size), "rows": rows}


def _segment_of_each(result, shape, keep):
    """The segment number of each of the first `keep` values."""
    segmentation = result.scheme.segmentation(shape, result.config)
    ids = segmentation.ids(0, keep)
    return np.zeros(keep, np.int64) if ids is None else ids


def _measured(result, exact, segment):
    params, base = result.params, exact.params
    differ = result.per_value.codes != exact.per_value.codes
    reason_of_segment = _segment_reasons(result, exact)
    reasons = dict.fromkeys(REASONS, 0)
    if differ.any():
        counted = np.bincount(reason_of_segment[segment[differ]], minlength=len(REASONS))
        reasons = {reason: int(n) for reason, n in zip(REASONS, counted)}
    zero_point = params.zero_point if result.scheme.has_zero_point else None
    return {"scale": float(params.scale[0]), "segments": int(params.scale.size),
            "zero_point": None if zero_point is None or result.config.format != "int"
            else int(zero_point[0]),
            "codes_differ": int(differ.sum()), "reasons": reasons,
            "sqnr_db": result.metrics["sqnr_db"], "exact_scale": float(base.scale[0])}


def _segment_reasons(result, exact):
    """Each segment's reason (an index into REASONS) should one of its codes differ."""
    params, base = result.params, exact.params
    calibrated = (result.calibrated_min != exact.calibrated_min) | \
        (result.calibrated_max != exact.calibrated_max)
    floored = params.floored | base.floored
    with np.errstate(invalid="ignore", divide="ignore"):
        moved = np.abs(params.scale - base.scale) > base.scale * FLOAT32_STEP
    rule = moved | (params.zero_point != base.zero_point)
    return np.select([calibrated, floored, rule], [0, 1, 2], default=3)
