"""llama.cpp's types against ggml itself: identical codes and identical float32 reconstructions,
with and without an importance matrix (ggml's quantize_row_*_ref and quantize_row_*_impl), over
distributions, degenerate blocks, ties, tiny and large magnitudes."""

import numpy as np
import pytest

from tests.support import ggml_reference as ggml
from quantcalc import Config, QuantcalcError, analyze
from quantcalc.formats.ggml import types as ggml_types

GGML_NAMES = {"iq4_nl": "iq4_nl", "iq4_xs": "iq4_xs", "q8_0": "q8_0", "q4_0": "q4_0", "q4_1": "q4_1", "q5_0": "q5_0", "q5_1": "q5_1",
              "q2_k": "q2_K", "q3_k": "q3_K", "q4_k": "q4_K", "q5_k": "q5_K", "q6_k": "q6_K"}
ROWS, WIDTH = 16, 512  # 32 super-blocks, 256 blocks of 32


def tensors():
    rng = np.random.default_rng(7)
    normal = rng.standard_normal((ROWS, WIDTH))
    zero_blocks = normal.copy()
    zero_blocks[:, :32] = 0          # a zero block / sub-block
    zero_blocks[3, :256] = 0         # a zero super-block
    constant = normal.copy()
    constant[:, 64:96] = 0.75        # a constant block (max == min after min <= 0)
    constant[5, 256:] = -2.0         # a constant negative super-block
    ties = np.round(normal * 4) / 4  # many equal values and exact grid points
    signed_zeros = np.abs(normal)    # blocks whose extremes are zeros of both signs, in both
    signed_zeros[:, 0::32], signed_zeros[:, 1::32] = 0.0, -0.0  # orders: C keeps the first
    signed_zeros[8:, 0::32], signed_zeros[8:, 1::32] = -0.0, 0.0
    signed_zeros[::2, 64:128] *= -1  # ... as a block's maximum too
    return {
        "normal": normal, "student-t(3)": rng.standard_t(3, (ROWS, WIDTH)),
        "uniform shifted": rng.uniform(-1, 3, (ROWS, WIDTH)),
        "one outlier per row": normal + np.where(rng.random((ROWS, WIDTH)) < 1 / 512, 40, 0),
        "zero blocks": zero_blocks, "constant blocks": constant,
        "all positive": np.abs(normal) + 3, "ties": ties, "tiny (1e-5)": normal * 1e-5,
        "large (1e3)": normal * 1e3, "all zero": np.zeros((ROWS, WIDTH)),
        "signed zeros": signed_zeros,
    }


CASES = tensors()
IMATRIX = np.random.default_rng(3).uniform(0.01, 10, WIDTH).astype(np.float32)


@pytest.mark.parametrize("name", sorted(GGML_NAMES))
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("with_imatrix", [False, True], ids=["reference", "imatrix"])
def test_codes_and_reconstruction_are_ggmls(name, case, with_imatrix):
    x = CASES[case].astype(np.float32)
    imatrix = IMATRIX if with_imatrix else None
    blocks, expected = ggml.quantize(GGML_NAMES[name], x, imatrix)
    out = ggml_types.quantize(name, x, imatrix)
    assert np.array_equal(out.recon.view(np.uint32), expected.view(np.uint32))
    assert np.array_equal(out.codes.reshape(-1),
                          ggml.codes(GGML_NAMES[name], blocks).reshape(-1).astype(np.int64))
    assert np.isfinite(out.recon).all() and out.clipped.dtype == bool


@pytest.mark.parametrize("name", ["q8_0", "q4_0", "q5_0", "q4_1", "q5_1"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_legacy_types_store_ggmls_scale_and_min_bits(name, case):
    # block_q4_1 and kin begin with the fp16 d (and m): the numbers the analysis keeps per block
    x = CASES[case].astype(np.float32)
    blocks, _ = ggml.quantize(name, x)
    fields = blocks.reshape(-1, ggml.traits(name).type_size)[:, :4].copy().view(np.float16)
    out = ggml_types.quantize(name, x)
    assert np.array_equal(out.scales.astype(np.float16).view(np.uint16),
                          fields[:, 0].view(np.uint16))
    if name.endswith("_1"):
        assert np.array_equal(out.bases.astype(np.float16).view(np.uint16),
                              fields[:, 1].view(np.uint16))


@pytest.mark.parametrize("name", sorted(GGML_NAMES))
def test_bits_per_value_are_ggmls_block_sizes(name):
    x = np.random.default_rng(1).standard_normal((4, 512))
    assert analyze(x, Config(format=name)).summary()["bits_per_value"] == \
        ggml.bits_per_value(GGML_NAMES[name])


@pytest.mark.parametrize("name", sorted(GGML_NAMES))
def test_the_analysis_reconstructs_as_ggml_with_and_without_an_importance_matrix(name):
    rng = np.random.default_rng(11)
    x = rng.standard_t(4, (48, 768)).astype(np.float32)
    imatrix = rng.uniform(0, 3, 768).astype(np.float32)
    for weights in (None, imatrix):
        if weights is not None and name == "q8_0":
            continue  # ggml's Q8_0 takes no importance matrix (refused: see below)
        result = analyze(x, Config(format=name), importance=weights, chunk=1 << 14)
        _, expected = ggml.quantize(GGML_NAMES[name], x, weights)
        assert np.array_equal(result.per_value.dequantized, expected.reshape(-1))
        assert result.summary()["count"] == x.size


def test_rows_that_are_not_whole_super_blocks_are_refused_with_llama_cpps_fallback():
    with pytest.raises(QuantcalcError, match="multiple of 256.*as Q5_0 instead") as err:
        analyze(np.ones((2, 320)), Config(format="q4_k"))
    assert err.value.field == "format"
    with pytest.raises(QuantcalcError, match="multiple of 32.*stops.*Q4_1 has no fallback"):
        analyze(np.ones((2, 40)), Config(format="q4_1"))
    # Q2_K's fallback Q4_0 does not divide rows of 48 either: llama-quantize writes F16
    with pytest.raises(QuantcalcError, match="as F16 instead"):
        analyze(np.ones((2, 48)), Config(format="q2_k"))


def test_an_importance_matrix_is_checked_against_the_tensor_and_the_format():
    x = np.ones((2, 256))
    for weights, words in ((np.ones(128), "rows have 256"), (-np.ones(256), "non-negative")):
        with pytest.raises(QuantcalcError, match=words):
            analyze(x, Config(format="q4_k"), importance=weights)
    with pytest.raises(QuantcalcError, match="does not use an importance matrix"):
        analyze(x, Config(format="q8_0"), importance=np.ones(256))


# llama.cpp's own Python package, a second reference: its numpy quantizers for the legacy types
# (bytes), and its dequantizers for every type (reconstruction from ggml's bytes).
gguf = pytest.importorskip("gguf", reason="llama.cpp's gguf package is a test dependency")
GGUF_QUANTIZES = ("q8_0", "q4_0", "q4_1", "q5_0", "q5_1")


@pytest.mark.parametrize("name", sorted(GGML_NAMES))
def test_gguf_py_agrees(name):
    from gguf import GGMLQuantizationType, quants
    kind = GGMLQuantizationType[GGML_NAMES[name].upper()]
    x = CASES["student-t(3)"].astype(np.float32)
    blocks, _ = ggml.quantize(GGML_NAMES[name], x)
    ours = ggml_types.quantize(name, x)
    theirs = quants.dequantize(blocks.reshape(x.shape[0], -1), kind)
    assert np.array_equal(ours.recon.view(np.uint32), theirs.astype(np.float32).view(np.uint32))
    if name in GGUF_QUANTIZES:
        assert np.array_equal(quants.quantize(x, kind).reshape(-1), blocks)


def _best_index_int8(x):
    """ggml-quants.c best_index_int8, one float32 at a time, as the C code runs it."""
    val = [np.float32(v) for v in ggml_types.IQ4_VALUES]
    if x <= val[0]:
        return 0
    if x >= val[15]:
        return 15
    ml, mu = 0, 15
    while mu - ml > 1:
        mav = (ml + mu) // 2
        if x < val[mav]:
            mu = mav
        else:
            ml = mav
    return mu - 1 if x - val[mu - 1] < val[mu] - x else mu


def test_best_index_finds_cs_level_at_every_boundary():
    levels = ggml_types.IQ4_VALUES
    midpoints = (levels[1:] + levels[:-1]) / np.float32(2)
    integers = np.arange(-130, 117).astype(np.float32)  # the table's own boundaries
    centres = np.concatenate([levels, midpoints, integers, np.float32([0, -0.0, 1e-30])])
    around = [centres]
    for direction in (np.inf, -np.inf):  # three float32 steps either side of each
        step = centres
        for _ in range(3):
            step = np.nextafter(step, np.float32(direction))
            around.append(step)
    spread = np.random.default_rng(3).uniform(-140, 130, 3000).astype(np.float32)
    x = np.concatenate(around + [spread, np.float32([-1e30, 1e30, -127.5, 113.5])])
    expected = np.array([_best_index_int8(v) for v in x])
    assert np.array_equal(ggml_types.best_index(x), expected)


def test_every_gguf_type_is_sized_as_ggml_sizes_it():
    """decode.TYPES (how a GGUF's tensors are sized and listed) against ggml's own type traits:
    gguf-py's table said 40 bytes for Q8_1, ggml says 36 (two halves and 32 codes)."""
    from quantcalc.formats.ggml import decode
    for number, (name, values, size) in decode.TYPES.items():
        traits = ggml._lib.ggml_get_type_traits(number).contents
        assert (traits.blck_size, traits.type_size) == (values, size), name
