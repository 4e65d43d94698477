"""GGUF files byte by byte, for tests that need what no honest writer makes: offsets that
overlap, alignments of 3, dimensions of 2^64-1, ggml types from the future.

`gguf_bytes` lays the header out as GGUF v3 does (magic, version, counts, key-value pairs, the
tensor directory, padding to the alignment, then the data) but writes whatever it is given.
"""

import json
import struct

# metadata value types (GGUF): the struct format of each scalar
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
          11: "<q", 12: "<d"}
UINT8, INT32, UINT32, FLOAT32, BOOL, STRING, ARRAY, UINT64 = 0, 5, 4, 6, 7, 8, 9, 10


def string(text) -> bytes:
    raw = text.encode() if isinstance(text, str) else bytes(text)
    return struct.pack("<Q", len(raw)) + raw


def value(kind, item) -> bytes:
    """A metadata value of type `kind`; an array is (item type, [items])."""
    if kind == STRING:
        return string(item)
    if kind == ARRAY:
        item_kind, items = item
        return struct.pack("<IQ", item_kind, len(items)) + b"".join(value(item_kind, i)
                                                                  for i in items)
    return struct.pack(SCALAR[kind], item)


def gguf_bytes(tensors=(), metadata=(), data=b"", alignment=32, version=3, pad=True) -> bytes:
    """A GGUF file: `metadata` is [(key, type, value)], `tensors` [(name, dims in GGUF order
    (fastest first), ggml type, offset from the data start)], `data` the bytes after the
    header's padding to `alignment` (pad=False: no padding)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata))
    for key, kind, item in metadata:
        out += string(key) + struct.pack("<I", kind) + value(kind, item)
    for name, dims, kind, offset in tensors:
        out += string(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", kind, offset)
    if pad:
        out += b"\0" * (-len(out) % alignment)
    return out + data


def header_size(tensors=(), metadata=(), alignment=32) -> int:
    """Where the data of such a file starts."""
    return len(gguf_bytes(tensors, metadata, alignment=alignment))


def safetensors_bytes(tensors) -> bytes:
    """A safetensors file's bytes from {name: (dtype, shape, raw bytes)}: the header as given,
    so a test can write shapes and sizes that disagree."""
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)
