"""Safetensors tensors stored quantized, with their scales beside them: recognised by their names,
dtypes and shapes, named, and decoded where quantcalc can.

    FP8 with scales: `W.weight` F8_E4M3 / F8_E5M2 with `W.weight_scale_inv` (DeepSeek-V3,
        Qwen3-FP8: one float32 per 128x128 tile, value = fp8 x scale_inv, as DeepSeek-V3's
        inference/kernel.py weight_dequant) or `W.weight_scale` (compressed-tensors / vLLM FP8:
        one scale per tensor, per output channel, per group, or per tile): decoded.
    Packed integers: GPTQ / AWQ `W.qweight` (int32, with `W.scales`, `W.qzeros`, GPTQ's
        `W.g_idx`) and compressed-tensors `W.weight_packed` (int32, with `W.weight_scale`,
        `W.weight_zero_point`, `W.weight_shape`); gpt-oss MXFP4 `W_blocks` / `W_scales`: named,
        not decoded (yet), and refused in one line rather than read as raw integers.

A recognised tensor's entry gets a StoredFormat (TensorEntry.stored); so does each companion
(its scales, zero points, shapes), whose `part_of` names the tensor it belongs to: a scan counts
it at its stored size and measures nothing on it.
"""

import math
import os

import numpy as np

from quantcalc.errors import QuantcalcError, shortened
from quantcalc.formats.stored import fp8
from quantcalc.readers import file_parts
from quantcalc.readers.slab_reader import SlabReader, read_exactly
from quantcalc.records import record

FP8 = {"F8_E4M3": "FP8 E4M3", "F8_E5M2": "FP8 E5M2"}
FLOATS = ("F64", "F32", "F16", "BF16")


@record(frozen=True)
class StoredFormat:
    """How a tensor is stored: `label` names it ("FP8 E4M3 x 128x128 block scales
    (weight_scale_inv)"); `decoded` whether quantcalc reads its values; `scale` the entry of its
    scales (FP8); `part_of` for a companion, the tensor it belongs to; `parts` the companions'
    names."""

    label: str
    decoded: bool = False
    scale: object = None
    part_of: str = None
    parts: tuple = ()




def recognise(entries) -> None:
    """Give each recognised entry (and its companions) its StoredFormat, in place: `entries`
    are a checkpoint's TensorEntry list (all its files, so a scale in another shard is found)."""
    by_name = {e.name: e for e in entries}
    for entry in entries:
        if entry.dtype in FP8 and len(entry.shape) >= 1:
            _recognise_fp8(entry, by_name)
        elif entry.name.endswith("qweight") and entry.dtype == "I32":
            _recognise_packed(entry, by_name, "qweight", ("scales", "qzeros", "g_idx"),
                              "GPTQ/AWQ packed integers (int32 qweight)")
        elif entry.name.endswith("weight_packed") and entry.dtype == "I32":
            _recognise_packed(entry, by_name, "weight_packed",
                              ("weight_scale", "weight_zero_point", "weight_shape",
                               "weight_g_idx"),
                              "compressed-tensors pack-quantized integers (int32 weight_packed)")
        elif entry.name.endswith("_blocks") and entry.dtype == "U8":
            _recognise_packed(entry, by_name, "_blocks", ("_scales",),
                              "MXFP4 (gpt-oss: 4-bit values in _blocks, E8M0 _scales)")


def _recognise_fp8(entry, by_name):
    stem = entry.name[:-len("weight")] if entry.name.endswith("weight") else None
    label = FP8[entry.dtype]
    if stem is None:
        entry.stored = StoredFormat(label, decoded=True)
        return
    for suffix in ("weight_scale_inv", "weight_scale"):
        scale = by_name.get(stem + suffix)
        if scale is not None and scale.dtype in FLOATS:
            layout = _scale_layout(entry.shape, scale.shape)
            if layout is None:
                continue
            parts = (scale.name,) + tuple(n for n in (stem + "input_scale",) if n in by_name)
            entry.stored = StoredFormat(f"{label} x {layout} ({suffix})", decoded=True,
                                        scale=scale, parts=parts)
            for name in parts:
                by_name[name].stored = StoredFormat(
                    f"{'scales' if name == scale.name else 'activation scale'} of "
                    f"{entry.name} ({label})", part_of=entry.name)
            return
    entry.stored = StoredFormat(label, decoded=True)


def _recognise_packed(entry, by_name, own, companions, label):
    stem = entry.name[:-len(own)]
    parts = tuple(stem + c for c in companions if stem + c in by_name)
    if not parts:
        return  # an int32 tensor of that name alone: nothing says it is packed weights
    entry.stored = StoredFormat(label, parts=parts)
    for name in parts:
        by_name[name].stored = StoredFormat(f"{name[len(stem):]} of {entry.name} ({label})",
                                            part_of=entry.name)


def _scale_layout(shape, scale_shape):
    """How a scale tensor of `scale_shape` covers a weight of `shape`, in words, or None."""
    rows, cols = (int(shape[0]), int(np.prod(shape[1:]))) if len(shape) > 1 else (1, shape[0])
    scale_shape = tuple(int(n) for n in scale_shape)
    if math.prod(scale_shape) == 1:
        return "one scale per tensor"
    if scale_shape in ((rows,), (rows, 1)) and len(shape) > 1:
        return "one scale per output channel"
    if len(scale_shape) == 2 and len(shape) == 2:
        found = tile(shape, scale_shape)
        if scale_shape[0] == rows and cols % scale_shape[1] == 0 and found != (128, 128):
            return f"one scale per group of {cols // scale_shape[1]}"
        if found is not None:
            return f"{found[0]}x{found[1]} block scales"
    return None


def tile(shape, scale_shape):
    """(block rows, block columns) such that the scales tile the weight, or None."""
    sizes = []
    for n, s in zip(shape, scale_shape):
        block = 128 if -(-n // 128) == s else -(-n // s)
        if block < 1 or -(-n // block) != s:
            return None
        sizes.append(block)
    return tuple(sizes)


def refusal(entry):
    """The one line refusing a stored tensor quantcalc does not decode (or a companion, which
    is not weights), or None."""
    stored = entry.stored
    if stored is None or stored.decoded:
        return None
    name = f"'{shortened(entry.name, 60)}'"
    if stored.part_of:
        return f"{name} is not weights: it is the {stored.label}"
    return (f"{name} is stored as {stored.label}, with {', '.join(stored.parts)}: quantcalc does "
            f"not decode it yet, and its raw integers are not the weights")


def bits_per_value(entry) -> float | None:
    """Stored bits per value, the scales beside it included."""
    if not entry.count:
        return None
    parts = entry.stored.scale.nbytes if entry.stored and entry.stored.scale is not None else 0
    return 8.0 * (entry.nbytes + parts) / entry.count


class StoredReader:
    """Reads an FP8 tensor's dequantized values (fp8 x scale) in slabs of whole rows, as
    SlabReader reads float tensors."""

    def __init__(self, entry):
        reason = refusal(entry)
        if reason:
            raise QuantcalcError(reason, "tensor")
        if entry.count == 0:
            raise QuantcalcError(f"'{shortened(entry.name, 60)}' holds no values (its shape "
                                 f"is {list(entry.shape)})", "tensor")
        if entry.nbytes != entry.count:
            raise QuantcalcError(f"{os.path.basename(entry.path)}: '{shortened(entry.name, 60)}'"
                                 f" has {entry.nbytes:,} bytes for {entry.count:,} FP8 values",
                                 "file")
        self.entry = entry
        scale = entry.stored.scale
        self.scale = None if scale is None else SlabReader(scale).read_all().astype(np.float32)

    def read_all(self):
        return next(self.slabs(max(self.entry.rows, 1)))[1]

    def slabs(self, rows_per_slab):
        entry = self.entry
        shape = tuple(entry.shape)
        rows, row_values = entry.rows, entry.row_values
        table = fp8.table(entry.dtype)  # formats/stored/fp8: the one byte -> value table
        with file_parts.open_file(entry.path) as stream:
            stream.seek(entry.offset)
            for first in range(0, rows, rows_per_slab):
                n = min(rows_per_slab, rows - first)
                codes = read_exactly(stream, n * row_values, entry)
                values = table[codes].reshape((n, row_values))
                if self.scale is not None:
                    values = values * self._scales(first, n, row_values)
                yield first, values.reshape((n, *shape[1:]) if len(shape) > 1 else shape)

    def _scales(self, first, n, row_values):
        """The scale of each value of rows first .. first + n, broadcast to (n, row_values)."""
        scale, rows = self.scale, self.entry.rows
        if scale.size == 1:
            return scale.reshape(1, 1)
        if scale.shape[0] == rows and scale.size == rows:  # per output channel
            return scale.reshape(-1, 1)[first:first + n]
        if scale.shape[0] == rows:  # groups along the row
            return np.repeat(scale[first:first + n], row_values // scale.shape[1], axis=1)
        block_rows, block_cols = tile((rows, row_values), scale.shape)
        tiles = scale[np.arange(first, first + n) // block_rows]
        return np.repeat(tiles, block_cols, axis=1)[:, :row_values]

def values_reader(entry):
    """The reader of `entry`'s values: StoredReader for a tensor stored with its scales (or
    its refusal, for one quantcalc does not decode, and for integer scales, zero points and
    indices beside one), SlabReader otherwise (float scales are values like any other)."""
    stored = getattr(entry, "stored", None)
    if stored is not None and not (stored.part_of and entry.dtype in FLOATS):
        return StoredReader(entry)
    return SlabReader(entry)
