"""Turn what a user pastes or loads into a finite float array, or say exactly what is wrong.

Supported: pasted text (numbers separated by commas, spaces, semicolons or new lines; scientific
notation; optionally wrapped in brackets or in a NumPy `array(..., dtype=...)` repr, where nested
brackets give the shape), CSV/TXT files (a non-numeric header row is skipped; equal-width rows
give a matrix), and files held in memory, each read by the reader schema/file_types.py names for
its suffix (readers/arrays.py, readers/gguf.py). Every failure is a `QuantcalcError` naming the
token, position, file or tensor.
"""

import array
import io
import re

import numpy as np

from quantcalc.errors import QuantcalcError, shortened
from quantcalc.readers.arrays import (MAX_NESTING, npz_details, parse_npy, parse_npz, parse_safetensors, safetensors_details)
from quantcalc.schema import file_types

# A number as people and NumPy write it; deliberately stricter than float() (no "1_000", no "nan").
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)\Z", re.IGNORECASE)
_TOKEN = re.compile(r"[^\s,;\[\]()]+|[\[\]]")
_DTYPE_SUFFIX = re.compile(r",\s*dtype\s*=\s*[\w.']+\s*$")


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
            f"'{shortened(word)}' at {_where(text, token.start() + shift)} (item {len(numbers) + 1}) is "
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
                    f"{name}: '{shortened(token)}' on line {number}, field {column} is {reason}",
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


def tensor_names(data: bytes, file_name: str) -> list:
    """Names a user can choose from in a multi-tensor file ([] for single-array files)."""
    return [name for name, _, _ in tensor_details(data, file_name)]


# file_types' readers, for a file's bytes in memory: (its arrays, the chosen one)
def _gguf():
    """The GGUF reader, loaded when a GGUF is read (pasted values never need it)."""
    from quantcalc.readers import gguf
    return gguf


_DETAILS = {"npz": npz_details, "safetensors": safetensors_details,
            "gguf": lambda data, name: _gguf().bytes_details(data, name)}
_PARSERS = {"npy": lambda data, tensor, name: parse_npy(data, name),
            "npz": lambda data, tensor, name: parse_npz(data, tensor, name),
            "safetensors": lambda data, tensor, name: parse_safetensors(data, tensor, name),
            "gguf": lambda data, tensor, name: _gguf().bytes_tensor(data, tensor, name),
            "text": lambda data, tensor, name: parse_csv(data, name)}


def tensor_details(data: bytes, file_name: str) -> list:
    """(name, shape, dtype) of each array a user can choose in a multi-tensor file ([] for
    single-array files); shape and dtype are None where a header entry is unreadable."""
    kind = file_kind(file_name)
    return _DETAILS[kind.reader](data, file_name) if kind.several else []


def file_kind(file_name: str) -> file_types.FileType:
    """The type of a file the calculator reads, by its name; raises the reason for any other."""
    kind = file_types.of(file_name)
    if kind is not None and kind.refused:
        raise QuantcalcError(kind.refusal(file_name), "file")
    if kind is None or file_types.CALCULATOR not in kind.tools:
        raise QuantcalcError(f"{file_name}: unsupported file type; use a "
                             f"{file_types.listed(file_types.CALCULATOR)} file", "file")
    return kind


def parse_file(data: bytes, file_name: str, tensor=None) -> np.ndarray:
    """Read any file the calculator takes from its bytes; `tensor` picks an array in a file that
    holds several."""
    kind = file_kind(file_name)
    if len(data) == 0:
        raise QuantcalcError(f"{file_name} is empty", "file")
    return _PARSERS[kind.reader](data, tensor, file_name)


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
