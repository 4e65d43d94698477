"""A small GGUF header reader: metadata and tensor directory, read by offset.

GGUF (llama.cpp's file format, versions 2 and 3): magic "GGUF", version, tensor count, metadata
count, the metadata (key, type, value), the tensor directory (name, dimensions, ggml type,
offset), then the tensor data at the next multiple of `general.alignment` (32 by default).
Everything is little-endian. The reader takes a `read(offset, size) -> bytes` function, so it
works on bytes in memory and on a file read piece by piece, and it checks every count and
length against what the file can hold, so a hostile header gets a message, not a crash or a
huge allocation. llama.cpp's own `gguf` package is the reference in the tests.
"""

import struct
from dataclasses import dataclass, field

import numpy as np

from quantcalc.errors import QuantcalcError, shortened
from quantcalc.formats.ggml import decode as ggml_decode
from quantcalc.readers.arrays import bf16_to_float32, names_in_message

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_ARRAY_DEPTH = 8
# scalar metadata types: (struct format, size)
_SCALARS = {0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4),
            6: ("<f", 4), 7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8)}
STRING, ARRAY = 8, 9
# ggml types whose values quantcalc reads directly: name, bytes per value
PLAIN_TYPES = {0: ("F32", 4), 1: ("F16", 2), 30: ("BF16", 2), 28: ("F64", 8)}


@dataclass
class TensorInfo:
    name: str
    shape: tuple       # numpy order: slowest axis first (GGUF lists the fastest first)
    ggml_type: int
    offset: int        # absolute, from the start of the file

    @property
    def count(self) -> int:
        total = 1
        for n in self.shape:
            total *= n
        return total


@dataclass
class GGUFHeader:
    version: int
    metadata: dict = field(default_factory=dict)
    tensors: dict = field(default_factory=dict)   # name -> TensorInfo
    data_start: int = 0


class _Cursor:
    def __init__(self, read, size, name):
        self.read, self.size, self.name, self.at = read, size, name, 0

    def take(self, n):
        if n < 0 or self.at + n > self.size:
            raise QuantcalcError(f"{self.name} is truncated or not a GGUF file (its header "
                                 f"reaches past byte {self.size:,})", "file")
        data = self.read(self.at, n)
        if len(data) != n:
            raise QuantcalcError(f"{self.name} could not be read at byte {self.at:,}", "file")
        self.at += n
        return data

    def unpack(self, fmt, size):
        return struct.unpack(fmt, self.take(size))[0]

    def string(self):
        length = self.unpack("<Q", 8)
        raw = self.take(length)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise QuantcalcError(f"{self.name} has a metadata string that is not UTF-8 "
                                 f"(near byte {self.at:,})", "file") from None

    def value(self, kind, depth=0):
        if kind in _SCALARS:
            return self.unpack(*_SCALARS[kind])
        if kind == STRING:
            return self.string()
        if kind == ARRAY:
            if depth >= MAX_ARRAY_DEPTH:
                raise QuantcalcError(f"{self.name} has metadata arrays nested more than "
                                     f"{MAX_ARRAY_DEPTH} deep", "file")
            item_kind, count = self.unpack("<I", 4), self.unpack("<Q", 8)
            smallest = _SCALARS[item_kind][1] if item_kind in _SCALARS else 8
            if count * smallest > self.size - self.at:
                raise QuantcalcError(f"{self.name} claims a metadata array of {count:,} items, "
                                     f"more than the file holds", "file")
            return [self.value(item_kind, depth + 1) for _ in range(count)]
        raise QuantcalcError(f"{self.name} has a metadata value of unknown type {kind}", "file")


def read_header(read, size, name="file") -> GGUFHeader:
    """The metadata and tensor directory of a GGUF file of `size` bytes."""
    cursor = _Cursor(read, size, name)
    if cursor.take(4) != MAGIC:
        raise QuantcalcError(f"{name} is not a GGUF file (it does not start with 'GGUF')", "file")
    version = cursor.unpack("<I", 4)
    if version not in (2, 3):
        raise QuantcalcError(f"{name} is GGUF version {version}; quantcalc reads versions 2 "
                             f"and 3", "file")
    n_tensors, n_metadata = cursor.unpack("<Q", 8), cursor.unpack("<Q", 8)
    # each metadata entry takes at least 8 + 4 + 1 bytes, each tensor entry 8 + 4 + 4 + 8
    if n_metadata * 13 > size or n_tensors * 24 > size:
        raise QuantcalcError(f"{name} claims {n_tensors:,} tensors and {n_metadata:,} metadata "
                             f"entries, more than a file of {size:,} bytes can hold", "file")
    header = GGUFHeader(version)
    for _ in range(n_metadata):
        key = cursor.string()
        header.metadata[key] = cursor.value(cursor.unpack("<I", 4))
    infos = []
    for _ in range(n_tensors):
        tensor_name = cursor.string()
        n_dims = cursor.unpack("<I", 4)
        if n_dims > 8:
            raise QuantcalcError(f"{name}: tensor '{tensor_name[:60]}' claims {n_dims} "
                                 f"dimensions", "file")
        dims = [cursor.unpack("<Q", 8) for _ in range(n_dims)]
        infos.append((tensor_name, tuple(reversed(dims)), cursor.unpack("<I", 4),
                      cursor.unpack("<Q", 8)))
    alignment = header.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment < 1 or alignment > 1 << 20:
        raise QuantcalcError(f"{name} has an invalid general.alignment ({alignment!r})", "file")
    header.data_start = -(-cursor.at // alignment) * alignment
    for tensor_name, shape, kind, offset in infos:
        header.tensors[tensor_name] = TensorInfo(tensor_name, shape, kind,
                                                 header.data_start + offset)
    return header


def read_bytes_header(data: bytes, name="file") -> GGUFHeader:
    return read_header(lambda offset, size: data[offset:offset + size], len(data), name)


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
