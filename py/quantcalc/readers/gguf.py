"""A small GGUF header reader: metadata and tensor directory, read by offset.

GGUF (llama.cpp's file format, versions 2 and 3): magic "GGUF", version, tensor count, metadata
count, the metadata (key, type, value), the tensor directory (name, dimensions, ggml type,
offset), then the tensor data at the next multiple of `general.alignment` (32 by default).
Everything is little-endian. The reader takes a `read(offset, size) -> bytes` function, so it
works on bytes in memory and on a file, which it reads a megabyte at a time (byte_window.py);
metadata arrays longer than KEPT_ITEMS (a tokenizer's vocabulary) are skipped, not read. It
checks every count and length against what the file can hold, and refuses what llama.cpp's
gguf.cpp refuses, so a hostile header gets a message, not a crash, a huge allocation or shifted
values (the tensor directory's checks, for all tensors at once, are gguf_directory.py's).
llama.cpp's own `gguf` package is the reference in the tests.
"""

import struct
from dataclasses import field
from functools import cached_property
from typing import Optional

import numpy as np

from quantcalc.errors import QuantcalcError, shortened
from quantcalc.formats.ggml import decode as ggml_decode
from quantcalc.readers.arrays import bf16_to_float32, names_in_message
from quantcalc.readers import gguf_directory
from quantcalc.readers.byte_window import Window
from quantcalc.readers.gguf_directory import Directory
from quantcalc.records import record

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_ALIGNMENT = 1 << 20
MAX_ARRAY_DEPTH = 8
KEPT_ITEMS = 1024       # a longer metadata array (a tokenizer's) is skipped, not read
KEPT_BYTES = 1 << 20    # and so is a longer metadata string (a tokenizer's JSON)
MAX_NAME = 1 << 16      # bytes in a key or a tensor name (llama.cpp's are under 64)
STRING, ARRAY = 8, 9
# scalar metadata types
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
            12: "d"}
_LAYOUTS = {kind: struct.Struct("<" + code) for kind, code in _SCALARS.items()}
_U32, _U64, _ARRAY_HEAD = struct.Struct("<I"), struct.Struct("<Q"), struct.Struct("<IQ")
_COUNTS = struct.Struct("<IQQ")
# ggml types whose values quantcalc reads directly: name, bytes per value
PLAIN_TYPES = {0: ("F32", 4), 1: ("F16", 2), 30: ("BF16", 2), 28: ("F64", 8)}


@record
class TensorInfo:
    name: str
    shape: tuple       # numpy order: slowest axis first (GGUF lists the fastest first)
    ggml_type: int
    offset: int        # absolute, from the start of the file
    nbytes: Optional[int] = None   # None for a ggml type quantcalc does not know

    @property
    def count(self) -> int:
        total = 1
        for n in self.shape:
            total *= n
        return total


@record
class GGUFHeader:
    version: int
    metadata: dict = field(default_factory=dict)
    directory: Optional[Directory] = None   # the tensors, one list per field
    data_start: int = 0

    @cached_property
    def tensors(self) -> dict:
        """name -> TensorInfo (made when first asked for: a listing reads the directory)."""
        d = self.directory
        if d is None:
            return {}
        return {name: TensorInfo(name, shape, kind, offset, nbytes) for name, shape, kind, offset,
                nbytes in zip(d.names, d.shapes, d.kinds, d.offsets, d.nbytes)}


@record(frozen=True)
class SkippedArray:
    """A metadata array longer than KEPT_ITEMS (a tokenizer's tokens, scores or merges), skipped
    without being read: quantcalc uses none of them. Its item type and length."""

    item_type: int
    count: int

    def __len__(self):
        return self.count


@record(frozen=True)
class SkippedString:
    """A metadata string longer than KEPT_BYTES, skipped without being read: its length."""

    length: int

    def __len__(self):
        return self.length


def _string(window, what=None):
    """A string; `what` (a key, a tensor name) is refused beyond MAX_NAME bytes, a value
    beyond KEPT_BYTES is skipped."""
    length = window.unpack(_U64)[0]
    if what and length > MAX_NAME:
        raise QuantcalcError(f"{window.name} has a {what} of {length:,} bytes (near byte "
                             f"{window.at:,})", "file")
    if length > KEPT_BYTES:
        window.skip(length)
        return SkippedString(length)
    raw = window.take(length)
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError:
        raise QuantcalcError(f"{window.name} has a metadata string that is not UTF-8 (near "
                             f"byte {window.at:,})", "file") from None


def _value(window, kind, depth=0):
    layout = _LAYOUTS.get(kind)
    if layout is not None:
        return window.unpack(layout)[0]
    if kind == STRING:
        return _string(window)
    if kind != ARRAY:
        raise QuantcalcError(f"{window.name} has a metadata value of unknown type {kind}",
                             "file")
    if depth >= MAX_ARRAY_DEPTH:
        raise QuantcalcError(f"{window.name} has metadata arrays nested more than "
                             f"{MAX_ARRAY_DEPTH} deep", "file")
    item_kind, count = window.unpack(_ARRAY_HEAD)
    item = _LAYOUTS.get(item_kind)
    smallest = item.size if item else {STRING: 8, ARRAY: 12}.get(item_kind)
    if smallest is None:
        raise QuantcalcError(f"{window.name} has a metadata array of unknown type {item_kind}",
                             "file")
    if count * smallest > window.size - window.at:
        raise QuantcalcError(f"{window.name} claims a metadata array of {count:,} items, more "
                             f"than the file holds", "file")
    if count <= KEPT_ITEMS:
        if item is not None:
            return list(window.unpack(struct.Struct(f"<{count}{_SCALARS[item_kind]}")))
        return [_value(window, item_kind, depth + 1) for _ in range(count)]
    if item is not None:
        window.skip(count * item.size)
    elif item_kind == STRING:
        window.skip_strings(count)
    else:
        for _ in range(count):
            _value(window, item_kind, depth + 1)
    return SkippedArray(item_kind, count)


def read_header(read, size, name="file") -> GGUFHeader:
    """The metadata and tensor directory of a GGUF file of `size` bytes whose bytes
    `read(offset, size)` returns; it is called for a megabyte at a time. Refused as llama.cpp's
    gguf.cpp refuses them: counts, strings, arrays or tensors that reach past the file, duplicate
    keys or tensor names, an alignment that is not a power of two, dimensions or element counts
    past int64, rows that are not whole blocks of their type, tensors that overlap or are not
    aligned."""
    window = Window(read, size, name)
    if bytes(window.take(4)) != MAGIC:
        raise QuantcalcError(f"{name} is not a GGUF file (it does not start with 'GGUF')", "file")
    version, n_tensors, n_metadata = window.unpack(_COUNTS)
    if version not in (2, 3):
        raise QuantcalcError(f"{name} is GGUF version {version}; quantcalc reads versions 2 "
                             f"and 3", "file")
    # each metadata entry takes at least 8 + 4 + 1 bytes, each tensor entry 8 + 4 + 4 + 8
    if n_metadata * 13 > size or n_tensors * 24 > size:
        raise QuantcalcError(f"{name} claims {n_tensors:,} tensors and {n_metadata:,} metadata "
                             f"entries, more than a file of {size:,} bytes can hold", "file")
    header = GGUFHeader(version)
    for _ in range(n_metadata):
        key = _string(window, "metadata key")
        if key in header.metadata:
            raise QuantcalcError(f"{name} has the metadata key '{shortened(key, 60)}' twice",
                                 "file")
        header.metadata[key] = _value(window, window.unpack(_U32)[0])
    alignment = _alignment(header.metadata, name)
    entries = gguf_directory.read_entries(window, n_tensors, _string)
    header.data_start = -(-window.at // alignment) * alignment
    header.directory = gguf_directory.checked(entries, header.data_start, alignment, size, name)
    return header


def _alignment(metadata, name):
    """general.alignment: a whole number (gguf.cpp: a uint32) that is a power of two."""
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if type(alignment) is not int or not 0 < alignment <= MAX_ALIGNMENT \
            or alignment & (alignment - 1):
        raise QuantcalcError(f"{name} has an invalid general.alignment ({alignment!r}): it must "
                             f"be a power of two up to {MAX_ALIGNMENT:,}", "file")
    return alignment


def read_bytes_header(data: bytes, name="file") -> GGUFHeader:
    view = memoryview(data)
    return read_header(lambda offset, size: view[offset:offset + size], len(view), name)


def plain_tensor(data: bytes, header: GGUFHeader, info: TensorInfo, name="file"):
    """The values of an F32/F16/BF16/F64 tensor as a numpy array of its shape."""
    if info.ggml_type not in PLAIN_TYPES:
        raise QuantcalcError(f"{name}: tensor '{info.name}' has ggml type {info.ggml_type}; "
                             f"only F32, F16, BF16 and F64 are read here", "file")
    kind, width = PLAIN_TYPES[info.ggml_type]
    end = info.offset + info.count * width
    if end > len(data):
        raise QuantcalcError(f"{name} is truncated: tensor '{info.name}' ends at byte {end:,} "
                             f"but the file has {len(data):,}", "file")
    dtype = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "F64": "<f8"}[kind]
    values = np.frombuffer(data, dtype, info.count, info.offset)
    if kind == "BF16":
        values = bf16_to_float32(values)
    return values.reshape(info.shape)


def type_name(ggml_type: int) -> str:
    """F32, F16, BF16, F64, or llama.cpp's name of a quantized type (Q4_K, ...)."""
    plain = PLAIN_TYPES.get(ggml_type)
    return plain[0] if plain else ggml_decode.type_name(ggml_type)


def bytes_details(data: bytes, name="file") -> list:
    """(tensor name, shape, type) of each tensor of a GGUF file held in memory."""
    return [(info.name, info.shape, type_name(info.ggml_type))
            for info in read_bytes_header(data, name).tensors.values()]


def bytes_tensor(data: bytes, tensor=None, name="file"):
    """One tensor of a GGUF file held in memory, as readers/checkpoint reads one from a file by
    offset: F16 and BF16 widened to float32, llama.cpp's quantized types dequantized."""
    tensors = read_bytes_header(data, name).tensors
    if not tensors:
        raise QuantcalcError(f"{name} holds no tensors", "file")
    chosen = tensor if tensor is not None else next(iter(tensors))
    info = tensors.get(chosen)
    if info is None:
        raise QuantcalcError(f"{name} has no tensor named '{shortened(str(chosen), 60)}'; it "
                             f"has {names_in_message(tensors)}", "tensor")
    if info.ggml_type in PLAIN_TYPES:
        values = plain_tensor(data, header=None, info=info, name=name)
        return values.astype(np.float32) if values.dtype == np.float16 else values
    size = ggml_decode.nbytes(info.ggml_type, info.shape)
    if size is None or not ggml_decode.can_dequantize(info.ggml_type):
        raise QuantcalcError(f"'{shortened(info.name, 60)}' holds {type_name(info.ggml_type)} "
                             f"values, which quantcalc cannot read", "tensor")
    if info.offset + size > len(data):
        raise QuantcalcError(f"{name} is truncated: tensor '{shortened(info.name, 60)}' ends at "
                             f"byte {info.offset + size:,} but the file has {len(data):,}", "file")
    raw = np.frombuffer(data, np.uint8, size, info.offset)
    return ggml_decode.dequantize(raw, info.ggml_type).reshape(info.shape)
