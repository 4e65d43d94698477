"""llama.cpp's K-quants against ggml itself: identical codes and identical float32
reconstructions, with and without an importance matrix (ggml's quantize_row_*_ref and
quantize_row_*_impl), over distributions, degenerate blocks, tiny and large magnitudes."""

import numpy as np
import pytest

import ggml_reference as ggml
from quantcalc import kquants

NMAX = {"q4_K": 15, "q5_K": 31}
ROWS, WIDTH = 16, 512  # 32 super-blocks


def tensors():
    rng = np.random.default_rng(7)
    normal = rng.standard_normal((ROWS, WIDTH))
    zero_blocks = normal.copy()
    zero_blocks[:, :32] = 0          # a zero sub-block
    zero_blocks[3, :256] = 0         # a zero super-block
    constant = normal.copy()
    constant[:, 64:96] = 0.75        # a constant sub-block (max == min after min <= 0)
    constant[5, 256:] = -2.0         # a constant negative super-block
    positive = np.abs(normal) + 3    # min > 0: the min is clamped to 0
    ties = np.round(normal * 4) / 4  # many equal values and exact grid points
    return {
        "normal": normal, "student-t(3)": rng.standard_t(3, (ROWS, WIDTH)),
        "uniform shifted": rng.uniform(-1, 3, (ROWS, WIDTH)),
        "one outlier per row": normal + np.where(rng.random((ROWS, WIDTH)) < 1 / 512, 40, 0),
        "zero blocks": zero_blocks, "constant blocks": constant, "all positive": positive,
        "ties": ties, "tiny (1e-6)": normal * 1e-6, "large (1e3)": normal * 1e3,
        "all zero": np.zeros((ROWS, WIDTH)),
    }


CASES = tensors()


@pytest.mark.parametrize("name", sorted(NMAX))
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("with_imatrix", [False, True])
def test_codes_and_reconstruction_are_ggmls(name, case, with_imatrix):
    x = CASES[case].astype(np.float32)
    imatrix = np.random.default_rng(3).uniform(0.01, 10, WIDTH).astype(np.float32) \
        if with_imatrix else None
    blocks, expected = ggml.quantize(name, x, imatrix)
    importance = None if imatrix is None else np.tile(imatrix, ROWS)
    codes, recon, clipped, _, _ = kquants.quantize_q45_k(x.reshape(-1, 256), NMAX[name],
                                                         importance)
    assert np.array_equal(codes.reshape(-1), ggml.codes(name, blocks).reshape(-1))
    assert np.array_equal(recon.reshape(x.shape).view(np.uint32), expected.view(np.uint32))
    assert np.isfinite(recon).all() and clipped.dtype == bool


GGUF_TYPES = {"q8_0": "q8_0", "q4_0": "q4_0", "q4_k": "q4_K", "q5_k": "q5_K"}


@pytest.mark.parametrize("name", sorted(GGUF_TYPES))
def test_bits_per_value_are_ggmls_block_sizes(name):
    from quantcalc import Config, analyze
    x = np.random.default_rng(1).standard_normal((4, 512))
    assert analyze(x, Config(format=name)).summary()["bits_per_value"] == \
        ggml.bits_per_value(GGUF_TYPES[name])


@pytest.mark.parametrize("name", ["q4_k", "q5_k"])
def test_the_analysis_reconstructs_as_ggml_with_and_without_an_importance_matrix(name):
    from quantcalc import Config, analyze
    rng = np.random.default_rng(11)
    x = rng.standard_t(4, (48, 768)).astype(np.float32)
    imatrix = rng.uniform(0, 3, 768).astype(np.float32)
    for weights in (None, imatrix):
        result = analyze(x, Config(format=name), importance=weights, chunk=1 << 14)
        _, expected = ggml.quantize(GGUF_TYPES[name], x, weights)
        assert np.array_equal(result.per_value.dequantized, expected.reshape(-1))
        summary = result.summary()
        assert summary["segments"] == x.size // 32 and summary["zero_point"] is None
        assert summary["q_max"] == NMAX[GGUF_TYPES[name]]


def test_rows_that_are_not_whole_super_blocks_are_refused_with_llama_cpps_fallback():
    from quantcalc import Config, QuantcalcError, analyze
    with pytest.raises(QuantcalcError, match="multiple of 256.*as Q5_0 instead") as err:
        analyze(np.ones((2, 320)), Config(format="q4_k"))
    assert err.value.field == "format"


def test_an_importance_matrix_is_checked_against_the_tensor_and_the_format():
    from quantcalc import Config, QuantcalcError, analyze
    x = np.ones((2, 256))
    for weights, words in ((np.ones(128), "rows have 256"), (-np.ones(256), "non-negative")):
        with pytest.raises(QuantcalcError, match=words):
            analyze(x, Config(format="q4_k"), importance=weights)
    with pytest.raises(QuantcalcError, match="does not use an importance matrix"):
        analyze(x, Config(format="q8_0"), importance=np.ones(256))
