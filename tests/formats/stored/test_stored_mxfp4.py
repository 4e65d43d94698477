"""gpt-oss's MXFP4 (formats/stored/mxfp4.py) against two independent decodings: transformers'
`convert_moe_packed_tensors` transcribed in torch (integrations/mxfp4.py: FP4_VALUES lookup,
ldexp, transpose(1, 2)), and ml_dtypes' float4_e2m1fn and float8_e8m0fnu types; its OCP remake
against ml_dtypes' saturating cast of x / 2^(floor(log2 amax) - 2)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from quantcalc.errors import QuantcalcError
from quantcalc.formats.stored import mxfp4

torch = pytest.importorskip("torch", reason="torch runs transformers' decoding")
ml_dtypes = pytest.importorskip("ml_dtypes")

FP4_VALUES = [+0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0,
              -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def convert_moe_packed_tensors(blocks, scales, dtype=torch.bfloat16):
    """transformers/integrations/mxfp4.py, as published (one chunk)."""
    scales = scales.to(torch.int32) - 127
    assert blocks.shape[:-1] == scales.shape
    lut = torch.tensor(FP4_VALUES, dtype=dtype)
    *prefix_shape, G, B = blocks.shape
    rows_total = math.prod(prefix_shape) * G
    blocks = blocks.reshape(rows_total, B)
    scales = scales.reshape(rows_total, 1)
    out = torch.empty(rows_total, B * 2, dtype=dtype)
    out[:, 0::2] = lut[(blocks & 0x0F).to(torch.long)]
    out[:, 1::2] = lut[(blocks >> 4).to(torch.long)]
    torch.ldexp(out, scales, out=out)
    out = out.reshape(*prefix_shape, G, B * 2).view(*prefix_shape, G * B * 2)
    return out.transpose(1, 2).contiguous()


def by_ml_dtypes(blocks, scales):
    """float4_e2m1fn nibbles (low first) times float8_e8m0fnu scales, (E, rows, cols)."""
    low = (blocks & 0x0F).view(ml_dtypes.float4_e2m1fn).astype(np.float32)
    high = (blocks >> 4).view(ml_dtypes.float4_e2m1fn).astype(np.float32)
    values = np.stack([low, high], axis=-1).reshape(*blocks.shape[:-1], 32)
    scale = scales.view(ml_dtypes.float8_e8m0fnu).astype(np.float32)[..., None]
    return (values * scale).reshape(*blocks.shape[:-2], -1)


def random_pair(seed, experts=2, rows=5, groups=3, exponents=(100, 154)):
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (experts, rows, groups, 16), dtype=np.uint8)
    scales = rng.integers(*exponents, (experts, rows, groups), dtype=np.uint8)
    return blocks, scales


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 6), st.integers(1, 4))
def test_equals_transformers_and_ml_dtypes(seed, experts, rows, groups):
    blocks, scales = random_pair(seed, experts, rows, groups)
    ours = mxfp4.dequantize(blocks, scales)
    assert ours.shape == (experts, groups * 32, rows) and ours.dtype == np.float32
    theirs = convert_moe_packed_tensors(torch.from_numpy(blocks), torch.from_numpy(scales))
    assert torch.equal(torch.from_numpy(ours).to(torch.bfloat16).view(torch.int16),
                       theirs.view(torch.int16))
    # bf16 holds these products exactly: the float32 values are the library's, bit for bit
    assert np.array_equal(ours, theirs.float().numpy())
    independent = by_ml_dtypes(blocks, scales).swapaxes(1, 2)
    assert np.array_equal(ours.view(np.uint32), independent.view(np.uint32))


def test_the_whole_e8m0_range_but_nan_agrees_with_ml_dtypes():
    blocks = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)[:, :, :1].repeat(255, axis=1)
    scales = np.arange(255, dtype=np.uint8).reshape(1, 255, 1)
    with np.errstate(over="ignore"):
        ours = mxfp4.dequantize(blocks, scales)
        assert np.array_equal(ours, by_ml_dtypes(blocks, scales).swapaxes(1, 2))


def test_two_d_blocks_are_not_transposed():
    blocks, scales = random_pair(3, experts=1)
    ours = mxfp4.dequantize(blocks[0], scales[0])
    assert ours.shape == (5, 96)
    assert np.array_equal(ours, by_ml_dtypes(blocks[0], scales[0]))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_remake_is_the_ocp_rule_cast_by_ml_dtypes(seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_t(3, (2, 64, 6)) * 10.0 ** rng.uniform(-6, 3)).astype(np.float32)
    x[0, :32, 0] = 0  # a group of zeros
    blocks, scales, recon = mxfp4.remake(x)
    stored = x.swapaxes(1, 2).reshape(2, 6, 2, 32)
    amax = np.abs(stored).max(axis=-1)
    with np.errstate(divide="ignore"):
        exponent = np.where(amax > 0, np.floor(np.log2(amax.astype(np.float64))) - 2, -127)
    assert np.array_equal(scales, (exponent + 127).astype(np.uint8))
    codes = (stored / np.exp2(exponent)[..., None]).astype(ml_dtypes.float4_e2m1fn)
    codes = codes.view(np.uint8)
    assert np.array_equal(blocks, codes[..., 0::2] | (codes[..., 1::2] << 4))
    assert np.array_equal(recon, mxfp4.dequantize(blocks, scales))


@pytest.mark.parametrize("blocks, scales, message", [
    (np.zeros((2, 3, 16), np.int8), np.zeros((2, 3), np.uint8), "dtype int8"),
    (np.zeros((2, 3, 8), np.uint8), np.zeros((2, 3), np.uint8), "32 values in 16"),
    (np.zeros((2, 3, 16), np.uint8), np.zeros((2, 4), np.uint8), "one E8M0 scale"),
    (np.zeros((16,), np.uint8), np.zeros((1,), np.uint8), "dimensions"),
])
def test_hostile_arrays_are_refused(blocks, scales, message):
    with pytest.raises(QuantcalcError, match=message):
        mxfp4.dequantize(blocks, scales, "model.layers.0.mlp.experts.down_proj")
