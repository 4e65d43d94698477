"""SlabReader.rows: a sample of a tensor's rows read by offset (what an estimated scan of a
tensor too large to read whole reads) equals those rows of the whole tensor, in every stored
type; an .npz member, which is read only from its start, is refused."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantcalc.errors import QuantcalcError
from quantcalc.readers import checkpoint
from quantcalc.readers.slab_reader import SlabReader
from tests.support.checkpoints import write_gguf, write_safetensors

ROWS, COLUMNS = 40, 64


def values():
    return np.random.default_rng(0).standard_normal((ROWS, COLUMNS)).astype(np.float32)


@pytest.fixture(scope="module")
def readers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rows")
    made = {}
    for dtype in ("F32", "F16", "BF16"):
        path = folder / f"{dtype}.safetensors"
        write_safetensors(path, {"w": values()}, dtype=dtype)
        made[dtype] = path
    path = folder / "q4_0.gguf"
    write_gguf(path, {"blk.0.ffn_up.weight": np.random.default_rng(1).standard_normal(
        (ROWS, 256)).astype(np.float32)}, types={"blk.0.ffn_up.weight": "Q4_0"})
    made["Q4_0"] = path
    return {kind: SlabReader(checkpoint.open_checkpoint([str(path)]).tensors[0])
            for kind, path in made.items()}


@given(rows=st.lists(st.integers(0, ROWS - 1), min_size=1, max_size=ROWS, unique=True))
@settings(max_examples=40, deadline=None)
def test_rows_read_by_offset_equal_those_of_the_whole_tensor(readers, rows):
    rows = np.sort(np.array(rows))
    for kind, reader in readers.items():
        assert np.array_equal(reader.rows(rows), reader.read_all()[rows]), kind


def test_an_npz_member_cannot_be_read_by_offset(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, w=values())
    reader = SlabReader(checkpoint.open_checkpoint([str(path)]).tensors[0])
    assert not reader.seekable
    with pytest.raises(QuantcalcError, match="cannot be read by offset"):
        reader.rows(np.array([0, 1]))
