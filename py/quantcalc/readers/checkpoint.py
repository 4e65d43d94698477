"""A checkpoint: the tensors of one or more files, listed from their headers and read by offset,
a slab of rows at a time, never a whole file.

Readable: the types schema/file_types.py lists for the scan: safetensors (one file, shards with
their index, or a folder), GGUF (F32/F16/BF16/F64 tensors; already-quantized ones are listed and
dequantized for their statistics by formats/ggml/decode.py), .npz and .npy. The types it refuses
(PyTorch pickles: loading one runs code from the file) are refused with the table's reason.

A path works the same in CPython and in the page's worker, where the user's `File`s are mounted
with Pyodide's WORKERFS: Python's file reads become `File.slice` reads, so the worker's memory holds
a slab, not the file (perfetto's trace_stream idea).
"""

import json
import os
import re
import zipfile
from dataclasses import field
from typing import Optional

import numpy as np

from quantcalc.readers import file_parts, stored_safetensors
from quantcalc.formats.ggml import decode as ggml_decode
from quantcalc.readers import gguf as gguf_file
from quantcalc.readers.arrays import (SAFETENSORS_DTYPES, check_expansion, names_in_message, safetensors_entry, safetensors_header)
from quantcalc.errors import QuantcalcError, shortened
from quantcalc.readers.slab_reader import ZIP_ERRORS, SlabReader, read_exactly
from quantcalc.records import record
from quantcalc.schema import file_types

FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}
INTEGER_DTYPE = re.compile(r"(?i)(u?int|i|u)\d+|bool")  # I64, U8, int64 (.npy), bool


@record
class TensorEntry:
    """Where one tensor lives and how it is stored."""

    name: str
    shape: tuple
    dtype: str               # as stored: F32, F16, BF16, I8, Q4_K, ...
    path: str
    offset: int              # absolute byte offset of the first value (npz: inside the member)
    nbytes: int
    member: Optional[str] = None     # the .npy inside an .npz
    ggml_type: Optional[int] = None  # GGUF's type number
    fortran_order: bool = False
    byte_order: str = "<"            # ">": a big-endian .npy, swapped as it is read
    stored: Optional[object] = None  # quantized with scales beside it (stored_safetensors.py)

    @property
    def stored_format(self) -> Optional[str]:
        """The quantized format a safetensors tensor is stored in (FP8 with its scales, packed
        int4), or what it is part of (a scale tensor), else None."""
        return None if self.stored is None else self.stored.label

    @property
    def count(self) -> int:
        total = 1
        for n in self.shape:
            total *= int(n)
        return total

    @property
    def readable(self) -> bool:
        """Its original float values can be read (not integers, not already quantized)."""
        return self.dtype in FLOAT_DTYPES

    @property
    def not_quantized(self) -> Optional[str]:
        """Why the tensor is left as it is stored, or None: the one rule for tensors that are
        not floats, which the scan follows (no format is measured, the tensor counts at its
        stored size) and the calculator states on its result. Integers (I64 position ids,
        token type ids, masks) are indices and counts, not weights: quantizing them corrupts
        them. None for floats, quantized types and tensors stored with their scales."""
        if self.readable or self.quantized or self.stored is not None:
            return None
        if INTEGER_DTYPE.fullmatch(self.dtype):
            return (f"{self.dtype} values, not floats: integer tensors (positions, ids, masks) "
                    f"are usually not quantized")
        return f"{self.dtype} values, not floats: not quantized"

    @property
    def quantized(self) -> bool:
        """Stored as one of llama.cpp's quantized (or integer) types that quantcalc knows,
        decoded or not; a type number it does not know is neither readable nor quantized."""
        return self.ggml_type is not None and self.dtype not in FLOAT_DTYPES \
            and ggml_decode.bits_per_value(self.ggml_type) is not None

    @property
    def rows(self) -> int:
        """Slabs are cut along the first axis; a 1-D tensor is one row."""
        return int(self.shape[0]) if len(self.shape) > 1 else 1

    @property
    def row_values(self) -> int:
        return self.count // self.rows if self.rows else 0


@record
class Checkpoint:
    tensors: list
    files: list                                # (path, size in bytes)
    notes: list = field(default_factory=list)  # what was skipped and why

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)

    def get(self, name) -> TensorEntry:
        for entry in self.tensors:
            if entry.name == name:
                return entry
        raise QuantcalcError(f"the checkpoint has no tensor named '{shortened(str(name), 60)}'; "
                             f"it has {names_in_message(t.name for t in self.tensors)}", "tensor")


def open_checkpoint(paths) -> Checkpoint:
    """List the tensors of the files, folders or index files in `paths` (headers only)."""
    paths = [str(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    if not paths:
        raise QuantcalcError("give a checkpoint: files, a folder or an index file", "file")
    files, notes = [], []
    for path in paths:
        files.extend(_expand(path, notes))
    files = list(dict.fromkeys(files))
    tensors, sized = [], []
    for path in files:
        size = _size(path)
        sized.append((path, size))
        tensors.extend(_list_file(path, size))
    seen = {}
    for entry in tensors:
        if entry.name in seen:
            raise QuantcalcError(f"tensor '{shortened(entry.name, 60)}' is in both "
                                 f"{os.path.basename(seen[entry.name])} and "
                                 f"{os.path.basename(entry.path)}", "file")
        seen[entry.name] = entry.path
    if not tensors:
        configs = [os.path.basename(p) for p in paths if not os.path.isdir(p)
                   and getattr(_scanned(os.path.basename(p)), "reader", None) == "config"]
        if configs and not files:
            raise QuantcalcError(f"{configs[0]} is a model configuration, not a checkpoint: "
                                 f"give the tensor files beside it, or their folder", "file")
        raise QuantcalcError("the checkpoint holds no tensors", "file")
    stored_safetensors.recognise([e for e in tensors if e.ggml_type is None])
    return Checkpoint(tensors, sized, notes)


def _scanned(name):
    """The file type of `name` if the scan takes it (to read it, or to refuse it), else None."""
    kind = file_types.of(name)
    return kind if kind is not None and file_types.SCAN in kind.tools else None


def _expand(path, notes):
    """The data files a path stands for: a file, an index's shards, or a folder's files."""
    name = os.path.basename(path)
    if os.path.isdir(path):
        return _expand_folder(path, name, notes)
    kind = _scanned(name)
    if kind is None:
        raise QuantcalcError(f"{name}: a checkpoint is a "
                             f"{file_types.listed(file_types.SCAN)} file", "file")
    if kind.refused:
        raise QuantcalcError(kind.refusal(name), "file")
    if kind.reader == "config":
        return []  # no tensors: api/model_facts reads it from the folder
    return _shards_of_index(path) if kind.reader == "index" else [path]


def _expand_folder(path, name, notes):
    """A folder's index (its shards), or else every data file in it; refused files are skipped
    with a note, or refused with the reason when there is nothing else."""
    inside = [(n, _scanned(n)) for n in sorted(file_parts.logical_names(os.listdir(path)))]
    indexes = [n for n, kind in inside if kind is not None and kind.reader == "index"]
    if indexes:
        return _expand(os.path.join(path, indexes[0]), notes)
    data = [n for n, kind in inside if kind is not None and not kind.refused
            and kind.reader != "config"]
    refused = [(n, kind) for n, kind in inside if kind is not None and kind.refused]
    if not data:
        if refused:
            raise QuantcalcError(refused[0][1].refusal(refused[0][0]), "file")
        raise QuantcalcError(f"the folder {name} holds no "
                             f"{file_types.listed(file_types.SCAN)} files", "file")
    if refused:
        names, kind = [n for n, _ in refused], refused[0][1]
        notes.append(f"skipped {len(names)} {kind.label} file(s) in {name} "
                     f"({', '.join(names[:3])}): {kind.refused}")
    return [os.path.join(path, n) for n in data]


def _shards_of_index(path):
    name = os.path.basename(path)
    try:
        with file_parts.open_file(path) as stream:
            index = json.loads(stream.read(64 << 20).decode("utf-8"))
    except OSError as exc:
        raise QuantcalcError(f"cannot read {name}: {exc.strerror}", "file") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise QuantcalcError(f"{name} is not a valid index (JSON: {exc})", "file") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str)
                                                   for v in weight_map.values()):
        raise QuantcalcError(f"{name} has no weight_map of tensor name -> shard file", "file")
    folder = os.path.dirname(path)
    shards = list(dict.fromkeys(weight_map.values()))
    for shard in shards:
        _check_shard(name, shard)
    present = file_parts.names_in(folder)  # the folder is listed once, not once per shard
    missing = [s for s in shards if s not in present]
    if missing:
        raise QuantcalcError(f"{name} lists {len(shards):,} shards and {len(missing):,} of them "
                             f"are missing: {names_in_message(missing, 5)}. Give all of them",
                             "file")
    return [os.path.join(folder, s) for s in shards]


def _check_shard(index, shard):
    """A shard an index names: a file beside it, of a type the scan reads."""
    if os.path.basename(shard) != shard or shard in ("", ".", ".."):
        raise QuantcalcError(f"{index} names a shard outside its folder: "
                             f"'{shortened(shard, 60)}'", "file")
    kind = _scanned(shard)
    if kind is not None and kind.refused:
        raise QuantcalcError(f"{index} names a shard quantcalc does not open: "
                             f"{kind.refusal(shortened(shard, 60))}", "file")
    if kind is None or kind.reader == "index":
        raise QuantcalcError(f"{index} names a shard '{shortened(shard, 60)}' that is not a "
                             f"{file_types.listed(file_types.SCAN)} file", "file")


def _size(path):
    try:
        return file_parts.size(path)
    except OSError as exc:
        reason = "not a regular file" if isinstance(exc, IsADirectoryError) else exc.strerror
        raise QuantcalcError(f"cannot read {os.path.basename(path)}: {reason}",
                             "file") from None


def _reader(path):
    def read(offset, size):
        with file_parts.open_file(path) as stream:
            stream.seek(offset)
            return stream.read(size)
    return read


def _list_file(path, size):
    """One data file's tensors, listed by its file type's reader (.npy unless it has one)."""
    reader = getattr(file_types.of(path), "reader", "npy")
    if reader == "safetensors":
        return _list_safetensors(path, size)
    if reader == "gguf":
        return _list_gguf(path, size)
    if reader == "npz":
        return _list_npz(path)
    return [_npy_entry(path, os.path.basename(path).rsplit(".", 1)[0],
                       file_parts.open_file(path), 0, size)]


def _list_safetensors(path, size):
    name = os.path.basename(path)
    header, base = safetensors_header(_reader(path), size, name)
    entries = []
    for tensor, info in header.items():
        dtype, shape, begin, end = safetensors_entry(info, name, tensor)
        entry = TensorEntry(tensor, tuple(shape), dtype, path, base + begin, end - begin)
        width = SAFETENSORS_DTYPES[dtype].itemsize if dtype in SAFETENSORS_DTYPES else None
        if width is not None and end - begin != entry.count * width or begin > end:
            raise QuantcalcError(f"{name}: tensor '{shortened(tensor, 60)}' has offsets "
                                 f"{begin}..{end} that do not match its shape {shape} and dtype "
                                 f"{dtype}", "file")
        if base + end > size:
            raise QuantcalcError(f"{name} is truncated: tensor '{shortened(tensor, 60)}' ends at "
                                 f"byte {base + end:,} but the file has {size:,}", "file")
        entries.append(entry)
    return entries


def _list_gguf(path, size):
    """A GGUF's tensors from its header, read through one handle a megabyte at a time. A tensor
    of a ggml type quantcalc does not know is listed with no bytes (gguf.py knows no size)."""
    name = os.path.basename(path)
    try:
        with file_parts.open_file(path) as stream:
            def read(offset, count):
                stream.seek(offset)
                return stream.read(count)
            header = gguf_file.read_header(read, size, name)
    except OSError as exc:
        raise QuantcalcError(f"cannot read {name}: {exc.strerror or exc}", "file") from None
    d = header.directory
    names = {kind: gguf_file.type_name(kind) for kind in set(d.kinds)}
    return [TensorEntry(tensor, shape, names[kind], path, offset, nbytes or 0, None, kind)
            for tensor, shape, kind, offset, nbytes in zip(d.names, d.shapes, d.kinds,
                                                           d.offsets, d.nbytes)]


def _npy_entry(path, tensor, stream, base, limit, member=None):
    """The entry of an .npy held in `stream` (a file, or an .npz member) at `base`."""
    where = f"{os.path.basename(path)}" + (f"[{member}]" if member else "")
    try:
        version = np.lib.format.read_magic(stream)
        shape, fortran, dtype = np.lib.format._read_array_header(stream, version)
    except (ValueError, OSError, SyntaxError) as exc:
        raise QuantcalcError(f"{where} is not a valid .npy ({exc})", "file") from None
    except ZIP_ERRORS as exc:
        raise QuantcalcError(f"{where} is damaged: {shortened(str(exc), 120)}", "file") from None
    finally:
        offset = stream.tell()
        stream.close()
    kinds = {"f8": "F64", "f4": "F32", "f2": "F16"}
    stored = kinds.get(f"{dtype.kind}{dtype.itemsize}")
    entry = TensorEntry(tensor, tuple(shape), stored or str(dtype), path, base + offset, 0,
                        member=member, fortran_order=bool(fortran), byte_order=dtype.str[0])
    entry.nbytes = entry.count * dtype.itemsize
    if entry.offset + entry.nbytes > base + limit:
        raise QuantcalcError(f"{where} is truncated: it claims {entry.nbytes:,} bytes of values",
                             "file")
    return entry


def _list_npz(path):
    name = os.path.basename(path)
    try:
        archive = zipfile.ZipFile(file_parts.open_file(path))
    except (zipfile.BadZipFile, OSError) as exc:
        raise QuantcalcError(f"{name} is not a valid .npz ({exc})", "file") from None
    with archive:
        entries = []
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            check_expansion(info, name, info.filename[:-4])
            try:
                member = archive.open(info)
            except (*ZIP_ERRORS, OSError, NotImplementedError) as exc:
                raise QuantcalcError(f"{name}[{info.filename}] cannot be read: "
                                     f"{shortened(str(exc), 120)}", "file") from None
            entries.append(_npy_entry(path, info.filename[:-4], member, 0, info.file_size,
                                      member=info.filename))
        return entries


def read_tensor(path, tensor=None) -> np.ndarray:
    """One tensor of a .safetensors or .gguf file, read by offset (the calculator's file input:
    a shard of several GB is never read whole). Integer tensors come back as floats."""
    model = open_checkpoint([path])
    return read_entry(model.get(tensor) if tensor else model.tensors[0])


def read_entry(entry) -> np.ndarray:
    """The values of a listed tensor, as read_tensor gives them: a tensor stored quantized with
    its scales (FP8) dequantized, or refused in one line naming its format (packed int4)."""
    if entry.stored is not None:
        return stored_safetensors.values_reader(entry).read_all()
    if entry.readable or entry.ggml_type is not None:
        return SlabReader(entry).read_all()
    if entry.dtype not in SAFETENSORS_DTYPES:
        raise QuantcalcError(f"'{shortened(entry.name, 60)}' holds {entry.dtype} values; "
                             f"supported: {', '.join(SAFETENSORS_DTYPES)}", "tensor")
    if entry.count == 0:
        raise QuantcalcError(f"'{shortened(entry.name, 60)}' holds no values (its shape is "
                             f"{list(entry.shape)})", "tensor")
    with file_parts.open_file(entry.path) as stream:
        stream.seek(entry.offset)
        raw = read_exactly(stream, entry.nbytes, entry)
    values = raw.view(SAFETENSORS_DTYPES[entry.dtype]).reshape(entry.shape)
    return values.astype(np.float64)
