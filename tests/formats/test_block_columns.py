"""The machinery under the fast legacy types: the block-columns layout, float32-arithmetic
fp16 rounding, the analysis over several slabs and parts, and the command line's heap settings."""

import numpy as np
import pytest

from tests.support import ggml_reference as ggml
from quantcalc import Config, analyze
from quantcalc.formats.ggml import legacy as ggml_legacy
from quantcalc.engine import malloc as heap
from quantcalc.formats.block_columns import Columns, holding, natural
from quantcalc.formats.ggml.search import fp16


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [16, 32])
def test_the_layout_holds_every_value_once_and_gives_each_blocks_extremes(dtype, size):
    rows = np.random.default_rng(0).standard_normal((3, size * 7)).astype(dtype)
    layout = Columns(rows, size, dtype)
    assert layout.values.shape == (size // 4, 3 * 7 * 4) and layout.values.dtype == dtype
    assert np.array_equal(natural(layout.values), rows.reshape(-1))
    blocks = rows.reshape(-1, size)
    assert np.array_equal(layout.reduce(np.maximum), blocks.max(axis=1))
    assert np.array_equal(layout.reduce(np.minimum), blocks.min(axis=1))
    # a part (some columns) comes back in its own blocks' order too
    assert np.array_equal(natural(layout.values[:, 8:20]), blocks[2:5].reshape(-1))


def test_spread_copies_each_blocks_bits_to_its_four_lanes():
    # -0.0, a NaN with a payload and a subnormal keep their bits (a float copy could change them)
    bits = np.array([0x80000000, 0x7FC00123, 0x7FA00001, 1, 0x3F800000], np.uint32)
    per_block = bits.view(np.float32)
    spread = Columns.spread(per_block)
    assert spread.dtype == np.float32
    assert np.array_equal(spread.view(np.uint32), np.repeat(bits, 4))
    assert Columns.spread(per_block[:0]).size == 0


def test_holding_keeps_float32_where_it_is_exact():
    assert holding(np.dtype(np.float32)) == np.float32
    assert holding(np.dtype(np.float16)) == np.float32
    assert holding(np.dtype(np.float64)) == np.float64


def test_fp16_rounds_as_numpys_float16_conversion():
    rng = np.random.default_rng(5)
    spread_out = rng.standard_normal(200_000) * 10.0 ** rng.integers(-12, 7, 200_000)
    halfway = (np.arange(-4096, 4096) + 0.5) * 2.0 ** rng.integers(-24, 5, 8192)  # ties
    edges = [0.0, -0.0, 65504, 65519.996, 65520, -65520, 65536, 1e30, -1e30, np.inf, -np.inf,
             2 ** -24, 2 ** -25, 3 * 2 ** -26, -(2 ** -25), 2 ** -14, 2 ** -14 - 2 ** -25,
             2 ** -126, 1e-45, -1e-45, 6.1e-5, 2047.5, 2048.5, 4095.5]
    values = np.concatenate([spread_out, halfway, edges]).astype(np.float32)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16).astype(np.float32)
    assert np.array_equal(fp16(values).view(np.uint32), expected.view(np.uint32))


@pytest.mark.parametrize("name", sorted(ggml_legacy.TYPES))
def test_slabs_and_parts_give_ggmls_values_and_exact_metrics(name, monkeypatch):
    """Slabs of 9 rows in parts of 100 blocks (the last one partial), kept values ending inside
    a part: every value as ggml reconstructs it, every metric as a direct float64 sum gives it."""
    monkeypatch.setattr(ggml_legacy, "SLAB_VALUES", 20_000)
    monkeypatch.setattr(ggml_legacy, "PART_BLOCKS", 100)
    x = np.random.default_rng(9).standard_t(5, (96, 2048)).astype(np.float32)
    x[5, :32] = 0  # a zero block
    x[7, 64:96] = -1.5  # a constant block
    result = analyze(x, Config(format=name), keep=150_001)
    blocks, expected = ggml.quantize(name, x)
    kept = result.per_value
    assert np.array_equal(kept.dequantized, expected.reshape(-1)[:150_001])
    assert np.array_equal(kept.codes, ggml.codes(name, blocks).reshape(-1)[:150_001])
    error = x.reshape(-1).astype(np.float64) - expected.reshape(-1)
    assert np.array_equal(kept.error, error[:150_001])
    metrics = result.metrics
    assert metrics["max_abs_error"] == np.abs(error).max()
    assert metrics["mse"] == pytest.approx(np.mean(error ** 2), rel=1e-13)
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-13)
    assert metrics["data_min"] == x.min() and metrics["data_max"] == x.max()
    assert np.array_equal(result.params.real_min, x.reshape(-1, 32).min(axis=1))
    assert np.array_equal(result.params.real_max, x.reshape(-1, 32).max(axis=1))
    clipped = _clipped_as_c_computes_it(name, x)
    assert np.array_equal(kept.clipped, clipped[:150_001])
    assert metrics["clip_count"] == int(np.count_nonzero(clipped))
    assert (metrics["clip_count"] > 0) == (name in ("q4_0", "q5_0"))


def _clipped_as_c_computes_it(name, x):
    """Where MIN(top, (int8_t)(v*id + nmax + 0.5f)) clamps (Q4_0, Q5_0); the others' codes
    never pass their ends. Per block, the scalar way: C's loop over each block."""
    if name not in ("q4_0", "q5_0"):
        return np.zeros(x.size, bool)
    nmax = 8 if name == "q4_0" else 16
    f32 = np.float32
    out = []
    for block in x.reshape(-1, 32):
        top = block[np.argmax(np.abs(block))]  # the first largest magnitude
        d = f32(top) / f32(-nmax)
        scale_inverse = f32(1) / d if d else f32(0)
        out.append((block * scale_inverse + f32(nmax + 0.5)) >= 2 * nmax)
    return np.concatenate(out)


@pytest.mark.parametrize("name", ["q4_0", "q4_1", "q8_0", "q4_k"])
def test_float64_values_are_measured_as_given_not_as_float32(name):
    x = np.random.default_rng(2).standard_normal((8, 256)) * (1 + 1e-12)
    result = analyze(x, Config(format=name))
    error = x.reshape(-1) - result.per_value.dequantized
    assert np.array_equal(result.per_value.error, error)
    assert result.metrics["data_min"] == x.min() and result.metrics["data_max"] == x.max()
    assert result.metrics["mse"] == pytest.approx(np.mean(error ** 2), rel=1e-13)


def test_the_command_lines_heap_settings_are_made_once():
    assert heap.keep_freed_memory() is True  # glibc (Debian, the CI machine)
    assert heap.keep_freed_memory() is True
