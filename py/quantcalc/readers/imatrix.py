"""llama.cpp's importance matrices: read both file formats, give the weights of one tensor.

An importance matrix holds, for each weight matrix of a model, the mean of the squared input
activations of every column (llama-imatrix measures them on calibration text); llama-quantize
hands them to ggml's searches as `quant_weights`. Two formats, as llama.cpp reads them:
  - GGUF (llama-imatrix's default since 2025): F32 tensors `<name>.in_sum2` (sums of squared
    activations) and `<name>.counts` (how many rows were summed, per matrix, for MoE experts);
    the weight is in_sum2 / count, or 1 where a matrix saw no input;
  - the legacy .dat: int32 entry count; per entry an int32-length name, int32 ncall, int32 nval
    and nval float32 sums; then optionally the chunk count and the dataset name; the weight is
    sum / ncall (the sum itself when ncall is 0).
"""

import os
import struct
from dataclasses import field

import numpy as np

from quantcalc.readers import file_parts
from quantcalc.readers import gguf as gguf_file
from quantcalc.readers.arrays import names_in_message
from quantcalc.errors import QuantcalcError
from quantcalc.records import record

NAMES_LISTED = 5
# ggml's searches sum weight * code^2 over a block in float32 (IQ4: codes up to 127, blocks of
# 256): weights beyond this overflow them whatever the tensor holds
MAX_WEIGHT = 1e30


@record
class ImportanceMatrix:
    entries: dict = field(default_factory=dict)   # name -> float32 weights (n_mat * columns)
    chunk_count: int = 0
    datasets: list = field(default_factory=list)
    source: str = "imatrix"

    def names(self):
        return list(self.entries)

    def for_tensor(self, name, columns, expert=None):
        """The weights of tensor `name`, one per column of its rows (for a stack of MoE experts,
        those of `expert`)."""
        if name not in self.entries:
            raise QuantcalcError(
                f"{self.source} has no entry for '{name[:80]}'; it has "
                f"{names_in_message(self.entries, NAMES_LISTED)}. llama.cpp names tensors as in "
                f"GGUF files (blk.0.attn_q.weight): choose the entry", "imatrix")
        values = self.entries[name]
        if values.size % columns:
            raise QuantcalcError(f"the {self.source} entry '{name[:80]}' has {values.size:,} "
                                 f"values, not a whole number of rows of {columns:,} (this "
                                 f"tensor's row length)", "imatrix")
        matrices = values.size // columns
        if matrices == 0:
            raise QuantcalcError(f"the {self.source} entry '{name[:80]}' is empty", "imatrix")
        if matrices > 1 and expert is None:
            raise QuantcalcError(f"'{name[:80]}' holds {matrices} experts' weights; choose one",
                                 "imatrix")
        index = expert or 0
        if not 0 <= index < matrices:
            raise QuantcalcError(f"'{name[:80]}' has experts 0..{matrices - 1}", "imatrix")
        return values.reshape(matrices, columns)[index]


def read(data: bytes, name="imatrix") -> ImportanceMatrix:
    """An importance matrix from the bytes of a GGUF or legacy .dat file."""
    data = bytes(data)
    matrix = _read_gguf(data, name) if data[:4] == gguf_file.MAGIC else _read_legacy(data, name)
    for entry, values in matrix.entries.items():
        _check_values(values, entry, name)
    return matrix


def read_path(path, name=None) -> ImportanceMatrix:
    """The importance matrix in the file at `path`, which must be a regular file (whole or
    mounted in parts): its size is checked before it is read, because /dev/zero, or a link to it,
    never ends and a folder or a pipe has no size."""
    path = str(path)
    name = name or os.path.basename(path) or "imatrix"
    try:
        size = file_parts.size(path)
        with file_parts.open_file(path) as stream:
            data = stream.read(size)
    except IsADirectoryError:
        raise QuantcalcError(f"{name} is not a regular file (a device, pipe or folder); give an "
                             f"importance matrix file (GGUF or llama.cpp's .dat)",
                             "imatrix") from None
    except OSError as exc:
        raise QuantcalcError(f"cannot read {name}: {exc.strerror or exc}", "imatrix") from None
    return read(data, name)


def _check_values(values, entry, name):
    """Weights ggml's searches can use: finite, not negative, small enough for float32 sums."""
    if values.size == 0:
        raise QuantcalcError(f"{name}: entry '{entry[:80]}' is empty (no importance values)",
                             "imatrix")
    if not np.all(np.isfinite(values)):
        raise QuantcalcError(f"{name}: entry '{entry[:80]}' has importance values that are "
                             f"NaN or infinite (they overflow float32)", "imatrix")
    low, high = float(values.min()), float(values.max())
    if low < 0:
        raise QuantcalcError(f"{name}: entry '{entry[:80]}' has negative importance values "
                             f"(down to {low:.4g}); they are means of squares", "imatrix")
    if high > MAX_WEIGHT:
        raise QuantcalcError(f"{name}: entry '{entry[:80]}' has importance values up to "
                             f"{high:.4g}: they overflow ggml's float32 sums (at most "
                             f"{MAX_WEIGHT:.0e})", "imatrix")


def _read_gguf(data, name):
    header = gguf_file.read_bytes_header(data, name)
    sums, counts = {}, {}
    for tensor_name, info in header.tensors.items():
        for suffix, into in ((".in_sum2", sums), (".counts", counts)):
            if tensor_name.endswith(suffix):
                into[tensor_name[:-len(suffix)]] = info
    if not sums:
        raise QuantcalcError(f"{name} is a GGUF file without importance data (no "
                             f"'.in_sum2' tensors)", "imatrix")
    out = ImportanceMatrix(source=name)
    for entry, info in sums.items():
        if entry not in counts:
            raise QuantcalcError(f"{name}: '{entry[:80]}' has sums but no counts", "imatrix")
        if info.ggml_type != 0 or counts[entry].ggml_type != 0:
            raise QuantcalcError(f"{name}: sums and counts of '{entry[:80]}' must be F32",
                                 "imatrix")
        total = gguf_file.plain_tensor(data, header, info, name).astype(np.float32)
        count = np.rint(gguf_file.plain_tensor(data, header, counts[entry], name)).reshape(-1)
        per = _sums_per_matrix(total, count, entry, name)
        seen = count[:, None] > 0
        # llama-quantize: sums / count, and 1 for a matrix that saw no input
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(seen, per / np.where(seen, count[:, None], 1).astype(np.float32),
                              np.float32(1))
        out.entries[entry] = values.astype(np.float32).reshape(-1)
    chunks = header.metadata.get("imatrix.chunk_count")
    out.chunk_count = chunks if type(chunks) is int and chunks > 0 else 0
    datasets = header.metadata.get("imatrix.datasets", [])
    out.datasets = [str(d) for d in datasets] if isinstance(datasets, list) else \
        [datasets] if isinstance(datasets, str) else []
    return out


def _sums_per_matrix(total, count, entry, name):
    """The sums as (matrices, columns), one count per matrix: llama-imatrix writes in_sum2 of
    shape (matrices, columns) and counts of (matrices, 1); a 1-D in_sum2 holds them in a row."""
    if total.size == 0:
        raise QuantcalcError(f"{name}: entry '{entry[:80]}' is empty (its in_sum2 has shape "
                             f"{list(total.shape)})", "imatrix")
    rows = total.shape[0] if total.ndim == 2 else count.size
    if total.ndim > 2 or count.size == 0 or rows != count.size or total.size % count.size:
        raise QuantcalcError(f"{name}: entry '{entry[:80]}' has in_sum2 of shape "
                             f"{list(total.shape)} but {count.size} count(s): it needs one "
                             f"count per matrix (row)", "imatrix")
    return total.reshape(count.size, -1)


def _read_legacy(data, name):
    at = 0

    def take(size, what):
        nonlocal at
        if at + size > len(data):
            raise QuantcalcError(f"{name} is not an importance matrix (GGUF or llama.cpp's "
                                 f"legacy .dat): it ends inside {what}", "imatrix")
        chunk = data[at:at + size]
        at += size
        return chunk

    (n_entries,) = struct.unpack("<i", take(4, "the entry count"))
    if n_entries < 1 or n_entries * 16 > len(data):
        raise QuantcalcError(f"{name} is not an importance matrix (GGUF or llama.cpp's legacy "
                             f".dat): it claims {n_entries:,} entries", "imatrix")
    out = ImportanceMatrix(source=name)
    for number in range(n_entries):
        (length,) = struct.unpack("<i", take(4, f"entry {number + 1}"))
        if length < 0:
            raise QuantcalcError(f"{name}: entry {number + 1} has a negative name length",
                                 "imatrix")
        try:
            entry = take(length, f"entry {number + 1}'s name").decode("utf-8")
        except UnicodeDecodeError:
            raise QuantcalcError(f"{name}: entry {number + 1}'s name is not UTF-8",
                                 "imatrix") from None
        ncall, nval = struct.unpack("<ii", take(8, f"entry {number + 1}"))
        if nval < 1:
            raise QuantcalcError(f"{name}: entry '{entry[:80]}' has {nval} values", "imatrix")
        sums = np.frombuffer(take(4 * nval, f"entry '{entry[:80]}'s values"), "<f4")
        values = sums / np.float32(ncall) if ncall > 0 else sums
        out.entries[entry] = values.astype(np.float32)
    if at + 4 <= len(data):
        (out.chunk_count,) = struct.unpack("<i", take(4, "the chunk count"))
        if at + 4 <= len(data):
            (length,) = struct.unpack("<i", take(4, "the dataset name"))
            if 0 < length <= len(data) - at:
                out.datasets = [take(length, "the dataset name").decode("utf-8", "replace")]
    return out
