"""FP8 weights with scales (formats/stored/fp8.py) against the formats' own arithmetic: every
byte against ml_dtypes' and torch's float8 casts, DeepSeek-V3's `weight_dequant` (x.float() * s
per 128 x 128 tile, short last tiles) and vLLM's `weight.float() * weight_scale` transcribed in
torch, on random bytes and on weights quantized the way those checkpoints are made."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from quantcalc.formats.float_grids import FLOAT_GRIDS
from quantcalc.formats.stored import fp8
from tests.support.stored import rounded_like, same_values, stored

try:
    import torch
except ModuleNotFoundError:  # the grid and element-by-element tests still run
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch (CPU) is the reference for FP8 "
                                 "arithmetic (requirements-dev.txt)")

ML_DTYPES = {"fp8_e4m3": ml_dtypes.float8_e4m3fn, "fp8_e5m2": ml_dtypes.float8_e5m2,
             "fp6_e2m3": ml_dtypes.float6_e2m3fn, "fp6_e3m2": ml_dtypes.float6_e3m2fn,
             "fp4_e2m1": ml_dtypes.float4_e2m1fn}
TORCH = {"e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2} if torch else {}


@pytest.mark.parametrize("name", sorted(FLOAT_GRIDS))
def test_every_bit_pattern_decodes_as_ml_dtypes_casts_it(name):
    grid = FLOAT_GRIDS[name]
    codes = np.arange(1 << grid.bits)
    expected = codes.astype(np.uint8).view(ML_DTYPES[name]).astype(np.float64)
    ours = grid.decode(codes)
    assert np.array_equal(ours, expected, equal_nan=True)
    assert np.array_equal(np.signbit(ours), np.signbit(expected))  # -0.0 and -NaN kept
    finite = np.isfinite(ours)
    assert np.array_equal(grid.encode(ours[finite]), codes[finite])  # decode inverts encode


@needs_torch
@pytest.mark.parametrize("kind", ["e4m3", "e5m2"])
def test_the_byte_table_is_torchs_float8_cast(kind):
    codes = np.arange(256, dtype=np.uint8)
    theirs = torch.from_numpy(codes).view(TORCH[kind]).float().numpy()
    assert same_values(fp8.decode(codes, kind), theirs)
    assert np.isnan(fp8.table(kind)).sum() == {"e4m3": 2, "e5m2": 6}[kind]


def deepseek_weight_dequant(x, s, block):
    """DeepSeek-V3 inference/kernel.py `weight_dequant`: y = x.float() * s for each tile (the
    Triton kernel masks the short last tiles), here in torch one tile at a time."""
    y = torch.empty(x.shape, dtype=torch.float32)
    rows, cols = x.shape
    for i in range(0, rows, block[0]):
        for j in range(0, cols, block[1]):
            tile = x[i:i + block[0], j:j + block[1]].to(torch.float32)
            y[i:i + block[0], j:j + block[1]] = tile * s[i // block[0], j // block[1]]
    return y


BLOCK_SHAPES = [((256, 384), (128, 128)), ((300, 200), (128, 128)), ((129, 257), (128, 128)),
                ((1, 1), (128, 128)), ((64, 96), (32, 16)), ((7, 300), (1, 128))]


@needs_torch
@pytest.mark.parametrize("shape,block", BLOCK_SHAPES)
def test_random_bytes_and_scales_equal_weight_dequant(shape, block):
    rng = np.random.default_rng(sum(shape) + block[1])
    codes = rng.integers(0, 256, shape, dtype=np.uint8)  # NaN patterns included
    grid = (-(-shape[0] // block[0]), -(-shape[1] // block[1]))
    scale = (rng.uniform(0.5, 2, grid) * 2.0 ** rng.integers(-20, 5, grid)).astype(np.float32)
    ours = fp8.block_scaled(codes, scale, list(block))
    theirs = deepseek_weight_dequant(torch.from_numpy(codes).view(torch.float8_e4m3fn),
                                     torch.from_numpy(scale), block)
    assert ours.dtype == np.float32 and same_values(ours, theirs.numpy())


@needs_torch
@pytest.mark.parametrize("shape", [(256, 384), (200, 330)])
def test_a_weight_quantized_as_deepseek_does_decodes_to_its_dequantized_values(shape):
    """Made the way DeepSeek-V3's FP8 weights are: scale = amax / 448 per tile, the weight
    divided and cast to E4M3 (torch), weight_scale_inv = scale; weight_dequant's bf16 output is
    quantcalc's float32 rounded once."""
    weight = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape)))
    weight = weight.to(torch.bfloat16)
    grid = (-(-shape[0] // 128), -(-shape[1] // 128))
    scale = torch.empty(grid)
    codes = torch.empty(shape, dtype=torch.float8_e4m3fn)
    for i in range(grid[0]):
        for j in range(grid[1]):
            tile = weight[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128].float()
            scale[i, j] = tile.abs().max() / 448
            codes[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128] = \
                (tile / scale[i, j]).to(torch.float8_e4m3fn)
    ours = fp8.block_scaled(stored(codes), stored(scale), [128, 128])
    theirs = deepseek_weight_dequant(codes, scale, (128, 128))
    assert same_values(ours, theirs.numpy())
    assert torch.equal(rounded_like(ours, weight), theirs.to(torch.bfloat16))
    original = weight.float().numpy()  # within half an E4M3 step (3 mantissa bits) of it
    assert (np.abs(ours - original) <= np.abs(original) / 16 + scale.max().item() / 512).all()


def test_leading_axes_decode_matrix_by_matrix():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 0x7F, (3, 130, 260), dtype=np.uint8)
    scale = rng.uniform(0.01, 1, (3, 2, 3)).astype(np.float32)
    ours = fp8.block_scaled(codes, scale)
    for expert in range(3):
        assert same_values(ours[expert], fp8.block_scaled(codes[expert], scale[expert]))


SCALE_SHAPES = [(), (1,), (1, 1), ("rows", 1), ("rows",)]


@needs_torch
@pytest.mark.parametrize("scale_shape", SCALE_SHAPES, ids=str)
@pytest.mark.parametrize("kind", ["e4m3", "e5m2"])
def test_tensor_and_channel_scales_equal_vllms_weight_times_scale(scale_shape, kind):
    rows, cols = 48, 80
    rng = np.random.default_rng(len(scale_shape))
    codes = rng.integers(0, 256, (rows, cols), dtype=np.uint8)
    shape = tuple(rows if n == "rows" else n for n in scale_shape)
    scale = rng.uniform(1e-4, 1e-1, shape).astype(np.float32)
    ours = fp8.scaled(codes, scale, kind)
    torch_scale = torch.from_numpy(scale)
    if scale_shape == ("rows",):  # one per row, as vLLM's and compressed-tensors' (rows, 1)
        torch_scale = torch_scale[:, None]
    theirs = torch.from_numpy(codes).view(TORCH[kind]).float() * torch_scale
    assert same_values(ours, theirs.numpy())


@needs_torch
def test_bf16_scales_give_torchs_bf16_product_once_rounded():
    rng = np.random.default_rng(5)
    codes = torch.from_numpy(rng.integers(0, 0x7F, (64, 64), dtype=np.uint8))
    scale = torch.from_numpy(rng.uniform(1e-3, 1, (64, 1)).astype(np.float32)).bfloat16()
    theirs = codes.view(torch.float8_e4m3fn).to(torch.bfloat16) * scale
    ours = fp8.scaled(stored(codes), stored(scale))
    assert torch.equal(rounded_like(ours, theirs), theirs)


@settings(max_examples=80, deadline=None)
@given(rows=st.integers(1, 300), cols=st.integers(1, 300), height=st.integers(1, 160),
       width=st.integers(1, 160), seed=st.integers(0, 2**32 - 1))
def test_any_shape_and_block_equal_an_element_by_element_reference(rows, cols, height, width,
                                                                      seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (rows, cols), dtype=np.uint8)
    scale = rng.uniform(-2, 2, (-(-rows // height), -(-cols // width))).astype(np.float32)
    ours = fp8.block_scaled(codes, scale, [height, width])
    values = codes.view(ml_dtypes.float8_e4m3fn).astype(np.float32)
    expected = values * scale[np.arange(rows)[:, None] // height, np.arange(cols)[None] // width]
    assert ours.shape == (rows, cols) and same_values(ours, expected)
