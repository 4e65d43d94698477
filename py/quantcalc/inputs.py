"""Turn what a user pastes or loads into a finite float array, or say exactly what is wrong.

Supported: pasted text (numbers separated by commas, spaces, semicolons or new lines; scientific
notation; optionally wrapped in brackets or in a NumPy `array(..., dtype=...)` repr, where nested
brackets give the shape), CSV/TXT files (a non-numeric header row is skipped; equal-width rows
give a matrix), .npy, .npz and .safetensors (F64/F32/F16/BF16 and integer tensors), read with
numpy alone. Every failure is a `QuantcalcError` naming the token, position, file or tensor.
"""

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
_NUMPY_REPR = re.compile(r"^\s*array\s*\((.*?)(?:,\s*dtype\s*=\s*[\w.']+)?\s*\)\s*$", re.DOTALL)

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
    match = _NUMPY_REPR.match(text)
    body = match.group(1) if match else text
    shift = match.start(1) if match else 0
    numbers, rows, depth, max_depth = [], [[]], 0, 0
    for token in _TOKEN.finditer(body):
        word = token.group()
        if word == "[":
            depth += 1
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


def _clip(word: str, limit: int = 30) -> str:
    return word if len(word) <= limit else word[:limit] + "..."


def parse_csv(data: bytes, name: str = "file") -> np.ndarray:
    """Parse CSV/TXT bytes: one or more numeric columns; a non-numeric first row is a header."""
    text = _decode(data, name)
    lines = [(i, line) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise QuantcalcError(f"{name} is empty", "file")
    first = [t for t in re.split(r"[\s,;]+", lines[0][1].strip()) if t]
    if first and not any(_NUMBER.match(t) or _NON_FINITE.match(t) for t in first):
        lines = lines[1:]
    rows = []
    for number, line in lines:
        tokens = [t.strip().strip('"') for t in re.split(r"[,;\t]|\s+", line.strip())]
        row = []
        for column, token in enumerate((t for t in tokens if t), start=1):
            if not _NUMBER.match(token):
                reason = "not a finite number" if _NON_FINITE.match(token) else "not a number"
                raise QuantcalcError(
                    f"{name}: '{_clip(token)}' on line {number}, field {column} is {reason}",
                    "file")
            row.append(float(token))
        rows.append(row)
    if not rows or not any(rows):
        raise QuantcalcError(f"{name} has a header but no numbers", "file")
    widths = {len(r) for r in rows}
    if len(widths) == 1 and len(rows) > 1 and widths != {1}:
        return np.array(rows, np.float64)
    return np.array([v for r in rows for v in r], np.float64)


def _decode(data: bytes, name: str) -> str:
    try:
        return bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise QuantcalcError(
            f"{name} is not a UTF-8 text file (byte {exc.start} cannot be decoded)", "file"
        ) from None


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
        raise QuantcalcError(f"{name} has no array named '{chosen}'; it has: "
                             f"{', '.join(members)}", "tensor")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            member = archive.read(members[chosen])
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise QuantcalcError(f"{name}: array '{chosen}' cannot be read ({exc})", "file") from None
    return parse_npy(member, f"{name}[{chosen}]")


def _safetensors_header(data, name):
    if len(data) < 8:
        raise QuantcalcError(f"{name} is too short to be a .safetensors file", "file")
    (length,) = struct.unpack("<Q", bytes(data[:8]))
    if length > len(data) - 8:
        raise QuantcalcError(f"{name} is truncated: its header says {length} bytes but the file "
                             f"has {len(data) - 8} after the length", "file")
    try:
        header = json.loads(bytes(data[8:8 + length]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise QuantcalcError(f"{name} has a malformed JSON header ({exc})", "file") from None
    if not isinstance(header, dict):
        raise QuantcalcError(f"{name} has a malformed header (not a JSON object)", "file")
    header.pop("__metadata__", None)
    if not header:
        raise QuantcalcError(f"{name} holds no tensors", "file")
    return header, 8 + length


def safetensors_names(data: bytes, name: str = "file") -> list:
    return list(_safetensors_header(data, name)[0])


def parse_safetensors(data: bytes, tensor=None, name: str = "file") -> np.ndarray:
    header, base = _safetensors_header(data, name)
    chosen = tensor if tensor is not None else next(iter(header))
    if chosen not in header:
        raise QuantcalcError(f"{name} has no tensor named '{chosen}'; it has: "
                             f"{', '.join(header)}", "tensor")
    info = header[chosen]
    try:
        dtype_name, shape, (begin, end) = info["dtype"], list(info["shape"]), info["data_offsets"]
    except (KeyError, TypeError, ValueError):
        raise QuantcalcError(f"{name}: tensor '{chosen}' has a malformed entry", "file") from None
    if dtype_name not in SAFETENSORS_DTYPES:
        raise QuantcalcError(f"{name}: tensor '{chosen}' has dtype {dtype_name}; supported: "
                             f"{', '.join(SAFETENSORS_DTYPES)}", "tensor")
    dtype = SAFETENSORS_DTYPES[dtype_name]
    count = int(np.prod(shape, dtype=np.int64))
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
