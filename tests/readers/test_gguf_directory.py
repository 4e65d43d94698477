"""The tensor directory of a GGUF checked for all tensors at once (gguf_directory.checked)
accepts exactly what the tensor-by-tensor checks accept, with the same values, and refuses what
they refuse with the same message: issue 26's checks (alignment, offsets, unique names, dims
bounds, rows of whole blocks, overlaps) kept while the listing became one numpy step per check.
"""

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from quantcalc import QuantcalcError
from quantcalc.readers import gguf as gguf_file
from quantcalc.readers import gguf_directory
from tests.readers.gguf_builder import UINT32, gguf_bytes

KINDS = [0, 1, 2, 8, 12, 14, 24, 28, 30, 9, 16, 4, 31, 99, 2 ** 32 - 1]
DIMS = st.one_of(st.sampled_from([0, 1, 2, 3, 4, 32, 100, 256, 512]),
                 st.integers(0, 2 ** 64 - 1), st.sampled_from([2 ** 31, 2 ** 61, 2 ** 63]))
ENTRY = st.tuples(st.sampled_from(["a", "b", "c", "blk.0.w", "é"]),
                  st.lists(DIMS, min_size=0, max_size=4), st.sampled_from(KINDS),
                  st.one_of(st.sampled_from([0, 32, 64, 96, 160, 1 << 20]),
                            st.integers(0, 2 ** 64 - 1), st.integers(0, 4096)))


def _outcome(check, entries, data_start, alignment, size):
    try:
        return check(entries, data_start, alignment, size, "d.gguf")
    except QuantcalcError as err:
        return err.message


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(ENTRY, max_size=6, unique_by=lambda e: e[0]) | st.lists(ENTRY, max_size=6),
       alignment=st.sampled_from([1, 32, 64]), data_start=st.sampled_from([0, 64, 4096]),
       size=st.sampled_from([0, 100, 4096, 1 << 21, 2 ** 63 - 1]))
def test_all_at_once_agrees_with_one_at_a_time(entries, alignment, data_start, size):
    read = gguf_directory.Entries(
        [name for name, _, _, _ in entries],
        np.array([len(dims) for _, dims, _, _ in entries], np.int64),
        np.array([dims + [1] * (4 - len(dims)) for _, dims, _, _ in entries],
                 np.uint64).reshape(-1, 4),
        np.array([kind for _, _, kind, _ in entries], np.int64),
        np.array([offset for _, _, _, offset in entries], np.uint64))
    fast = _outcome(gguf_directory.checked, read, data_start, alignment, size)
    slow = _outcome(gguf_directory._one_at_a_time, read, data_start, alignment, size)
    assert fast == slow


def test_a_directory_across_the_reads_is_gathered_as_a_whole(monkeypatch):
    """Entries that straddle two reads (one read per few hundred bytes here) are read field by
    field, the others gathered; both end in the same directory as one read of everything."""
    from quantcalc.readers import byte_window

    entries = [(f"blk.{i}.ffn_up.weight", [32, 1 + i % 3][: 1 + i % 2], 8, 128 * i)
               for i in range(200)]
    data = gguf_bytes(entries, [("general.alignment", UINT32, 32)], bytes(128 * 200))
    whole = gguf_file.read_bytes_header(data, "d.gguf")
    monkeypatch.setattr(byte_window, "CHUNK", 300)
    pieces = gguf_file.read_bytes_header(data, "d.gguf")
    assert pieces.directory == whole.directory
    assert [(t.name, t.shape, t.offset, t.nbytes) for t in whole.tensors.values()] == [
        (n, tuple(reversed(d)), whole.data_start + o, int(np.prod(d)) // 32 * 34)
        for n, d, _, o in entries]
