"""A listed tensor's values (readers/checkpoint.py lists them), read by offset a slab of whole
rows at a time: floats widened to float32 (float64 stays float64), byte-swapped to the
machine's order, llama.cpp's quantized types dequantized (formats/ggml/decode.py).

What cannot be read is refused with one line that names the tensor and why: a type quantcalc
does not decode (named as ggml names it), a tensor with no values, a damaged .npz member.
"""

import os
import zipfile
import zlib

import numpy as np

from quantcalc.errors import QuantcalcError, shortened
from quantcalc.formats.ggml import decode as ggml_decode
from quantcalc.readers import file_parts
from quantcalc.readers.arrays import bf16_to_float32

STORED = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}
# what a damaged .npz member raises while it is decompressed (zipfile checks the CRC at its end)
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError)


def refusal(entry):
    """Why the values of `entry` cannot be read, or None when they can."""
    name = f"'{shortened(entry.name, 60)}'"
    if entry.quantized and not ggml_decode.can_dequantize(entry.ggml_type) \
            or not entry.readable and not entry.quantized and entry.ggml_type is not None:
        return f"{name} is {ggml_decode.unreadable(entry.ggml_type)}"
    if not entry.readable and not entry.quantized:
        return f"{name} holds {entry.dtype} values, not floats"
    if entry.count == 0:
        return f"{name} holds no values (its shape is {list(entry.shape)})"
    return None


class SlabReader:
    """Reads a tensor's rows as float32 (float64 stays float64), in slabs of whole rows.

    One file handle stays open for a tensor's slabs, which come in order, so an .npz member is
    decompressed once from start to end.
    """

    def __init__(self, entry):
        reason = refusal(entry)
        if reason:
            raise QuantcalcError(reason, "tensor")
        self.entry = entry

    def slabs(self, rows_per_slab):
        """Yield (first row, array of shape (rows, *shape[1:])) for the whole tensor."""
        try:
            yield from self._slabs(rows_per_slab)
        except ZIP_ERRORS as exc:
            entry = self.entry
            raise QuantcalcError(f"{os.path.basename(entry.path)}[{entry.member}] is damaged: "
                                 f"{shortened(str(exc), 120)}", "file") from None

    def read_all(self):
        return next(self.slabs(max(self.entry.rows, 1)))[1]

    def _slabs(self, rows_per_slab):
        entry = self.entry
        shape = tuple(entry.shape)
        if entry.fortran_order:
            raise QuantcalcError(f"'{shortened(entry.name, 60)}' is stored in Fortran order; "
                                 f"re-save it in C order (np.ascontiguousarray)", "tensor")
        rows = entry.rows
        inner = shape[1:] if len(shape) > 1 else shape
        if entry.quantized:
            yield from self._dequantized(rows_per_slab, inner)
            return
        dtype = np.dtype(STORED[entry.dtype]).newbyteorder(getattr(entry, "byte_order", "<"))
        row_bytes = entry.row_values * dtype.itemsize
        stream = self._open()
        try:
            for first in range(0, rows, rows_per_slab):
                n = min(rows_per_slab, rows - first)
                values = read_exactly(stream, n * row_bytes, entry).view(dtype)
                yield first, as_float(values, entry.dtype).reshape((n, *inner) if len(shape) > 1
                                                                    else inner)
        finally:
            stream.close()

    @property
    def seekable(self) -> bool:
        """Whether any rows can be read without the ones before them (not inside an .npz
        member, which is decompressed from its start)."""
        return self.entry.member is None and not self.entry.fortran_order

    def rows(self, indices) -> np.ndarray:
        """The rows `indices` (sorted, distinct) as an array (len(indices), *shape[1:]): each
        run of consecutive rows read at its offset (an estimated scan reads a sample of rows
        of a tensor too large to read whole)."""
        entry = self.entry
        indices = np.asarray(indices, np.int64)
        inner = tuple(entry.shape[1:])
        row_bytes = entry.nbytes // max(entry.rows, 1)
        if not self.seekable or indices.size and (indices[0] < 0 or indices[-1] >= entry.rows):
            raise QuantcalcError(f"rows of '{shortened(entry.name, 60)}' cannot be read by "
                                 f"offset", "tensor")
        breaks = np.flatnonzero(np.diff(indices) != 1) + 1
        out = []
        stream = file_parts.open_file(entry.path)
        try:
            for run in np.split(indices, breaks):
                if run.size == 0:
                    continue
                stream.seek(entry.offset + int(run[0]) * row_bytes)
                out.append(self._decoded(read_exactly(stream, run.size * row_bytes, entry),
                                         run.size, inner))
        finally:
            stream.close()
        return np.concatenate(out) if out else np.empty((0, *inner), np.float32)

    def _decoded(self, raw, n, inner):
        """`n` rows from their stored bytes `raw`: dequantized, or widened to float."""
        entry = self.entry
        if entry.quantized:
            return ggml_decode.dequantize(raw, entry.ggml_type).reshape((n, *inner))
        dtype = np.dtype(STORED[entry.dtype]).newbyteorder(getattr(entry, "byte_order", "<"))
        return as_float(raw.view(dtype), entry.dtype).reshape((n, *inner))

    def _open(self):
        entry = self.entry
        if entry.member is None:
            stream = file_parts.open_file(entry.path)
            stream.seek(entry.offset)
            return stream
        archive = zipfile.ZipFile(file_parts.open_file(entry.path))
        stream = archive.open(entry.member)
        stream.read(entry.offset)  # the member's .npy header
        return stream

    def _dequantized(self, rows_per_slab, inner):
        entry = self.entry
        rows = entry.rows
        row_bytes = entry.nbytes // max(rows, 1)
        stream = self._open()
        try:
            for first in range(0, rows, rows_per_slab):
                n = min(rows_per_slab, rows - first)
                raw = read_exactly(stream, n * row_bytes, entry)
                values = ggml_decode.dequantize(raw, entry.ggml_type)
                yield first, values.reshape((n, *inner) if len(entry.shape) > 1 else inner)
        finally:
            stream.close()


def read_exactly(stream, size, entry):
    """`size` bytes from `stream` as a uint8 array; a stream that ends first is refused."""
    buffer = np.empty(size, np.uint8)
    got = stream.readinto(memoryview(buffer)) if hasattr(stream, "readinto") else None
    if got is None:
        data = stream.read(size)
        got = len(data)
        buffer[:got] = np.frombuffer(data, np.uint8)
    while got < size:  # zip streams may return less than asked
        more = stream.read(size - got)
        if not more:
            raise QuantcalcError(f"{os.path.basename(entry.path)} ended inside tensor "
                                 f"'{shortened(entry.name, 60)}'", "file")
        buffer[got:got + len(more)] = np.frombuffer(more, np.uint8)
        got += len(more)
    return buffer


def as_float(values, dtype_name):
    """float32 (float64 stays float64) in the machine's byte order."""
    if dtype_name == "BF16":
        return bf16_to_float32(values)
    if dtype_name == "F16":
        return values.astype(np.float32)
    return values if values.dtype.isnative else values.astype(values.dtype.newbyteorder("="))
