"""One pair's row: the error the quantized file carries against the original, streamed in slabs
on both sides (sides.py), summed as the scan sums it (engine/metrics: float64, overflow-safe),
importance-weighted with an imatrix, and whether the stored codes are what the format's maker
makes of the original: llama.cpp's types (reproduce.py), FP8, MX and compressed-tensors' min-max
schemes (reproduce_stored.py).

A row's keys (ROW_KEYS) share the scan's names where they mean the same: name, layer, role,
shape, parameters, stored_format, bits_per_value, sqnr_db, rel_rmse, max_abs_error, mse,
weighted_mse, weighted_sqnr_db. A pair that cannot be measured has its `reason` and no SQNR.
"""

import math

import numpy as np

from quantcalc.audit import reproduce, reproduce_stored, sides
from quantcalc.engine.metrics import ErrorAccumulator, WeightedAccumulator
from quantcalc.errors import QuantcalcError
from quantcalc.readers.stored_layers import StoredLayer
from quantcalc.readers.stored_safetensors import bits_per_value as stored_bits
from quantcalc.scan.roles import layer_and_role
from quantcalc.scan.rows import failure

SLAB_VALUES = 1 << 20  # values per slab on each side: 4 MB of float32, some 40 MB of work
METRIC_KEYS = ("sqnr_db", "rel_rmse", "max_abs_error", "mse", "original_rms", "weighted_mse",
               "weighted_sqnr_db", "reproduced", "reproduced_as", "plain_sqnr_db", "plain_mse")
ROW_KEYS = ("name", "original_name", "side", "layer", "role", "shape", "parameters",
            "stored_format", "bytes", "bits_per_value", *METRIC_KEYS, "reason", "notes")


def describe(pair) -> dict:
    """The row's facts, before anything is read."""
    held = pair.quantized
    layer, role = layer_and_role(pair.original_name or pair.name)
    if layer is None:
        layer, role = layer_and_role(pair.name)
    row = {key: None for key in ROW_KEYS}
    row.update({"name": pair.name, "original_name": pair.original_name, "side": pair.side,
                "layer": layer, "role": role, "shape": list(pair.shape),
                "parameters": pair.count, "notes": list(pair.notes), "reason": pair.reason})
    if held is not None:
        row["stored_format"], row["bytes"] = _stored(held)
        row["bits_per_value"] = 8.0 * row["bytes"] / pair.count if pair.count else None
    return row


def _stored(held):
    """(stored format, bytes in the file, scales and zero points included)."""
    if isinstance(held, StoredLayer):
        return held.label, held.nbytes
    stored = getattr(held, "stored", None)
    if stored is not None:
        bits = stored_bits(held)
        return stored.label, int(round(bits * held.count / 8)) if bits else held.nbytes
    return held.dtype, held.nbytes


def measure(pair, importance=None, slab_values=SLAB_VALUES, on_bytes=None) -> dict:
    """The pair's row. `importance`: entry lookup (gguf name, columns, expert) -> (weights or
    None, note or None), or None; `on_bytes(n)` hears the bytes read."""
    row = describe(pair)
    if pair.reason:
        return row
    try:
        row.update(_measured(pair, importance, slab_values, on_bytes, row["notes"]))
    except Exception as exc:  # noqa: BLE001 - one pair's failure is its row's reason
        row["reason"] = failure(exc)
    return row


def _measured(pair, importance, slab_values, on_bytes, notes) -> dict:
    columns = int(pair.shape[-1]) if pair.shape else 1
    weights = None
    if importance is not None and pair.gguf_name is not None:
        weights, note = importance(pair.gguf_name, columns, pair.expert)
        if note:
            notes.append(note)
    held = pair.quantized
    repro = None
    if pair.original.readable and reproduce.applies(held):
        repro = reproduce.Reproduction(held, weights)
    elif pair.original.readable and reproduce_stored.applies(held) \
            and (pair.rope is None or pair.rope[1] == "original"):
        repro = reproduce_stored.StoredReproduction(held)
    acc = ErrorAccumulator(signal_bound=None)
    weighted = None if weights is None else WeightedAccumulator(weights, columns)
    start = 0
    for _, original, quantized, raw in sides.slabs(pair, slab_values):
        o64 = np.asarray(original, np.float64).reshape(-1)
        q64 = np.asarray(quantized, np.float64).reshape(-1)
        _check_finite(o64, "original", pair)
        _check_finite(q64, "quantized", pair)
        error = q64 - o64
        if weighted is not None:
            weighted.add(start, o64, error)
        if repro is not None:
            repro.add(original, raw)
        if on_bytes:
            on_bytes(_slab_bytes(pair, o64.size))
        start += o64.size
        acc.add(o64, error)
    if acc.count != pair.count:
        raise QuantcalcError(f"read {acc.count:,} of {pair.count:,} values", "tensor")
    metrics = acc.finish()
    out = {k: metrics[k] for k in ("sqnr_db", "rel_rmse", "max_abs_error", "mse")}
    out["original_rms"] = math.sqrt(acc.signal_sq.value() / acc.count) \
        if acc.count else None
    if weighted is not None:
        found = weighted.finish(metrics["mse"])
        out.update({k: found.get(k) for k in ("weighted_mse", "weighted_sqnr_db")})
    if repro is not None:
        out.update(repro.finish())
        note = getattr(repro, "note", lambda: None)()
        if note:
            notes.append(note)
    return out


def _slab_bytes(pair, values) -> int:
    """Bytes of both files behind `values` values of the pair (for progress)."""
    sizes = [getattr(pair.quantized, "nbytes", 0), getattr(pair.original, "nbytes", 0)]
    return int(sum(sizes) * values / max(pair.count, 1))


def _check_finite(values, side, pair):
    if not np.isfinite(values).all():
        bad = int(np.count_nonzero(~np.isfinite(values)))
        raise QuantcalcError(f"the {side} '{pair.original_name if side == 'original' else pair.name}'"
                             f" holds {bad:,} NaN or infinite values: no error measured", "tensor")
