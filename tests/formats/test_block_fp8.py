"""DeepSeek-V3's block-scaled FP8: E4M3 with a float32 scale amax / 448 per 128 × 128 tile of a
weight matrix, or per block of 128 along a row of activations, against an independent
reference: numpy float32 arithmetic and ml_dtypes' E4M3 cast (kernel.py's weight_quant /
act_quant and weight_dequant do the same in Triton)."""

import ml_dtypes
import numpy as np
import pytest

from quantcalc import Config, analyze


def reference(x, tile_rows, tile_cols):
    x = x.astype(np.float32)
    out = np.empty_like(x)
    scales = []
    for top in range(0, x.shape[0], tile_rows):
        for left in range(0, x.shape[1], tile_cols):
            block = x[top:top + tile_rows, left:left + tile_cols]
            s = np.float32(np.abs(block).max()) / np.float32(448)
            codes = (block / s).astype(ml_dtypes.float8_e4m3fn)
            out[top:top + tile_rows, left:left + tile_cols] = codes.astype(np.float32) * s
            scales.append(float(s))
    return out, scales


@pytest.mark.parametrize("shape", [(256, 384), (200, 300), (128, 128), (3, 1000)])
def test_128x128_tiles_equal_the_reference(shape):
    x = np.random.default_rng(sum(shape)).standard_t(3, shape).astype(np.float32)
    result = analyze(x, Config(format="fp8_t128"))
    expected, scales = reference(x, 128, 128)
    assert np.array_equal(result.per_value.dequantized, expected.reshape(-1).astype(np.float64))
    assert result.params.scale.tolist() == scales  # row-major tile order, as weight_scale_inv
    s = result.summary()
    tiles = -(-shape[0] // 128) * -(-shape[1] // 128)
    assert s["segments"] == tiles and s["segment_kind"] == "tile"
    assert s["bits_per_value"] == 8 + 32 * tiles / x.size
    assert f"{tiles} tile" in s["description"]


def test_1x128_blocks_equal_the_reference():
    x = (np.random.default_rng(1).standard_normal((6, 512)) * 40).astype(np.float32)
    result = analyze(x, Config(format="fp8_b128"))
    expected, _ = reference(x, 1, 128)
    assert np.array_equal(result.per_value.dequantized, expected.reshape(-1).astype(np.float64))
    assert result.summary()["bits_per_value"] == 8 + 32 / 128


def test_a_zero_tile_stays_zero_and_the_largest_value_is_exact():
    x = np.zeros((256, 256), np.float32)
    x[130, 7] = -3.5
    result = analyze(x, Config(format="fp8_t128"))
    assert np.isfinite(result.per_value.dequantized).all()
    assert result.per_value.dequantized[130 * 256 + 7] == -3.5
    assert result.metrics["max_abs_error"] == 0
