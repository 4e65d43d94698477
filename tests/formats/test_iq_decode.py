"""Stored GGUF blocks of the grid, ternary and FP4 types (formats/ggml/iq_decode.py) decode to
gguf-py's `gguf.quants.dequantize` bit for bit, and to ggml's own to_float: random blocks with
finite scales, any bytes at all (hypothesis), blocks damaged on purpose, and blocks made by real
quantization (ggml's for every type, gguf-py's where it can quantize the type)."""

import importlib
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from quantcalc.formats.ggml import decode, iq_decode, iq_grids
from tests.support.ggml_blocks import FP16_D, NUMBERS, finite_blocks, set_d
from tests.support.ggml_blocks import block_size as size

gguf = pytest.importorskip("gguf", reason="gguf (llama.cpp's gguf-py) is a test dependency")
from gguf import GGMLQuantizationType, quants  # noqa: E402

NEW = ["IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "TQ1_0", "TQ2_0",
       "MXFP4", "NVFP4"]
GGUF_PY_QUANTIZES = ("TQ1_0", "TQ2_0", "MXFP4")
BLOCKS = 4096  # random blocks per type


def ours(name, blocks):
    """quantcalc's values of `blocks`, with any numpy warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return decode.dequantize(np.asarray(blocks, np.uint8).reshape(-1), NUMBERS[name])


def theirs(name, blocks):
    blocks = np.asarray(blocks, np.uint8).reshape(-1, size(name))
    with np.errstate(all="ignore"):
        return quants.dequantize(blocks, GGMLQuantizationType[name]).reshape(-1)


def same_bits(a, b):
    """Equal as float32 bit patterns: -0.0 is not 0.0, and NaN must be the same NaN."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test_the_new_types_are_decoded_and_the_rest_still_refused():
    assert set(iq_decode.DECODERS) == set(NEW)
    assert all(decode.can_dequantize(NUMBERS[name]) for name in NEW)
    for number in (9, 15, 41, 4, 5, 31, 38, 99):  # Q8_1, Q8_K, Q1_0, removed, unknown
        assert not decode.can_dequantize(number)


@pytest.mark.parametrize("name", sorted(iq_grids.GRIDS))
def test_each_grid_unpacks_to_gguf_pys(name):
    reference = quants._type_traits[GGMLQuantizationType[name]]
    reference.init_grid()
    grid = iq_decode.grid(name)
    assert grid.dtype == np.float32 and grid.shape == reference.grid_shape
    assert same_bits(grid, reference.grid.reshape(reference.grid_shape))


@pytest.mark.parametrize("name", NEW)
def test_random_blocks_with_finite_scales_decode_as_gguf_py(name):
    blocks = finite_blocks(name, BLOCKS, 0)
    values = ours(name, blocks)
    assert values.dtype == np.float32 and values.size == BLOCKS * decode.TYPES[NUMBERS[name]][1]
    assert same_bits(values, theirs(name, blocks))
    if name != "MXFP4":  # E8M0 reaches 2^127 (overflowing float32, in ggml too), never 0
        assert np.isfinite(values).all()
        assert np.signbit(values[values == 0]).any()  # -0.0 occurs, compared by its bits


@pytest.mark.parametrize("name", NEW)
def test_random_blocks_decode_as_ggmls_own_to_float(name):
    ggml = _ggml()
    blocks = finite_blocks(name, BLOCKS, 1)
    assert same_bits(ours(name, blocks), ggml.dequantize(name.lower(), blocks))


@pytest.mark.parametrize("name", NEW)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_bytes_decode_as_gguf_py_without_a_warning(name, data):
    """Any bytes at all, damaged scales included: the same float32 bits (the same NaN too)."""
    count = data.draw(st.integers(1, 4))
    raw = data.draw(st.binary(min_size=count * size(name), max_size=count * size(name)))
    blocks = np.frombuffer(raw, np.uint8).reshape(count, size(name))
    assert same_bits(ours(name, blocks), theirs(name, blocks))


@pytest.mark.parametrize("name", sorted(set(NEW) & (set(FP16_D) | {"IQ1_M"})))
@pytest.mark.parametrize("d16", [0x7C00, 0xFC00, 0x7E00, 0x7C01])
def test_a_damaged_scale_decodes_to_inf_and_nan_as_gguf_py_without_a_warning(name, d16):
    blocks = set_d(name, finite_blocks(name, 8, 2), np.full(8, d16, np.uint16))
    values = ours(name, blocks)
    assert not np.isfinite(values).any() or name in ("TQ1_0", "TQ2_0")
    assert (~np.isfinite(values)).mean() > 0.5
    assert same_bits(values, theirs(name, blocks))


def _rows(seed, shape=(48, 512)):
    """Heavy-tailed weights (Student-t, 3 degrees of freedom) and a positive importance matrix."""
    rng = np.random.default_rng(seed)
    return (rng.standard_t(3, shape).astype(np.float32),
            rng.uniform(0.1, 4, shape[1]).astype(np.float32))


# ggml_quantize_init builds these grids' neighbour tables once per process: 5 to 26 s each
SLOW_INIT = ("IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_INIT
                                  else n for n in NEW])
def test_blocks_quantized_by_ggml_decode_as_ggml_and_gguf_py_do(name):
    ggml = _ggml()
    x, imatrix = _rows(NUMBERS[name])
    blocks, back = ggml.quantize(name.lower(), x, imatrix)
    values = ours(name, blocks)
    assert same_bits(values, back.reshape(-1)) and same_bits(values, theirs(name, blocks))
    # real quantization: the values resemble the weights (a broken layout would not)
    assert np.corrcoef(values, x.reshape(-1))[0, 1] > 0.5


@pytest.mark.parametrize("name", GGUF_PY_QUANTIZES)
def test_blocks_quantized_by_gguf_py_decode_as_gguf_py_does(name):
    x, _ = _rows(7)
    blocks = quants.quantize(x, GGMLQuantizationType[name])
    values = ours(name, blocks)
    assert same_bits(values, theirs(name, blocks))
    assert np.corrcoef(values, x.reshape(-1))[0, 1] > 0.5


def test_gguf_py_quantizes_no_other_new_type():
    """Where gguf-py learns to quantize another of these types, add it to GGUF_PY_QUANTIZES."""
    x, _ = _rows(0, (1, 256))
    for name in set(NEW) - set(GGUF_PY_QUANTIZES):
        with pytest.raises(NotImplementedError):
            quants.quantize(x, GGMLQuantizationType[name])


def _ggml():
    """ggml through libggml-python (test-only), or skip."""
    pytest.importorskip("libggml", reason="libggml-python is a test dependency")
    return importlib.import_module("tests.support.ggml_reference")
