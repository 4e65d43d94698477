"""formats/ggml/encode.py: the block bytes of quantcalc's quantization of rows are ggml's own
bytes for the same rows (ggml_quantize_chunk through libggml), for every type quantcalc makes,
with and without an importance matrix, over the distributions and degenerate blocks of
test_ggml_types.py. This is what the audit's `reproduced` compares with a GGUF's blocks."""

import numpy as np
import pytest

from tests.formats.test_ggml_types import CASES, GGML_NAMES, IMATRIX
from tests.support import ggml_reference as ggml
from quantcalc.formats.ggml import encode, types as ggml_types


@pytest.mark.parametrize("name", sorted(GGML_NAMES))
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("with_imatrix", [False, True], ids=["reference", "imatrix"])
def test_block_bytes_are_ggmls(name, case, with_imatrix):
    x = CASES[case].astype(np.float32)
    imatrix = IMATRIX if with_imatrix else None
    expected = ggml.block_bytes(GGML_NAMES[name], x, imatrix)
    ours = encode.block_bytes(name, ggml_types.quantize(name, x, imatrix))
    assert ours.dtype == np.uint8 and ours.shape == expected.shape
    if not np.array_equal(ours, expected):
        size = ggml.traits(GGML_NAMES[name]).type_size
        bad = np.flatnonzero((ours != expected).reshape(-1, size).any(axis=1))
        raise AssertionError(f"{len(bad)} blocks differ, first {bad[0]}: "
                             f"{ours.reshape(-1, size)[bad[0]]} vs "
                             f"{expected.reshape(-1, size)[bad[0]]}")


def test_every_type_quantcalc_makes_has_a_layout():
    assert set(encode.TYPES) == set(GGML_NAMES)
    with pytest.raises(ValueError):
        encode.block_bytes("iq2_xxs", None)
