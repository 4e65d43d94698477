"""Arrays out of .npy, .npz and .safetensors files, read with numpy alone and checked before
anything large is allocated: a header's claims against the bytes there are, a compressed
member's expansion, a JSON header's nesting and every entry's types.
"""

import io
import json
import re
import struct
import sys

import numpy as np

from quantcalc.errors import QuantcalcError, shortened

MAX_NESTING = 64          # brackets in pasted text; JSON objects/arrays in a file header
# the safetensors library's own limit (MAX_HEADER_SIZE): a larger length is not a header
MAX_SAFETENSORS_HEADER = 100_000_000
NAMES_IN_MESSAGES = 8     # a message lists at most this many tensor names, then the count
SAFETENSORS_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # widened to float32 below
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
}


def bf16_to_float32(raw):
    """bfloat16 bit patterns (uint16) as float32: a bfloat16 is the top half of a float32."""
    raw = np.asarray(raw)
    if sys.byteorder != "little":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    # the patterns copied into the high halves of words whose low halves are zeroed: no shift,
    # and no calloc'd pages to fault in (twice as fast as np.zeros then one copy)
    out = np.empty(raw.shape + (2,), np.uint16)
    out[..., 0] = 0
    out[..., 1] = raw
    return out.view(np.float32).reshape(raw.shape)


def _checked_array(array, what: str) -> np.ndarray:
    """Accept real numeric arrays only; convert them to float (keeping float32/float64)."""
    array = np.asarray(array)
    kind = array.dtype.kind
    if kind == "f":  # float32 and float64 kept (in the machine's byte order), others widened
        native = array.dtype.newbyteorder("=")
        out = array.astype(native if native in (np.float32, np.float64) else np.float32,
                           copy=False)
    elif kind in "iub":
        out = array.astype(np.float64)
    else:
        raise QuantcalcError(f"{what} has dtype {array.dtype}, which is not a real number type; "
                             f"quantcalc reads float and integer arrays", "file")
    return np.ascontiguousarray(out)


def parse_npy(data: bytes, name: str = "file") -> np.ndarray:
    if bytes(data[:6]) != b"\x93NUMPY":
        raise QuantcalcError(f"{name} is not a .npy file (it does not start with \\x93NUMPY)",
                             "file")
    _check_npy_size(data, name)
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        message = str(exc).splitlines()[0] if str(exc) else "malformed header"
        if "pickle" in message.lower():
            message = "it holds Python objects (pickled data), which are never loaded"
        raise QuantcalcError(f"{name} cannot be read: {message}", "file") from None
    except (EOFError, OSError) as exc:
        raise QuantcalcError(f"{name} is truncated or damaged: {exc}", "file") from None
    return _checked_array(array, name)


def _check_npy_size(data, name):
    """Refuse a header that claims more values than the file holds: numpy would allocate the
    claimed array first (a 200-byte file claiming 10^12 values is a MemoryError)."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
            else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(stream)
    except (ValueError, EOFError, OSError, SyntaxError, TypeError):
        return  # np.load names what is wrong with the header
    if dtype.hasobject:
        return  # refused by np.load (pickled objects)
    count = 1
    for n in shape:
        count *= n
    need, have = count * dtype.itemsize, len(data) - stream.tell()
    if need > have:
        raise QuantcalcError(f"{name} is truncated or damaged: its header claims {count:,} "
                             f"values ({need:,} bytes) but the file holds {have:,} bytes of "
                             f"data", "file")


def npz_details(data: bytes, name: str = "file") -> list:
    """(array name, shape, dtype) of each member, from the .npy headers alone."""
    import zipfile  # .npz only: pasted values and .npy never load it
    out = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for array, member in _npz_members(data, name):
            try:
                with archive.open(member) as stream:
                    version = np.lib.format.read_magic(stream)
                    shape, _, dtype = np.lib.format._read_array_header(stream, version)
                out.append((array, tuple(shape), str(dtype)))
            except (ValueError, OSError, SyntaxError, zipfile.BadZipFile, EOFError):
                out.append((array, None, None))  # listed; choosing it gives the reason
    return out


def _npz_members(data, name):
    import zipfile  # .npz only: pasted values and .npy never load it
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [(m[:-4] if m.endswith(".npy") else m, m) for m in archive.namelist()]
    except (zipfile.BadZipFile, OSError, EOFError):
        raise QuantcalcError(f"{name} is not a readable .npz (zip) archive", "file") from None
    if not members:
        raise QuantcalcError(f"{name} holds no arrays", "file")
    return members


def parse_npz(data: bytes, tensor=None, name: str = "file") -> np.ndarray:
    import zipfile  # .npz only: pasted values and .npy never load it
    members = dict(_npz_members(data, name))
    chosen = tensor if tensor is not None else next(iter(members))
    if chosen not in members:
        raise QuantcalcError(f"{name} has no array named '{shortened(str(chosen), 60)}'; it has "
                             f"{names_in_message(members)}", "tensor")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            check_expansion(archive.getinfo(members[chosen]), name, chosen)
            member = archive.read(members[chosen])
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise QuantcalcError(f"{name}: array '{chosen}' cannot be read ({exc})", "file") from None
    return parse_npy(member, f"{name}[{chosen}]")


# A compressed array may expand this much before it looks like a decompression bomb (zeros
# compress about 1000:1, real weights barely at all); below SMALL_ARRAY_BYTES anything goes.
MAX_EXPANSION = 100
SMALL_ARRAY_BYTES = 64 << 20


def check_expansion(info, name, chosen):
    size, packed = info.file_size, max(info.compress_size, 1)
    if size > SMALL_ARRAY_BYTES and size > MAX_EXPANSION * packed:
        raise QuantcalcError(
            f"{name}: array '{shortened(chosen)}' would expand from {packed:,} to {size:,} bytes "
            f"({size // packed:,}:1); such archives are refused as decompression bombs. Save "
            f"it uncompressed (np.savez) if it is real", "file")


def names_in_message(names, limit=NAMES_IN_MESSAGES) -> str:
    """A few names and the count, never a list of 700,000 names on one line."""
    names = list(names)
    shown = ", ".join(f"'{shortened(n, 60)}'" for n in names[:limit])
    more = len(names) - limit
    return f"{shown} and {more:,} more ({len(names):,} in all)" if more > 0 else shown


def _json_nesting(raw: bytes) -> int:
    """How deeply the JSON in `raw` nests objects and arrays, without parsing it (the parser
    recurses, and a header nested 5,000 deep overflowed the stack in the page's wasm)."""
    outside = re.sub(rb'"(?:[^"\\]|\\.)*"', b"", raw)  # strings may hold brackets
    codes = np.frombuffer(outside, np.uint8)
    if codes.size == 0:
        return 0
    step = np.isin(codes, (ord("{"), ord("["))).astype(np.int64) \
        - np.isin(codes, (ord("}"), ord("]"))).astype(np.int64)
    return int(np.cumsum(step).max())


def _safetensors_header(data, name):
    return safetensors_header(lambda offset, size: data[offset:offset + size], len(data), name)


def safetensors_header(read, size, name):
    """({tensor name: entry}, byte where the data starts) of a .safetensors file of `size` bytes
    whose bytes `read(offset, count)` returns: only the header is read."""
    if size < 8:
        raise QuantcalcError(f"{name} is too short to be a .safetensors file", "file")
    (length,) = struct.unpack("<Q", bytes(read(0, 8)))
    if length > MAX_SAFETENSORS_HEADER:  # e.g. text or another format renamed .safetensors
        raise QuantcalcError(f"{name} is not a .safetensors file: its first 8 bytes are not a "
                             f"header length (they read as {length:,} bytes)", "file")
    if length > size - 8:
        raise QuantcalcError(f"{name} is truncated: its header says {length} bytes but the file "
                             f"has {size - 8} after the length", "file")
    raw = bytes(read(8, length))
    if _json_nesting(raw) > MAX_NESTING:
        raise QuantcalcError(f"{name} has a malformed header (JSON nested more than "
                             f"{MAX_NESTING} deep)", "file")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise QuantcalcError(f"{name} has a malformed JSON header ({exc})", "file") from None
    if not isinstance(header, dict):
        raise QuantcalcError(f"{name} has a malformed header (not a JSON object)", "file")
    header.pop("__metadata__", None)
    if not header:
        raise QuantcalcError(f"{name} holds no tensors", "file")
    return header, 8 + length


def _whole(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def safetensors_entry(info, name, chosen):
    """(dtype, shape, begin, end) of one header entry, each of the type the format says."""
    bad = f"{name}: tensor '{shortened(str(chosen), 60)}' has a malformed entry"
    if not isinstance(info, dict):
        raise QuantcalcError(f"{bad} (not a JSON object)", "file")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str):
        raise QuantcalcError(f"{bad} (dtype must be a string such as \"F32\")", "file")
    if not isinstance(shape, list) or not all(_whole(n) for n in shape):
        raise QuantcalcError(f"{bad} (shape must be a list of non-negative whole numbers)",
                             "file")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_whole, offsets))):
        raise QuantcalcError(f"{bad} (data_offsets must be two non-negative whole numbers)",
                             "file")
    return dtype, shape, offsets[0], offsets[1]


def safetensors_details(data: bytes, name: str = "file") -> list:
    """(tensor name, shape, dtype) of each entry, from the header alone."""
    out = []
    for tensor, info in _safetensors_header(data, name)[0].items():
        try:
            dtype, shape, _, _ = safetensors_entry(info, name, tensor)
            out.append((tensor, tuple(shape), dtype))
        except QuantcalcError:
            out.append((tensor, None, None))  # listed; choosing it gives the reason
    return out


def parse_safetensors(data: bytes, tensor=None, name: str = "file") -> np.ndarray:
    header, base = _safetensors_header(data, name)
    chosen = tensor if tensor is not None else next(iter(header))
    if chosen not in header:
        raise QuantcalcError(f"{name} has no tensor named '{shortened(str(chosen), 60)}'; it has "
                             f"{names_in_message(header)}", "tensor")
    dtype_name, shape, begin, end = safetensors_entry(header[chosen], name, chosen)
    if dtype_name not in SAFETENSORS_DTYPES:
        raise QuantcalcError(f"{name}: tensor '{chosen}' has dtype {dtype_name}; supported: "
                             f"{', '.join(SAFETENSORS_DTYPES)}", "tensor")
    dtype = SAFETENSORS_DTYPES[dtype_name]
    count = 1
    for n in shape:
        count *= n  # Python integers: a shape cannot overflow the check
    if not (0 <= begin <= end and end - begin == count * dtype.itemsize):
        raise QuantcalcError(f"{name}: tensor '{chosen}' has offsets {begin}..{end} that do not "
                             f"match its shape {shape} and dtype {dtype_name}", "file")
    if base + end > len(data):
        raise QuantcalcError(f"{name} is truncated: tensor '{chosen}' ends at byte {base + end} "
                             f"but the file has {len(data)}", "file")
    raw = np.frombuffer(data, dtype=dtype, count=count, offset=base + begin).reshape(shape)
    if dtype_name == "BF16":
        raw = bf16_to_float32(raw)
    return _checked_array(raw, f"{name}[{chosen}]")
