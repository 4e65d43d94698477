"""--allow-requantize: a scan that measures already-quantized tensors (a GGUF in Q4_1) on their
dequantized values, as llama-quantize --allow-requantize re-quantizes them.

The original weights are not in such a file, so each error is that of re-quantizing the values
the file holds, not the error against the original: each such row says so. Without the option
such a tensor is listed with its stored type and the statistics of its dequantized values, and
no format is measured on it (scan/tensor_scan.py).
"""

from dataclasses import fields

from quantcalc.formats.ggml import decode as ggml_decode
from quantcalc.readers.checkpoint import Checkpoint, TensorEntry
from quantcalc.records import record


@record
class DequantizedEntry(TensorEntry):
    """A quantized tensor whose dequantized values a scan measures as if they were its own
    (the checkpoint's SlabReader dequantizes it)."""

    @property
    def readable(self) -> bool:
        return True


def requantizable(entry) -> bool:
    """Whether `entry` is stored quantized in a type quantcalc decodes."""
    return bool(entry.quantized) and ggml_decode.can_dequantize(entry.ggml_type)


def quantized_count(checkpoint) -> int:
    """How many of the checkpoint's tensors are stored quantized (decoded or not)."""
    return sum(1 for entry in checkpoint.tensors if entry.quantized)


def allowing_requantize(checkpoint) -> tuple:
    """(the checkpoint with each quantized tensor read as its dequantized values, their names)."""
    entries, names = [], set()
    for entry in checkpoint.tensors:
        if requantizable(entry):
            entry = DequantizedEntry(**{f.name: getattr(entry, f.name) for f in fields(entry)})
            names.add(entry.name)
        entries.append(entry)
    notes = list(checkpoint.notes)
    if names:
        notes.append(f"--allow-requantize: {len(names)} already-quantized tensor(s) measured on "
                     f"their dequantized values")
    return Checkpoint(entries, list(checkpoint.files), notes), names


def note_of(row) -> str:
    return (f"stored as {row['dtype']}: measured on its dequantized values (--allow-requantize), "
            f"so each error is that of re-quantizing them, not the error against the original "
            f"weights, which are not in the file")


def mark(row, names):
    """A row of a re-quantized tensor says what its values are (in place)."""
    if row.get("name") in names and note_of(row) not in row["notes"]:
        row["original"] = False
        row["notes"].insert(0, note_of(row))
    return row
