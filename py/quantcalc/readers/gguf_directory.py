"""A GGUF's tensor directory: each tensor's name, dimensions, ggml type and offset, found in one
walk over the header's piece and checked for all tensors at once.

Entries are of any length (a name, then one to four dimensions), so they are found one after
the other: one Python step per tensor, which only notes where each entry's fields lie. The
fields themselves are then gathered and checked with numpy, one step per check for all tensors,
as llama.cpp's gguf.cpp checks them: at most four dimensions, element counts and bytes within
int64, rows of whole blocks of their type, offsets multiples of the alignment, tensors inside
the file and not overlapping, names unique. When a check fails anywhere, the tensors are checked
again one at a time (gguf.py's own order and messages), so the message names the first tensor at
fault, as it always did.
"""

import struct

import numpy as np

from quantcalc.errors import QuantcalcError, shortened
from quantcalc.formats.ggml import decode as ggml_decode
from quantcalc.records import record

MAX_DIMS = 4            # GGML_MAX_DIMS: gguf.cpp refuses a tensor with more
MAX_NAME = 1 << 16      # bytes in a tensor name (llama.cpp's are under 64)
INT64_MAX = (1 << 63) - 1
_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")
_TAIL = [struct.Struct(f"<{n}QIQ") for n in range(MAX_DIMS + 1)]  # dims, type, offset
# values per block and bytes per block of each ggml type number below _KNOWN (0: a type
# quantcalc does not know); any larger number is looked up at _KNOWN, which is none
_KNOWN = 64
_BLOCK = np.zeros(_KNOWN + 1, np.int64)
_BLOCK_BYTES = np.zeros(_KNOWN + 1, np.int64)
for _kind, (_, _values, _bytes) in ggml_decode.TYPES.items():
    _BLOCK[_kind], _BLOCK_BYTES[_kind] = _values, _bytes
_EXACT = float(1 << 60)  # below this, int64 products and float64 estimates cannot mislead


@record
class Directory:
    """The checked directory, one list per field, in the file's order. `shapes` in numpy order
    (slowest axis first; GGUF lists the fastest first), `offsets` absolute, `nbytes` None for
    a ggml type quantcalc does not know."""

    names: list
    shapes: list
    kinds: list
    offsets: list
    nbytes: list


@record
class Entries:
    """The directory as read, before its checks: names, and numpy arrays of each entry's
    dimension count, dimensions (GGUF order, padded with 1s to four), ggml type and offset from
    the data start."""

    names: list
    n_dims: np.ndarray
    dims: np.ndarray
    kinds: np.ndarray
    offsets: np.ndarray

    def fields(self, i):
        """(dims, ggml type, offset) of entry i as Python numbers."""
        return (self.dims[i, :self.n_dims[i]].tolist(), int(self.kinds[i]),
                int(self.offsets[i]))


def read_entries(window, count, read_string) -> Entries:
    """`count` entries from the window's position: those that lie whole in its piece found in
    one loop and their fields gathered with numpy, any other one field by field (a refill, or a
    message) with `read_string(window, what)`, the header's reader of strings."""
    names, parts = [], []
    while len(names) < count:
        parts.append(_entries_in_piece(window, count - len(names), names))
        if len(names) < count:
            parts.append(_entry(window, names, read_string))
    if not parts:
        parts.append(_gathered(b"", np.zeros(0, np.int64)))
    return Entries(names, *(np.concatenate(column) for column in zip(*parts)))


def _entries_in_piece(window, count, names):
    """Up to `count` entries from the window's piece, stopping at one that does not lie whole
    in it or needs a message (the field-by-field reading gives it): (dimension counts, dims,
    types, offsets) as arrays."""
    piece, local = window.piece, window.at - window.base
    end, u64, u32 = len(piece), _U64.unpack_from, _U32.unpack_from
    found = []  # where each entry's dimension count lies in the piece
    for _ in range(count):
        if local + 8 > end:
            break
        start = local + 8 + u64(piece, local)[0]
        if start + 4 > end or start - local > MAX_NAME:
            break
        n_dims = u32(piece, start)[0]
        if n_dims > MAX_DIMS or start + 16 + 8 * n_dims > end:
            break
        try:
            names.append(str(piece[local + 8:start], "utf-8"))
        except UnicodeDecodeError:
            break
        found.append(start)
        local = start + 16 + 8 * n_dims
    window.at = window.base + local
    return _gathered(piece, np.array(found, np.int64))


def _gathered(piece, at):
    """The fields of the entries whose dimension counts lie at `at` in `piece`: every u32 and
    u64 of the piece is one element of a view with a one-byte stride, so each field of all the
    entries is one gather."""
    count = at.size
    dims = np.ones((count, MAX_DIMS), np.uint64)
    if count == 0:
        return np.zeros(0, np.int64), dims, np.zeros(0, np.int64), np.zeros(0, np.uint64)
    u32 = np.ndarray((len(piece) - 3,), "<u4", piece, 0, (1,))
    u64 = np.ndarray((len(piece) - 7,), "<u8", piece, 0, (1,))
    n_dims = u32[at].astype(np.int64)
    for axis in range(MAX_DIMS):
        has = n_dims > axis
        dims[has, axis] = u64[at[has] + 4 + 8 * axis]
    tail = at + 4 + 8 * n_dims
    return n_dims, dims, u32[tail].astype(np.int64), u64[tail + 4].astype(np.uint64)


def _entry(window, names, read_string):
    tensor = read_string(window, "tensor name")
    n_dims = window.unpack(_U32)[0]
    if n_dims > MAX_DIMS:
        raise QuantcalcError(f"{window.name}: tensor '{shortened(tensor, 60)}' claims "
                             f"{n_dims:,} dimensions; GGUF tensors have at most {MAX_DIMS}",
                             "file")
    *dims, kind, offset = window.unpack(_TAIL[n_dims])
    names.append(tensor)
    return (np.array([n_dims], np.int64), np.array([dims + [1] * (MAX_DIMS - n_dims)], np.uint64),
            np.array([kind], np.int64), np.array([offset], np.uint64))


def checked(entries: Entries, data_start, alignment, size, name) -> Directory:
    """The Directory of the entries, or the message of the first that gguf.cpp refuses."""
    names, dims, kinds, offsets = entries.names, entries.dims, entries.kinds, entries.offsets
    count = len(names)
    if count == 0:
        return Directory([], [], [], [], [])
    known_kind = np.where(kinds < _KNOWN, kinds, _KNOWN)
    block, block_bytes = _BLOCK[known_kind], _BLOCK_BYTES[known_kind]
    known = block > 0
    wide = np.maximum(dims, 1)
    estimate, extent = _product(wide.astype(np.float64)), _product(wide.astype(np.int64))
    exact = (estimate < _EXACT) & (estimate * np.maximum(block_bytes, 1) < _EXACT)
    rows = dims[:, 0].astype(np.int64)
    nbytes = np.where((dims == 0).any(axis=1), 0, extent // np.maximum(block, 1) * block_bytes)
    fine = exact & ~(known & (rows % np.maximum(block, 1) != 0)) \
        & (offsets % np.uint64(alignment) == 0) & (offsets <= np.uint64(size))
    if fine.all() and len(set(names)) == count:
        starts = offsets.astype(np.int64) + data_start
        ends = starts + nbytes
        if ends.max() <= size and not _overlapping(starts[nbytes > 0], ends[nbytes > 0]):
            return Directory(names, _shapes(entries), kinds.tolist(), starts.tolist(),
                             [b if k else None for b, k in zip(nbytes.tolist(), known.tolist())])
    return _one_at_a_time(entries, data_start, alignment, size, name)


def _product(columns):
    """The product of each row's four numbers (np.prod along a short axis is slower)."""
    return columns[:, 0] * columns[:, 1] * columns[:, 2] * columns[:, 3]


def _shapes(entries):
    """Each entry's shape in numpy order (its GGUF dimensions reversed), as a tuple."""
    shapes = [()] * len(entries.names)
    for n_dims in np.unique(entries.n_dims).tolist():
        chosen = np.flatnonzero(entries.n_dims == n_dims)
        rows = entries.dims[chosen, :n_dims][:, ::-1].tolist()
        for i, shape in zip(chosen.tolist(), map(tuple, rows)):
            shapes[i] = shape
    return shapes


def _overlapping(starts, ends) -> bool:
    order = np.argsort(starts, kind="stable")
    return bool((starts[order][1:] < ends[order][:-1]).any())


def _one_at_a_time(entries, data_start, alignment, size, name):
    """The checks above, tensor by tensor in the file's order, with their messages (or the
    Directory, when what the fast checks flagged is fine after all)."""
    seen = set()
    for tensor in entries.names:
        if tensor in seen:
            raise QuantcalcError(f"{name} has two tensors named '{shortened(tensor, 60)}'",
                                 "file")
        seen.add(tensor)
    out = Directory(entries.names, [], [], [], [])
    for i, tensor in enumerate(entries.names):
        dims, kind, offset = entries.fields(i)
        shape, nbytes = _tensor(tensor, dims, kind, offset, alignment, name)
        out.shapes.append(shape)
        out.kinds.append(kind)
        out.offsets.append(data_start + offset)
        out.nbytes.append(nbytes)
    _check_placement(out, size, name)
    return out


def _tensor(tensor, dims, kind, offset, alignment, name):
    """(shape, bytes) of one directory entry, checked as gguf.cpp checks it."""
    shape = tuple(reversed(dims))
    extent = 1
    for n in dims:
        extent *= n or 1
    known = ggml_decode.TYPES.get(kind)
    row = dims[0] if dims else 1
    nbytes = None if known is None else extent // known[1] * known[2] if 0 not in dims else 0
    if extent > INT64_MAX or known is not None and (row % known[1] or nbytes > INT64_MAX) \
            or offset % alignment:
        _refuse_tensor(f"{name}: tensor '{shortened(tensor, 60)}'", shape, extent, known, row,
                       offset, alignment)
    return shape, nbytes


def _refuse_tensor(where, shape, extent, known, row, offset, alignment):
    if extent > INT64_MAX:
        raise QuantcalcError(f"{where} has dimensions {list(shape)}: more elements than a "
                             f"tensor can have (2^63)", "file")
    if known is not None and row % known[1] == 0 and offset % alignment == 0:
        raise QuantcalcError(f"{where} has {extent:,} {known[0]} values: more bytes than a "
                             f"file can hold (2^63)", "file")
    if known is not None and row % known[1]:
        raise QuantcalcError(f"{where} is {known[0]} with rows of {row:,} values, not a whole "
                             f"number of its blocks of {known[1]} values", "file")
    raise QuantcalcError(f"{where} starts at offset {offset:,}, which is not a multiple of the "
                         f"file's alignment ({alignment})", "file")


def _check_placement(directory, size, name):
    """Every tensor's bytes lie in the file, and no two tensors share any."""
    spans = []
    for tensor, offset, nbytes in zip(directory.names, directory.offsets, directory.nbytes):
        end = offset + (nbytes or 0)
        if end > size:
            what = "ends" if nbytes else "starts"
            raise QuantcalcError(f"{name} is truncated: tensor '{shortened(tensor, 60)}' "
                                 f"{what} at byte {end:,} but the file has {size:,}", "file")
        if nbytes:
            spans.append((offset, end, tensor))
    spans.sort()
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        if start < end:
            raise QuantcalcError(f"{name}: tensors '{shortened(first, 60)}' and "
                                 f"'{shortened(second, 60)}' overlap (the second starts at "
                                 f"byte {start:,}, before the first ends at {end:,})", "file")
