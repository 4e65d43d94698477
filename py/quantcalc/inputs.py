"""Turn what a user pastes or loads into a finite float array, or say exactly what is wrong.

Supported: pasted text (numbers separated by commas, spaces, semicolons or new lines; scientific
notation; optionally wrapped in brackets or in a NumPy `array(..., dtype=...)` repr, where nested
brackets give the shape), CSV/TXT files (a non-numeric header row is skipped; equal-width rows
give a matrix), .npy, .npz and .safetensors (F64/F32/F16/BF16 and integer tensors), read with
numpy alone. Every failure is a `QuantcalcError` naming the token, position, file or tensor.
"""

import array
import io
import json
import re
import struct
import zipfile

import numpy as np

from .errors import QuantcalcError

# A number as people and NumPy write it; deliberately stricter than float() (no "1_000", no "nan").
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)\Z", re.IGNORECASE)
_TOKEN = re.compile(r"[^\s,;\[\]()]+|[\[\]]")
_DTYPE_SUFFIX = re.compile(r",\s*dtype\s*=\s*[\w.']+\s*$")
MAX_NESTING = 64          # brackets in pasted text; JSON objects/arrays in a file header
NAMES_IN_MESSAGES = 8     # a message lists at most this many tensor names, then the count

SAFETENSORS_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # widened to float32 below
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
}
FILE_TYPES = (".npy", ".npz", ".safetensors", ".csv", ".txt")


def _where(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def parse_text(text: str, field: str = "values") -> np.ndarray:
    """Parse pasted numbers into a float64 array (1-D, or N-D from nested brackets)."""
    if not isinstance(text, str):
        raise QuantcalcError("the sample values must be text", field)
    body, shift = _numpy_repr_body(text)
    numbers, rows, depth, max_depth = [], [[]], 0, 0
    for token in _TOKEN.finditer(body):
        word = token.group()
        if word == "[":
            depth += 1
            if depth > MAX_NESTING:
                raise QuantcalcError(f"brackets nested more than {MAX_NESTING} deep at "
                                     f"{_where(text, token.start() + shift)}", field)
            max_depth = max(max_depth, depth)
            rows.append([])
            continue
        if word == "]":
            if depth == 0:
                raise QuantcalcError(
                    f"unmatched ']' at {_where(text, token.start() + shift)}", field)
            depth -= 1
            inner = rows.pop()
            rows[-1].append(inner)
            continue
        if _NUMBER.match(word):
            value = float(word)
            if not np.isfinite(value):
                raise QuantcalcError(
                    f"value '{word}' at {_where(text, token.start() + shift)} (number "
                    f"{len(numbers) + 1}) is too large for a float64", field)
            numbers.append(value)
            rows[-1].append(value)
            continue
        kind = "not a finite number (NaN and Inf cannot be quantized)" \
            if _NON_FINITE.match(word) else "not a number"
        raise QuantcalcError(
            f"'{_clip(word)}' at {_where(text, token.start() + shift)} (item {len(numbers) + 1}) is "
            f"{kind}", field)
    if depth:
        raise QuantcalcError(f"{depth} '[' not closed", field)
    if not numbers:
        raise QuantcalcError("no numbers found: paste values separated by commas, spaces, "
                             "semicolons or new lines", field)
    if max_depth <= 1:
        return np.array(numbers, np.float64)
    try:
        return np.array(rows[0] if len(rows[0]) != 1 else rows[0][0], np.float64)
    except ValueError:
        raise QuantcalcError("nested brackets have rows of different lengths; "
                             "the values must form a rectangular array", field) from None


def _numpy_repr_body(text):
    """The inside of "array([...], dtype=float32)" and where it starts; (text, 0) otherwise.

    Plain string operations, linear in the length: a lazy regex over the whole text took time
    quadratic in a run of spaces ("array(" and 200,000 spaces took 33 s)."""
    stripped = text.strip()
    if not (stripped.startswith("array") and stripped.endswith(")")):
        return text, 0
    rest = stripped[len("array"):].lstrip()
    if not rest.startswith("("):
        return text, 0
    start = text.index("(", text.index("array")) + 1
    end = text.rindex(")")
    inner = text[start:end]
    suffix = _DTYPE_SUFFIX.search(inner)
    return (inner[:suffix.start()] if suffix else inner), start


def _clip(word: str, limit: int = 30) -> str:
    return word if len(word) <= limit else word[:limit] + "..."


_QUOTED_DECIMAL_COMMA = re.compile(r'"[+-]?\d+,\d+"')


def parse_csv(data: bytes, name: str = "file") -> np.ndarray:
    """Parse CSV/TXT bytes: one or more numeric columns; a non-numeric first row is a header.

    Line by line from the bytes into one float64 buffer: bench/hostile_memory.py measures a
    95 MB file of 10^7 lines at 216 MB peak for the whole command (lists of Python floats took
    3.3 GB)."""
    data = bytes(data)
    values = array.array("d")
    widths, header_done, number = set(), False, 0
    for number, raw in enumerate(io.BytesIO(data[3:] if data[:3] == b"\xef\xbb\xbf" else data),
                                 start=1):
        line = _decode_line(raw, name, number).strip()
        if not line:
            continue
        if not header_done:
            header_done = True
            first = [t for t in re.split(r"[\s,;]+", line) if t]
            if first and not any(_NUMBER.match(t.strip('"')) or _NON_FINITE.match(t)
                                 for t in first):
                continue
        quoted = _QUOTED_DECIMAL_COMMA.search(line)
        if quoted:
            raise QuantcalcError(
                f"{name}: {quoted.group()} on line {number} looks like a number with a decimal "
                f"comma; quantcalc reads decimal points (1.5), so it would split it into two "
                f"values. Export the file with points as the decimal separator", "file")
        count = 0
        for column, token in enumerate((t.strip().strip('"') for t in
                                        re.split(r"[,;\t]|\s+", line)), start=1):
            if not token:
                continue
            if not _NUMBER.match(token):
                reason = "not a finite number" if _NON_FINITE.match(token) else "not a number"
                raise QuantcalcError(
                    f"{name}: '{_clip(token)}' on line {number}, field {column} is {reason}",
                    "file")
            values.append(float(token))
            count += 1
        widths.add(count)
    if not header_done:
        raise QuantcalcError(f"{name} is empty", "file")
    if not values:
        raise QuantcalcError(f"{name} has a header but no numbers", "file")
    out = np.frombuffer(values, np.float64)  # shares the buffer: no second copy
    width = next(iter(widths))
    if len(widths) == 1 and width > 1 and out.size > width:
        return out.reshape(-1, width)
    return out


def _decode_line(raw: bytes, name: str, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QuantcalcError(f"{name} is not a UTF-8 text file (line {number}, byte "
                             f"{exc.start + 1} of the line cannot be decoded)", "file") from None


def _checked_array(array, what: str) -> np.ndarray:
    """Accept real numeric arrays only; convert them to float (keeping float32/float64)."""
    array = np.asarray(array)
    kind = array.dtype.kind
    if kind == "f":
        out = array if array.dtype in (np.float32, np.float64) else array.astype(np.float32)
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


def npz_names(data: bytes, name: str = "file") -> list:
    return [n for n, _ in _npz_members(data, name)]


def _npz_members(data, name):
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [(m[:-4] if m.endswith(".npy") else m, m) for m in archive.namelist()]
    except (zipfile.BadZipFile, OSError, EOFError):
        raise QuantcalcError(f"{name} is not a readable .npz (zip) archive", "file") from None
    if not members:
        raise QuantcalcError(f"{name} holds no arrays", "file")
    return members


def parse_npz(data: bytes, tensor=None, name: str = "file") -> np.ndarray:
    members = dict(_npz_members(data, name))
    chosen = tensor if tensor is not None else next(iter(members))
    if chosen not in members:
        raise QuantcalcError(f"{name} has no array named '{_clip(str(chosen), 60)}'; it has "
                             f"{_names_in_message(members)}", "tensor")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _check_expansion(archive.getinfo(members[chosen]), name, chosen)
            member = archive.read(members[chosen])
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise QuantcalcError(f"{name}: array '{chosen}' cannot be read ({exc})", "file") from None
    return parse_npy(member, f"{name}[{chosen}]")


# A compressed array may expand this much before it looks like a decompression bomb (zeros
# compress about 1000:1, real weights barely at all); below SMALL_ARRAY_BYTES anything goes.
MAX_EXPANSION = 100
SMALL_ARRAY_BYTES = 64 << 20


def _check_expansion(info, name, chosen):
    size, packed = info.file_size, max(info.compress_size, 1)
    if size > SMALL_ARRAY_BYTES and size > MAX_EXPANSION * packed:
        raise QuantcalcError(
            f"{name}: array '{_clip(chosen)}' would expand from {packed:,} to {size:,} bytes "
            f"({size // packed:,}:1); such archives are refused as decompression bombs. Save "
            f"it uncompressed (np.savez) if it is real", "file")


def _names_in_message(names) -> str:
    """A few names and the count, never a list of 700,000 names on one line."""
    names = list(names)
    shown = ", ".join(f"'{_clip(n, 60)}'" for n in names[:NAMES_IN_MESSAGES])
    more = len(names) - NAMES_IN_MESSAGES
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
    if len(data) < 8:
        raise QuantcalcError(f"{name} is too short to be a .safetensors file", "file")
    (length,) = struct.unpack("<Q", bytes(data[:8]))
    if length > len(data) - 8:
        raise QuantcalcError(f"{name} is truncated: its header says {length} bytes but the file "
                             f"has {len(data) - 8} after the length", "file")
    raw = bytes(data[8:8 + length])
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


def _safetensors_entry(info, name, chosen):
    """(dtype, shape, begin, end) of one header entry, each of the type the format says."""
    bad = f"{name}: tensor '{_clip(str(chosen), 60)}' has a malformed entry"
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


def safetensors_names(data: bytes, name: str = "file") -> list:
    return list(_safetensors_header(data, name)[0])


def parse_safetensors(data: bytes, tensor=None, name: str = "file") -> np.ndarray:
    header, base = _safetensors_header(data, name)
    chosen = tensor if tensor is not None else next(iter(header))
    if chosen not in header:
        raise QuantcalcError(f"{name} has no tensor named '{_clip(str(chosen), 60)}'; it has "
                             f"{_names_in_message(header)}", "tensor")
    dtype_name, shape, begin, end = _safetensors_entry(header[chosen], name, chosen)
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
        # bfloat16 is the top half of a float32
        raw = (raw.astype(np.uint32) << 16).view(np.float32)
    return _checked_array(raw, f"{name}[{chosen}]")


def tensor_names(data: bytes, file_name: str) -> list:
    """Names a user can choose from in a multi-tensor file ([] for single-array files)."""
    kind = file_kind(file_name)
    if kind == ".npz":
        return npz_names(data, file_name)
    if kind == ".safetensors":
        return safetensors_names(data, file_name)
    return []


def file_kind(file_name: str) -> str:
    lower = file_name.lower()
    for suffix in FILE_TYPES:
        if lower.endswith(suffix):
            return suffix
    raise QuantcalcError(f"{file_name}: unsupported file type; use one of "
                         f"{', '.join(FILE_TYPES)}", "file")


def parse_file(data: bytes, file_name: str, tensor=None) -> np.ndarray:
    """Read any supported file from its bytes; `tensor` picks an array in .npz/.safetensors."""
    kind = file_kind(file_name)
    if len(data) == 0:
        raise QuantcalcError(f"{file_name} is empty", "file")
    if kind == ".npy":
        return parse_npy(data, file_name)
    if kind == ".npz":
        return parse_npz(data, tensor, file_name)
    if kind == ".safetensors":
        return parse_safetensors(data, tensor, file_name)
    return parse_csv(data, file_name)


def check_finite(array: np.ndarray, field: str = "values") -> np.ndarray:
    """Refuse NaN/Inf, naming the first one's (flat) position."""
    if array.size == 0:
        raise QuantcalcError("there are no values to quantize", field)
    bad = ~np.isfinite(array.reshape(-1))
    if bad.any():
        first = int(np.argmax(bad))
        raise QuantcalcError(
            f"{int(bad.sum())} value(s) are NaN or Inf (first at index {first}: "
            f"{array.reshape(-1)[first]}); quantization needs finite values", field)
    return array
