"""Non-integer formats: grids, ties, saturation, subnormals, block scales, and the reference
implementations they must equal (ml_dtypes for FP8/6/4, llama.cpp's block formulas for GGUF)."""

import ml_dtypes
import numpy as np
import pytest

from quantcalc import Config, QuantcalcError, analyze
from quantcalc.formats.float_grids import FLOAT_GRIDS, NF4_LEVELS

ML_DTYPES = {
    "fp8_e4m3": ml_dtypes.float8_e4m3fn, "fp8_e5m2": ml_dtypes.float8_e5m2,
    "fp6_e2m3": ml_dtypes.float6_e2m3fn, "fp6_e3m2": ml_dtypes.float6_e3m2fn,
    "fp4_e2m1": ml_dtypes.float4_e2m1fn,
}


@pytest.mark.parametrize("name", sorted(ML_DTYPES))
def test_grid_and_maximum_match_ml_dtypes(name):
    grid, dtype = FLOAT_GRIDS[name], ML_DTYPES[name]
    info = ml_dtypes.finfo(dtype)
    assert grid.max_value == float(info.max)
    assert grid.representable()[1] == float(info.smallest_subnormal)
    # every bit pattern of the format, decoded by ml_dtypes: the finite non-negative ones
    patterns = np.arange(1 << grid.bits, dtype=np.uint8)
    decoded = patterns.view(dtype).astype(np.float64)
    finite = np.unique(decoded[np.isfinite(decoded) & (decoded >= 0)])
    assert np.array_equal(grid.representable(), finite)


def test_documented_maxima():
    assert [FLOAT_GRIDS[n].max_value for n in
            ("fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1")] == \
        [448, 57344, 7.5, 28, 6]
    assert FLOAT_GRIDS["fp4_e2m1"].representable().tolist() == [0, 0.5, 1, 1.5, 2, 3, 4, 6]


def test_e2m1_ties_round_to_even():
    values = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])
    rounded, saturated = FLOAT_GRIDS["fp4_e2m1"].round(values)
    assert rounded.tolist() == [0, 1, 1, 2, 2, 4, 4]
    assert FLOAT_GRIDS["fp4_e2m1"].round(-values)[0].tolist() == [-0.0, -1, -1, -2, -2, -4, -4]
    assert not saturated.any()


@pytest.mark.parametrize("name", sorted(ML_DTYPES))
def test_casts_are_bit_exact_against_ml_dtypes(name):
    grid, dtype = FLOAT_GRIDS[name], ML_DTYPES[name]
    rng = np.random.default_rng(len(name))
    top = grid.max_value
    # float32 inputs, as tensors are: ml_dtypes casts float64 through float32 (rounding twice),
    # while quantcalc rounds once, so a float64 a hair above a tie can legitimately differ.
    representable = grid.representable().astype(np.float32)
    midpoints = (representable[1:] + representable[:-1]) / 2  # every tie
    values = np.concatenate([
        rng.standard_normal(20_000) * top / 4, rng.uniform(-top, top, 20_000),
        10.0 ** rng.uniform(-12, 0, 5_000) * top]).astype(np.float32)
    values = np.concatenate([
        values, representable, -representable, midpoints, -midpoints,
        np.nextafter(midpoints, np.float32(0)), np.nextafter(midpoints, np.float32(np.inf)),
        np.float32([0.0, -0.0])])
    values = values[np.abs(values) <= top]  # beyond max: ml_dtypes gives NaN/Inf, we saturate
    rounded, saturated = grid.round(values.astype(np.float64))
    reference = values.astype(dtype)
    assert np.array_equal(rounded, reference.astype(np.float64))
    assert np.array_equal(grid.encode(rounded), reference.view(np.uint8).astype(np.int64))
    assert not saturated.any()


@pytest.mark.parametrize("name", sorted(ML_DTYPES))
def test_saturation_never_makes_nan_or_inf(name):
    grid = FLOAT_GRIDS[name]
    rounded, saturated = grid.round(np.array([1e30, -1e30, grid.max_value * 1.2]))
    assert rounded.tolist() == [grid.max_value, -grid.max_value, grid.max_value]
    assert saturated.all()


def test_subnormals_are_kept():
    grid = FLOAT_GRIDS["fp8_e4m3"]
    smallest = 2.0 ** -9
    rounded, _ = grid.round(np.array([smallest, 3 * smallest, 0.4 * smallest, 0.6 * smallest]))
    assert rounded.tolist() == [smallest, 3 * smallest, 0, smallest]


def test_fp8_per_tensor_scaling_maps_amax_to_the_maximum():
    x = np.array([-3.0, 0.001, 1.5, 2.0])
    r = analyze(x, Config(format="fp8_e4m3"))
    s = r.summary()
    assert s["scale"] == 3.0 / 448 and s["format"] == "fp8_e4m3"
    assert r.per_value.dequantized[0] == -3.0  # amax is exact
    scaled = (x / (3.0 / 448)).astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
    assert np.array_equal(r.per_value.dequantized, scaled * (3.0 / 448))
    assert s["bits_per_value"] == pytest.approx(8 + 32 / 4)
    assert s["uniform_noise_mse"] is None
    custom = analyze(np.array([-10.0, 1.0]), Config(format="fp4_e2m1", calibration="custom",
                                                   range_min=-3, range_max=2))
    assert custom.summary()["scale"] == 0.5 and custom.per_value.clipped.tolist() == [True, False]


@pytest.mark.parametrize("name", ["fp8_e5m2", "fp8_e4m3", "fp4_e2m1", "nf4"])
def test_a_tiny_tensor_is_still_scaled_onto_the_grids_end(name):
    # amax / max is far below float32 eps here (the integer formats' scale floor); a float grid
    # has the exponent range for it, and the largest value must come back exactly.
    x = np.array([-2e-8, 5e-8, 1e-9])
    r = analyze(x, Config(format=name))
    top = 1.0 if name == "nf4" else FLOAT_GRIDS[name].max_value
    assert r.params.scale.tolist() == [5e-8 / top]
    assert r.per_value.dequantized[1] == 5e-8
    assert not r.params.floored.any() and not any("zero-width range" in n for n in r.summary()["notes"])
    zeros = analyze(np.zeros(4), Config(format=name))
    assert zeros.params.floored.all() and zeros.metrics["max_abs_error"] == 0


def test_nf4_levels_and_absmax_blocks():
    assert NF4_LEVELS.size == 16 and NF4_LEVELS[7] == 0 and NF4_LEVELS[[0, -1]].tolist() == [-1, 1]
    x = np.concatenate([NF4_LEVELS * 2.0, NF4_LEVELS * 0.5])  # two blocks of 16
    r = analyze(x, Config(format="nf4", block_size=16))
    assert r.params.scale.tolist() == [2.0, 0.5]
    assert r.per_value.codes.tolist() == list(range(16)) * 2
    assert r.metrics["max_abs_error"] == 0
    mid = (NF4_LEVELS[8] + NF4_LEVELS[9]) / 2  # a tie goes to the lower level, as bitsandbytes
    tie = analyze(np.array([1.0, mid]), Config(format="nf4"))
    assert tie.per_value.codes.tolist() == [15, 8]
    assert analyze(np.zeros(64), Config(format="nf4")).summary()["block_size"] == 64


def test_mxfp4_worked_case():
    block = np.zeros(32)
    block[:3] = [7.5, -2.4, 0.3]
    r = analyze(block, Config(format="mxfp4"))
    assert r.params.scale.tolist() == [1.0]  # 2^(floor(log2 7.5) - 2) = 2^0
    assert r.per_value.dequantized[:3].tolist() == [6.0, -2.0, 0.5]
    assert r.per_value.clipped[:3].tolist() == [True, False, False]


def test_mxfp4_can_round_the_block_maximum_up_by_almost_a_fifth():
    # 81: scale 2^(floor(log2 81) - 2) = 16, 81 / 16 = 5.0625 lies between the E2M1 values 4 and
    # 6 and is nearer 6, so the block's largest value comes back as 96 (+18.5 %). Up to 6/5 is
    # possible: anything in (5, 6) rounds up to 6 (5 itself ties to 4, the even neighbour).
    r = analyze(np.array([81.0, 5 * 16.0, 5.0001 * 16]), Config(format="mxfp4"))
    assert r.params.scale.tolist() == [16.0]
    assert r.per_value.dequantized.tolist() == [96.0, 64.0, 96.0]


@pytest.mark.parametrize("name, emax", [("mxfp8_e4m3", 8), ("mxfp8_e5m2", 15),
                                        ("mxfp6_e2m3", 2), ("mxfp6_e3m2", 4), ("mxfp4", 2),
                                        ("mxint8", 0)])
def test_mx_shared_scale_is_a_power_of_two_from_the_block_amax(name, emax):
    rng = np.random.default_rng(emax)
    x = rng.standard_normal((3, 64)) * 10.0 ** rng.uniform(-3, 3, (3, 1))
    r = analyze(x, Config(format=name))
    blocks = x.reshape(-1, 32)
    amax = np.abs(blocks).max(axis=1)
    expected = 2.0 ** (np.floor(np.log2(amax)) - emax)
    assert np.array_equal(r.params.scale, expected)
    assert r.params.scale.size == 6


def test_mxint8_is_int8_times_2_to_the_minus_6():
    block = np.linspace(-1.5, 1.0, 32)
    r = analyze(block, Config(format="mxint8"))
    assert r.params.scale[0] == 1.0
    expected = np.clip(np.rint(block * 64), -127, 127) / 64
    assert np.array_equal(r.per_value.dequantized, expected)


def test_nvfp4_two_level_scales():
    x = np.random.default_rng(9).standard_normal(64).astype(np.float32)
    r = analyze(x, Config(format="nvfp4"))
    tensor_scale = np.float32(np.abs(x).max()) / np.float32(6 * 448)
    blocks = x.reshape(-1, 16)
    block_amax = np.abs(blocks).max(axis=1)
    block_scale = (block_amax / np.float32(6) / tensor_scale).astype(
        ml_dtypes.float8_e4m3fn).astype(np.float64)
    assert np.array_equal(r.params.scale, block_scale * np.float64(tensor_scale))
    scaled = blocks / r.params.scale[:, None]
    expected = scaled.astype(ml_dtypes.float4_e2m1fn).astype(np.float64) * r.params.scale[:, None]
    assert np.array_equal(r.per_value.dequantized.reshape(-1, 16), expected)
    assert r.summary()["bits_per_value"] == pytest.approx(4.5 + 32 / 64)


def q8_0_reference(block):
    """llama.cpp quantize_row_q8_0_ref + dequantize_row_q8_0, transcribed (float32)."""
    x = block.astype(np.float32)
    amax = np.float32(0)
    for v in x:
        amax = max(amax, np.float32(abs(v)))
    d = np.float32(amax / np.float32(127))
    inv = np.float32(1) / d if d else np.float32(0)
    qs = [int(np.trunc(float(np.float32(v * inv)) + np.copysign(0.5, float(np.float32(v * inv)))))
          for v in x]
    d16 = float(np.float16(d))
    return qs, [q * d16 for q in qs]


def q4_0_reference(block):
    """llama.cpp quantize_row_q4_0_ref + dequantize_row_q4_0, transcribed (float32)."""
    x = block.astype(np.float32)
    amax, largest = np.float32(0), np.float32(0)
    for v in x:
        if amax < abs(v):
            amax, largest = np.float32(abs(v)), v
    d = np.float32(largest / np.float32(-8))
    inv = np.float32(1) / d if d else np.float32(0)
    qs = [min(15, int(np.float32(np.float32(v * inv) + np.float32(8.5)))) for v in x]
    d16 = float(np.float16(d))
    return qs, [(q - 8) * d16 for q in qs]


@pytest.mark.parametrize("name, reference", [("q8_0", q8_0_reference),
                                             ("q4_0", q4_0_reference)])
def test_gguf_blocks_equal_llama_cpp_reference(name, reference):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 64)) * rng.uniform(0.01, 5, (4, 1))).astype(np.float32)
    x[0, :32] = np.float32(0)  # an all-zero block
    x[1, 3], x[1, 9] = 2.0, -2.0  # equal magnitudes: the first one sets Q4_0's sign
    r = analyze(x, Config(format=name))
    codes, dequantized = [], []
    for block in x.reshape(-1, 32):
        q, xhat = reference(block)
        codes += q
        dequantized += xhat
    assert r.per_value.codes.tolist() == codes
    assert r.per_value.dequantized.tolist() == dequantized


def test_bits_per_value_include_scales():
    x = np.random.default_rng(0).standard_normal((64, 256))
    bpv = {name: analyze(x, Config(format=name)).summary()["bits_per_value"] for name in
           ("mxfp4", "nvfp4", "q4_0", "q8_0", "nf4", "int")}
    assert bpv["mxfp4"] == 4.25 and bpv["q4_0"] == 4.5 and bpv["q8_0"] == 8.5
    assert bpv["nf4"] == 4.5 and bpv["nvfp4"] == pytest.approx(4.5 + 32 / x.size)
    assert bpv["int"] == pytest.approx(8 + 32 / x.size)  # about 8: one float32 scale


@pytest.mark.parametrize("settings, field", [
    (dict(format="mxfp4", calibration="percentile"), "calibration"),
    (dict(format="fp8_e4m3", mode="asymmetric"), "mode"),
    (dict(format="q4_0", block_size=64), "block_size"),
    (dict(format="fp8_e4m3", calibration="entropy"), "calibration"),
    (dict(format="fp7"), "format"),
])
def test_settings_that_do_not_apply_are_refused(settings, field):
    with pytest.raises(QuantcalcError) as err:
        analyze(np.ones(4), Config(**settings))
    assert err.value.field == field


from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from quantcalc.schema.registry import NAMES as FORMATS, get as get_format  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.integers(1, 100),
                  elements=st.floats(-1e4, 1e4, width=32, allow_subnormal=False)),
       # llama.cpp's types need rows of whole blocks: tests/formats/test_ggml_types.py
       st.sampled_from([f for f in FORMATS if f != "int" and get_format(f).family != "ggml"]),
       st.integers(1, 9))
def test_every_format_reconstructs_on_its_grid_whatever_the_chunking(x, name, chunk):
    r = analyze(x, Config(format=name))
    again = analyze(x, Config(format=name), chunk=chunk)
    assert np.array_equal(r.per_value.dequantized, again.per_value.dequantized)
    assert np.all(np.isfinite(r.per_value.dequantized))
    if name in FLOAT_GRIDS:
        grid = FLOAT_GRIDS[name].representable()
        units = np.abs(r.per_value.dequantized / r.params.scale[0])
        distance = np.abs(units[:, None] - grid[None, :]).min(axis=1)
        assert np.all(distance <= 1e-12 * grid[-1])
    # amax maps onto the grid's end (fp, nf4), or near it: fp16 block scales (GGUF) and
    # power-of-two / E4M3 block scales (MX, NVFP4) may round the largest value up to the next
    # element: by less than 1/9 for MX E5M2 / E3M2 elements (18 -> 20 on E3M2's step of 4 from
    # 16), less than 1/16 for NVFP4, and by less than 1/5 for MXFP4, whose E2M1 elements have
    # nothing between 4 and 6 (see test_mxfp4_can_round_the_block_maximum_up_by_almost_a_fifth).
    growth = 1 / 5 if name == "mxfp4" else 1 / 8 if name.startswith(("mx", "nv")) else 2 ** -7
    assert np.abs(r.per_value.dequantized).max() <= np.abs(x).max() * (1 + growth) + 1e-30


def test_nvfp4_keeps_a_block_far_below_the_tensors_largest():
    # block scale 0.001 / 6 / (2688 / 2688) rounds to 0 in E4M3: clamped to 2^-9 (ModelOpt)
    x = np.array([2688.0] + [0.0] * 15 + [0.001] + [0.0] * 15)
    r = analyze(x, Config(format="nvfp4"))
    assert r.params.scale.tolist() == [448.0, 2.0 ** -9]
    assert r.per_value.dequantized[16] == 0.5 * 2.0 ** -9  # 0.001 / 2^-9 = 0.512 -> 0.5
    assert any("raised to it, as NVIDIA ModelOpt does" in n for n in r.notes)
