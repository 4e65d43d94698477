"""Both sides of a pair read together, a slab of the same rows at a time: the original's values
(float tensors, or dequantized where the original is itself a GGUF), the quantized side's
dequantized values and what the reproduction compares: a GGUF tensor's stored block bytes
(reproduce.py), a quantized safetensors layer's stored parts for the slab (reproduce_stored.py).
Every file is read by offset; memory holds one slab of each side.

The slab height is a multiple of what each side needs: a whole 128-row tile of FP8 scales, 32
rows of packed zero points, the rows of one attention head where the rope permutation is undone
(it reorders rows within a head only).
"""

import math
import os

import numpy as np

from quantcalc.errors import QuantcalcError, shortened
from quantcalc.formats.ggml import decode as ggml_decode
from quantcalc.readers import file_parts
from quantcalc.readers.slab_reader import STORED, as_float, read_exactly
from quantcalc.readers.stored_layers import StoredLayer
from quantcalc.readers.stored_safetensors import values_reader
from quantcalc.audit import rope


def rows_of(shape) -> int:
    """Slabs cut along the first axis; a 1-D tensor is one row (as readers/checkpoint)."""
    return int(shape[0]) if len(shape) > 1 else 1


def slab_rows(pair, slab_values) -> int:
    """Rows per slab: about `slab_values` values, a multiple of every side's alignment."""
    shape = pair.shape
    rows = rows_of(shape)
    width = max(1, math.prod(shape) // max(rows, 1))
    align = pair.quantized.align if isinstance(pair.quantized, StoredLayer) else 1
    if pair.rope is not None and len(shape) > 1:
        align = math.lcm(align, rows // pair.rope[0])
    step = max(1, int(slab_values) // width)
    return max(align, step // align * align)


def slabs(pair, slab_values):
    """Yield (first row, original float array, quantized float32 array, stored bytes or None)
    over the pair's rows, both arrays of one shape."""
    step = slab_rows(pair, slab_values)
    original = values_reader(pair.original).slabs(step)
    quantized = _quantized_slabs(pair.quantized, step)
    order = None
    if pair.rope is not None:
        order = rope.gguf_order(int(pair.shape[0]), pair.rope[0])
    for (first, o_values), (q_first, q_values, raw) in zip(original, quantized):
        if first != q_first or o_values.size != q_values.size:
            raise QuantcalcError(f"'{shortened(pair.name, 60)}': the two sides' rows from "
                                 f"{first} do not line up", "tensor")
        q_values = q_values.reshape(o_values.shape)
        if order is not None:
            local = order[first:first + o_values.shape[0]] - first \
                if o_values.ndim > 1 else order
            if pair.rope[1] == "original":
                o_values = o_values[local]
            else:
                q_values = q_values[local]
        yield first, o_values, q_values, raw


def _quantized_slabs(held, step):
    if isinstance(held, StoredLayer):
        yield from held.slabs_and_parts(step)
    elif held.ggml_type is not None:
        yield from _gguf_slabs(held, step)
    else:
        for first, values in values_reader(held).slabs(step):
            yield first, values, None


def _gguf_slabs(entry, step):
    """A GGUF tensor's rows as (first, float32 values, their stored bytes)."""
    rows = rows_of(entry.shape)
    row_bytes = entry.nbytes // max(rows, 1)
    inner = tuple(entry.shape[1:]) if len(entry.shape) > 1 else tuple(entry.shape)
    stream = file_parts.open_file(entry.path)
    try:
        stream.seek(entry.offset)
        for first in range(0, rows, step):
            n = min(step, rows - first)
            raw = read_exactly(stream, n * row_bytes, entry)
            if entry.dtype in STORED:
                values = as_float(raw.view(np.dtype(STORED[entry.dtype])), entry.dtype)
            else:
                with np.errstate(over="ignore", invalid="ignore"):
                    values = ggml_decode.dequantize(raw, entry.ggml_type)
            shape = (n, *inner) if len(entry.shape) > 1 else inner
            yield first, values.reshape(shape), raw
    except OSError as exc:
        raise QuantcalcError(f"cannot read {os.path.basename(entry.path)}: "
                             f"{exc.strerror or exc}", "file") from None
    finally:
        stream.close()
