"""A scan row: one tensor's facts, its statistics (STAT_KEYS) and one result per format
(RESULT_KEYS), as plain data for the reports, the page and the JSON document."""

import numpy as np

from quantcalc.errors import QuantcalcError, printable, shortened
from quantcalc.formats.ggml import decode as ggml_decode
from quantcalc.scan.roles import layer_and_role

RESULT_KEYS = ("bits_per_value", "sqnr_db", "rel_rmse", "max_abs_error", "clip_rate", "mse",
               "weighted_mse", "weighted_sqnr_db", "sqnr_ci_db", "sampled_fraction")
# what an exact result says of itself: no interval, every value measured (scan/estimated.py)
EXACT = {"sqnr_ci_db": 0.0, "sampled_fraction": 1.0}
STAT_KEYS = ("data_min", "data_max", "std", "amax_over_std", "kurtosis", "beyond_6_sigma",
             "worst_channel", "worst_channel_ratio")


def describe_entry(entry) -> dict:
    """The row's facts that need no reading: name, layer, role, shape, storage."""
    layer, role = layer_and_role(entry.name)
    stored_bits = (ggml_decode.bits_per_value(entry.ggml_type) if entry.ggml_type is not None
                   else 8.0 * entry.nbytes / entry.count if entry.count else None)
    return {"name": entry.name, "file": entry.path.rsplit("/", 1)[-1], "layer": layer,
            "role": role, "shape": list(entry.shape), "dtype": entry.dtype,
            "stored_format": stored_format(entry),
            "parameters": entry.count, "bytes": entry.nbytes, "stored_bits": stored_bits,
            "high_precision": len(entry.shape) <= 1}


def stored_format(entry):
    """The quantized format the file stores the tensor in (a GGUF type, FP8 with its scales,
    packed int4), what it is part of (a scale tensor beside one), or None for plain numbers."""
    if getattr(entry, "stored", None) is not None:
        return entry.stored.label
    return entry.dtype if entry.quantized and entry.ggml_type is not None else None


def failure(exc: Exception) -> str:
    """What went wrong, in one plain line: a refusal's own message, or for an exception no
    check foresaw (a bug, or the machine running out of memory) its kind and text, so one
    tensor's failure is told on its row and the scan carries on."""
    if isinstance(exc, QuantcalcError):
        return exc.message
    if isinstance(exc, MemoryError):
        return "not measured: there was not enough memory for it"
    text = shortened(printable(str(exc)), 200)
    return f"not measured: it failed unexpectedly ({type(exc).__name__}{': ' if text else ''}" \
           f"{text})"


def empty_result(label) -> dict:
    """A format's result before it is measured. "measured_as" names the type a result measures
    when it is not the format itself: llama.cpp's fallback for rows the format's blocks do not
    divide (scan/fallbacks.py)."""
    return {"format": label, **{key: None for key in RESULT_KEYS}, "error": None, "notes": [],
            "measured_as": None}


def format_result(fmt, measure) -> dict:
    """One format's result in a row: measure() gives (metrics, notes), or raises; what it raises
    becomes the result's error (the format refused the tensor, or failed on it), which the
    totals count at the tensor's stored size."""
    out = empty_result(fmt.label)
    try:
        metrics, notes = measure()
    except Exception as exc:  # noqa: BLE001 - one tensor x format never sinks the scan
        out["error"] = failure(exc)
        return out
    out.update({key: metrics.get(key, EXACT.get(key)) for key in RESULT_KEYS})
    out["notes"] = [n for n in notes if not n.startswith(f"{fmt.config.format_row.label}:")]
    return out


def refuse_non_finite(values, stats):
    """Refuse NaN and infinities, which the statistics' min and max catch without a pass."""
    if not stats.finite:
        bad = int(np.count_nonzero(~np.isfinite(values)))
        raise QuantcalcError(f"{bad:,} values are NaN or infinite: not quantized", "tensor")
