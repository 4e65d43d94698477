"""One checkpoint tensor under every format of a scan: a row of facts, statistics and results.

A tensor that fits the memory budget (`whole_values`) is read in one piece and each format runs
the single-tensor analysis on it (analysis.analyze), so a scan row equals what the calculator
shows for that tensor, digit for digit. A larger one is streamed in slabs (streamed.py).
"""

from quantcalc.engine import analysis
from quantcalc.formats.ggml import decode as ggml_decode
from quantcalc.readers.stored_safetensors import values_reader
from quantcalc.scan import estimated, fallbacks
from quantcalc.scan.rows import (STAT_KEYS, describe_entry, failure, format_result,
                                 refuse_non_finite)
from quantcalc.scan.streamed import scan_streamed
from quantcalc.scan.tensor_stats import TensorStats

WHOLE_VALUES = 1 << 26   # command line: tensors up to 64M values (256 MB as float32) in one piece
SLAB_VALUES = 1 << 22    # values per slab when streaming
ONE_D_VALUES = 1 << 27   # a 1-D tensor is read whole up to this many values


def scan_tensor(entry, formats, importance=None, *, whole_values=WHOLE_VALUES,
                slab_values=SLAB_VALUES, on_bytes=None, estimate=None) -> dict:
    """One checkpoint tensor under every format: a row of facts, statistics and results.

    Args:
        importance: a function name -> (weights or None, note or None) for formats that use
            llama.cpp's importance matrix, or None.
        whole_values: a tensor of up to this many values is read in one piece, a larger one
            streamed in slabs of about `slab_values`.
        on_bytes: called with the number of file bytes just read (progress).
        estimate: an estimated.Target (each format's error from a sample of rows, within its
            ±dB), or None for exact results.
    """
    row = empty_row(entry)
    notes = row["notes"]
    if row["high_precision"]:
        notes.append("1-D (a norm or bias): usually kept in high precision")
    if not _worth_reading(entry, row):
        return row
    weights, weight_note = (None, None) if importance is None or not any(
        f.uses_importance for f in formats) else importance(entry)
    if weight_note:
        notes.append(weight_note)
    plans = fallbacks.planned(formats, entry.shape) if entry.readable else []
    runs = fallbacks.runs(plans)
    try:
        # 1-D tensors are read whole: a llama.cpp type searches a whole row at once, and norms
        # and biases are small (one of more than ONE_D_VALUES is refused by scan_streamed)
        one_d = len(entry.shape) <= 1 and entry.count <= ONE_D_VALUES
        values = None
        if entry.count <= whole_values or one_d:
            values = _scan_whole(entry, runs, weights, row, on_bytes, estimate)
        else:
            scan_streamed(entry, runs, weights, row, slab_values=slab_values,
                          on_bytes=on_bytes, estimate=estimate)
        measured = {result["format"]: result for result in row["results"]}
        row["results"] = fallbacks.assemble(
            plans, measured, lambda: fallbacks.f16_result(_slabs(entry, values, slab_values)))
    except Exception as exc:  # noqa: BLE001 - the tensor itself is unreadable or not finite
        notes.append(failure(exc))  # (or its reading failed unexpectedly): the scan goes on
        row["results"] = []
    return row


def _slabs(entry, values, slab_values):
    """The tensor's values once more, for F16 (llama-quantize's last fallback): those read
    whole, or the file's slabs again for a streamed tensor (rows no ggml block divides are
    rare; a third pass over such a tensor is the price)."""
    if values is not None:
        return [(0, values)]
    return values_reader(entry).slabs(max(1, slab_values // max(entry.row_values, 1)))


def empty_row(entry) -> dict:
    """A tensor's row before it is read: its facts, no statistics, no results."""
    row = describe_entry(entry)
    row.update({key: None for key in STAT_KEYS})
    row.update({"streamed": False, "original": entry.readable, "results": [], "notes": []})
    return row


def failed_row(entry, exc) -> dict:
    """The row of a tensor whose task failed as a whole (its worker process died, the task
    raised): its facts, and what went wrong in its notes, as for an unreadable tensor."""
    row = empty_row(entry)
    row["notes"].append(failure(exc))
    return row


def _worth_reading(entry, row) -> bool:
    """Whether the tensor gives statistics or results; if not, the row's notes say why.
    An already quantized tensor is read (decoded) for its statistics where it can be."""
    notes = row["notes"]
    stored = getattr(entry, "stored", None)
    if stored is not None:
        return _stored_worth_reading(entry, stored, notes)
    if not entry.readable:
        if entry.not_quantized:  # readers/checkpoint.py: the one rule, the calculator's too
            notes.append(entry.not_quantized)
            return False
        notes.append(f"already quantized as {entry.dtype} ({row['stored_bits']:g} bits per "
                     f"value): the original values are not in the file, so no format can be "
                     f"measured against them")
        if not ggml_decode.can_dequantize(entry.ggml_type):
            notes.append(f"{entry.dtype} is not decoded here: no statistics")
            return False
    if entry.fortran_order:
        notes.append("stored in Fortran order: re-save it in C order to scan it")
        return False
    return True


def _stored_worth_reading(entry, stored, notes) -> bool:
    """A safetensors tensor stored quantized with its scales (readers/stored_safetensors.py):
    named, read (dequantized) for its statistics where quantcalc decodes it, never measured; a
    part of one (its scales, zero points) is named and counted at its stored size."""
    if stored.part_of:
        notes.append(f"the {stored.label}: counted at its stored size, not quantized")
        return False
    notes.append(f"already quantized as {stored.label}: the original values are not in the "
                 f"file, so no format is measured against them; counted at its stored size")
    if not stored.decoded:
        notes.append(f"{stored.label} is not decoded here: no statistics")
        return False
    return True


def _scan_whole(entry, formats, weights, row, on_bytes, estimate=None):
    values = values_reader(entry).read_all()
    if on_bytes:
        on_bytes(entry.nbytes)
    stats = TensorStats(entry.shape)
    stats.add(values)
    refuse_non_finite(values, stats)
    stats.add_beyond(values)
    row.update(stats.finish())
    for fmt in formats:
        def measure():
            used = weights if fmt.uses_importance else None
            found = None if estimate is None else estimated.measure(
                fmt, values, stats, used, target_db=estimate.db, seed=estimate.seed)
            if found is not None:
                return found
            result = analysis.analyze(values, fmt.config, keep=0, importance=used,
                                      known_range=stats.segment_range)
            return result.metrics, result.notes
        row["results"].append(format_result(fmt, measure))
    return values
