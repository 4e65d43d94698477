"""What a result means: a plain cue for each headline number, and hints where the data calls
for one.

The cues' thresholds are declared once in schema/grades.py (the page's FAQ lists them). Every
hint is computed from the values: a hint that proposes another setting runs that setting on the
same values and quotes the SQNR it measured and its cost in bits per value, and says nothing
when the other setting would not help. Besides calibrations, the cheap structural changes are
tried (engine/proposals.py: per channel, groups of 128, a block format at about the same bits);
proposals come first, best gain per extra bit first.
"""

import dataclasses
import math

import numpy as np

from quantcalc.engine import analysis, proposals
from quantcalc.errors import QuantcalcError
from quantcalc.schema import grades

OUTLIER_RATIO = 4.0        # |x| max over the 99.9th percentile of |x|: one value sets the range
WIDE_RANGE_RATIO = 2.0     # a custom range this many times wider than the data's
HEAVY_CLIP_RATE = 0.01
WORTH_DB = 1.0             # a proposed setting must gain at least this much SQNR to be proposed
SCALE_SHARE = 0.1          # scales taking this share of the bits per value is worth a word
SMALL_SAMPLE = 4096        # ... when there are fewer values than this
# the headline's names (the page and the PDF show them as given here)
HEADLINE = {"sqnr_db": "SQNR", "rel_rmse": "Relative RMSE", "clip_rate": "Clip rate",
            "bits_per_value": "Bits per value"}


def headline(summary: dict) -> list:
    """The four numbers a result is read by (HEADLINE), each with its label, a level and a
    plain cue."""
    sqnr, rel, rate, bits = (summary[k] for k in ("sqnr_db", "rel_rmse", "clip_rate",
                                                   "bits_per_value"))
    sqnr_level, sqnr_cue = grades.sqnr(sqnr)
    clip_level, clip_cue = grades.clip_rate(rate)
    if rel == 0:
        rel_cue = "no error"
    elif math.isfinite(rel):
        rel_cue = f"the error's RMS is {_percent(rel)} of the values' RMS"
    else:
        rel_cue = "the values are all zero"
    bits_cue = _size_cue(bits)
    graded = {"sqnr_db": (sqnr_level, sqnr_cue), "rel_rmse": (sqnr_level, rel_cue),
              "clip_rate": (clip_level, clip_cue), "bits_per_value": ("info", bits_cue)}
    return [{"key": key, "label": label, "level": graded[key][0], "cue": graded[key][1]}
            for key, label in HEADLINE.items()]


def _size_cue(bits):
    if bits < 16:
        return f"{16 / bits:.1f}× smaller than float16, {32 / bits:.1f}× smaller than float32"
    if bits < 32:
        return f"{32 / bits:.1f}× smaller than float32, larger than float16"
    return "no smaller than float32: the scales cost more than the codes save"


def _percent(fraction):
    return f"{float(f'{fraction * 100:.3g}'):g} %"


def _db(value):
    return "∞" if value == math.inf else f"{value:.1f}"


def _signed_db(value):
    return f"{'+' if value >= 0 else '−'}{_db(abs(value))} dB"


def hints(values, result, importance=None) -> list:
    """Hints for this result, each {"kind", "text"}; [] when nothing calls for one.

    `values` are the analysed values (any shape), `result` their analysis.
    """
    config, metrics = result.config, result.metrics
    found = []
    calibrated = config.applies("calibration")
    if calibrated and config.calibration == "minmax":
        found += _outlier(values, result, importance)
    if calibrated and config.calibration == "custom":
        found += _wide_range(values, result, importance)
    if metrics["clip_rate"] > HEAVY_CLIP_RATE and calibrated and config.calibration != "minmax":
        found += _heavy_clipping(result, values, importance)
    found += proposals.structural(values, result, importance, WORTH_DB)
    found += _partial_blocks(result)
    found += _scale_overhead(result)
    # what to try, measured, best gain per extra bit first; then what the reader should know
    ranked = sorted((h for h in found if "gain_db" in h), key=proposals.rank, reverse=True)
    return ranked + [h for h in found if "gain_db" not in h]


def _sqnr_with(values, config, importance, **changes):
    """The SQNR with other settings, or None where they are refused (a calibration that clips
    a value near 1e160 makes an error float64 cannot square): no hint then, and the result
    the user asked for stands; likewise settings a framework convention does not offer."""
    try:
        other = dataclasses.replace(config, **changes)
        return analysis.analyze(values, other, keep=0, importance=importance).metrics["sqnr_db"]
    except QuantcalcError:
        return None


def _gain(new, old):
    return math.inf if new == math.inf and old != math.inf else new - old


def _outlier(values, result, importance):
    flat = np.asarray(values).reshape(-1)
    amax = max(abs(result.metrics["data_min"]), abs(result.metrics["data_max"]))
    # the 99.9th percentile of |x|, numpy's "lower" method (an actual |x| of the data, so that
    # in a few hundred values the outlier itself does not pull it up by interpolation): the
    # k-th smallest |x|, partitioned in place in one copy of |x| in the values' own float type
    magnitudes = np.abs(flat if flat.dtype.kind == "f" else flat.astype(np.float64))
    k = int(np.floor((flat.size - 1) * 0.999))
    magnitudes.partition(k)
    p999 = float(magnitudes[k])
    del magnitudes
    if not (p999 > 0 and amax >= OUTLIER_RATIO * p999):
        return []
    where = int(np.argmax((flat == amax) | (flat == -amax)))  # the first with that magnitude
    sqnr = result.metrics["sqnr_db"]
    trials = {"Percentile (99.99)": _sqnr_with(values, result.config, importance,
                                               calibration="percentile", percentile=99.99),
              "MSE": _sqnr_with(values, result.config, importance, calibration="mse")}
    trials = {name: s for name, s in trials.items() if s is not None}
    best = max(trials, key=trials.get, default=None)
    if best is None or _gain(trials[best], sqnr) < WORTH_DB:
        return []
    others = ", ".join(f"{name}: {_signed_db(_gain(s, sqnr))}" for name, s in trials.items()
                       if name != best)
    gain = _gain(trials[best], sqnr)
    return [{"kind": "outlier", "gain_db": gain, "extra_bits": 0.0, "text":
             f"One value (index {where}, {_number(flat[where])}) is "
             f"{amax / p999:.1f}× the 99.9th percentile of |x| and sets the range: try "
             f"{best} calibration — SQNR would be {_signed_db(gain)} for "
             f"{proposals.cost(0.0)} ({others})."}]


def _wide_range(values, result, importance):
    metrics = result.metrics
    data_width = metrics["data_max"] - metrics["data_min"]
    lo, hi = float(np.min(result.params.real_min)), float(np.max(result.params.real_max))
    if not (data_width > 0 and hi - lo >= WIDE_RANGE_RATIO * data_width):
        return []
    minmax = _sqnr_with(values, result.config, importance, calibration="minmax",
                        range_min=None, range_max=None)
    if minmax is None:
        return []
    gain = _gain(minmax, metrics["sqnr_db"])
    tail = (f"the values' own min–max range gives SQNR {_signed_db(gain)} for "
            f"{proposals.cost(0.0)}" if gain >= WORTH_DB
            else "yet their own min–max range would not do better")
    return [{"kind": "wide_range", "text":
             f"The range [{_number(lo)}, {_number(hi)}] is {(hi - lo) / data_width:.1f}× wider "
             f"than the data's [{_number(metrics['data_min'])}, {_number(metrics['data_max'])}]: "
             f"most codes go unused; {tail}.", **_proposed(gain)}]


def _heavy_clipping(result, values, importance):
    metrics = result.metrics
    minmax = _sqnr_with(values, result.config, importance, calibration="minmax",
                        range_min=None, range_max=None)
    if minmax is None:
        return []
    gain = _gain(minmax, metrics["sqnr_db"])
    share = f"{metrics['clip_count']} values ({_percent(metrics['clip_rate'])})"
    if gain >= WORTH_DB:
        tail = (f"min–max calibration (nothing clipped) gives SQNR {_signed_db(gain)} for "
                f"{proposals.cost(0.0)}")
    else:
        tail = (f"min–max calibration (nothing clipped) would give {_db(minmax)} dB, no better: "
                f"the clipping buys a finer step")
    return [{"kind": "clipping", "text": f"{share} are clipped: {tail}.", **_proposed(gain)}]


def _proposed(gain):
    """The ranking fields of a hint that proposes a calibration (no extra bits), {} else."""
    return {"gain_db": gain, "extra_bits": 0.0} if gain >= WORTH_DB else {}


def _partial_blocks(result):
    block = result.scheme.block_size
    length = result.shape[-1] if result.shape else 1
    if not block or length % block == 0:
        return []
    return [{"kind": "partial_block", "text":
             f"Rows of {length} values are not a multiple of the block of {block}: each row's "
             f"last block holds {length % block} values and still stores a whole scale."}]


def _scale_overhead(result):
    """A few pasted values pay a whole scale each: say so before someone blames the format."""
    bits = result.metrics["bits_per_value"]
    overhead = bits - result.scheme.element_bits()
    if result.count >= SMALL_SAMPLE or not (bits > 0 and overhead / bits > SCALE_SHARE):
        return []
    return [{"kind": "scale_overhead", "text":
             f"The scales take {overhead:.3g} of the {bits:.3g} bits per value: with only "
             f"{result.count} values their cost dominates; a full-size tensor pays far less."}]


def _number(value):
    return f"{float(value):.4g}"
