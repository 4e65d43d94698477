"""Hand-computed golden cases, checked against the exact rational reference as well."""

import math

import numpy as np
import pytest

from quantcalc import Config, analyze
from quantcalc.formats.integer import SCALE_FLOOR

from tests.support import reference

EXAMPLE = [-1.25, -0.92, -0.51, -0.10, 0, 0.14, 0.37, 0.79, 1.12, 1.46]
# By hand: scale = 1.5/127; x/scale = x * 84.666..., rounded half to even.
EXAMPLE_CODES = [-106, -78, -43, -8, 0, 12, 31, 67, 95, 124]


def custom(lo, hi, **settings):
    return Config(calibration="custom", range_min=lo, range_max=hi, **settings)


def test_worked_example_symmetric_int8():
    r = analyze(np.array(EXAMPLE), custom(-1.5, 1.5))
    s = r.summary()
    assert s["scale"] == 1.5 / 127
    assert s["zero_point"] == 0
    assert (s["q_min"], s["q_max"]) == (-128, 127)
    assert r.per_value.codes.tolist() == EXAMPLE_CODES
    expected = np.array(EXAMPLE_CODES) * (1.5 / 127)
    np.testing.assert_allclose(r.per_value.dequantized, expected, rtol=0, atol=1e-15)
    ref = reference.metrics(EXAMPLE, reference.quantize(EXAMPLE, -1.5, 1.5)[3])
    for key, value in ref.items():
        assert s[key] == pytest.approx(value, rel=1e-12), key
    # The worst value is -0.10 -> code -8 -> -12/127 (error -0.00551), by hand.
    assert s["max_abs_error"] == pytest.approx(0.10 - 12 / 127, rel=1e-12)
    assert s["clip_count"] == 0
    assert s["uniform_noise_mse"] == pytest.approx((1.5 / 127) ** 2 / 12)


def test_asymmetric_int8_on_minus1_to_3():
    r = analyze(np.array([-1.0, 0.0, 1.0, 3.0]), Config(mode="asymmetric"))
    s = r.summary()
    assert s["scale"] == pytest.approx(4 / 255, rel=1e-15)
    assert s["zero_point"] == 64  # round(0 - (-1) / (4/255)) = round(63.75)
    assert (s["q_min"], s["q_max"]) == (0, 255)
    # -1 -> round(-63.75 + 64) = 0; 0 -> 64 exactly; 3 -> round(191.25 + 64) = 255
    assert r.per_value.codes.tolist() == [0, 64, 128, 255]
    assert r.per_value.dequantized[1] == 0.0  # zero is exact in asymmetric mode
    assert not s["range_widened"]


TIES = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]
TIE_CODES = {
    "half-even": [-2, -2, 0, 0, 2, 2],
    "half-away": [-3, -2, -1, 1, 2, 3],
    "floor": [-3, -2, -1, 0, 1, 2],
    "ceil": [-2, -1, 0, 1, 2, 3],
    "toward-zero": [-2, -1, 0, 0, 1, 2],
}


@pytest.mark.parametrize("rounding", sorted(TIE_CODES))
def test_every_rounding_rule_on_exact_ties(rounding):
    # range +-127 at 8 bits symmetric: scale exactly 1, so x / scale is the tie itself
    r = analyze(np.array(TIES), custom(-127, 127, rounding=rounding))
    assert r.summary()["scale"] == 1.0
    assert r.per_value.codes.tolist() == TIE_CODES[rounding]
    assert reference.quantize(TIES, -127, 127, rounding=rounding)[2] == TIE_CODES[rounding]


def test_stochastic_rounding_is_seeded_and_unbiased():
    x = np.full(20000, 0.25)
    config = custom(-127, 127, rounding="stochastic", seed=7)
    a, b = analyze(x, config), analyze(x, config)
    assert np.array_equal(a.per_value.codes, b.per_value.codes)
    assert set(a.per_value.codes.tolist()) == {0, 1}
    assert a.per_value.codes.mean() == pytest.approx(0.25, abs=0.02)
    other = analyze(x, custom(-127, 127, rounding="stochastic", seed=8))
    assert not np.array_equal(a.per_value.codes, other.per_value.codes)
    # integers are never moved
    assert analyze(np.array([3.0, -4.0]), config).per_value.codes.tolist() == [3, -4]


def test_saturation_at_both_ends_symmetric():
    r = analyze(np.array([-5.0, -1.0, 0.0, 1.0, 5.0]), custom(-1, 1))
    s = r.summary()
    assert r.per_value.codes.tolist() == [-128, -127, 0, 127, 127]
    assert r.per_value.clipped.tolist() == [True, False, False, False, True]
    assert s["clip_count"] == 2 and s["clip_rate"] == 0.4
    # 5 reconstructs to 127/127 = 1 (error 4); -5 to -128/127 (error 3.992)
    assert s["max_abs_error"] == pytest.approx(4.0)
    assert any("2 of 5 values clipped" in n for n in s["notes"])


def test_saturation_asymmetric_and_narrow_range():
    r = analyze(np.array([-2.0, 0.5, 9.0]), custom(0, 1, mode="asymmetric"))
    assert r.per_value.codes.tolist() == [0, 128, 255]  # 0.5*255 = 127.5 -> 128 (even)
    assert r.per_value.clipped.tolist() == [True, False, True]
    n = analyze(np.array([-3.0, 3.0]), custom(-1, 1, narrow_range=True))
    assert (n.q_min, n.q_max) == (-127, 127)
    assert n.per_value.codes.tolist() == [-127, 127]


def test_all_zero_input_uses_the_scale_floor():
    r = analyze(np.zeros(5), Config())
    s = r.summary()
    assert s["scale"] == SCALE_FLOOR and s["scale_floored"]
    assert r.per_value.codes.tolist() == [0] * 5
    assert s["mse"] == 0 and s["sqnr_db"] == math.inf and s["rel_rmse"] == 0
    assert any("zero-width range" in n for n in s["notes"])
    a = analyze(np.zeros(3), Config(mode="asymmetric")).summary()
    assert a["scale"] == SCALE_FLOOR and a["zero_point"] == 0


def test_a_tiny_range_keeps_its_own_scale_as_onnx_runtime_does():
    # magnitude 1e-6: amax / 127 = 7.9e-9, far below float32 eps; flooring it at eps (as before)
    # cost about 12 dB against ONNX Runtime's result
    x = np.random.default_rng(4).standard_normal(1000) * 1e-6
    r = analyze(x, Config())
    amax = float(np.abs(x).max())
    assert r.summary()["scale"] == amax / 127 and not r.summary()["scale_floored"]
    assert r.metrics["max_abs_error"] <= amax / 127 / 2 * (1 + 1e-12)
    assert any("PyTorch's observers would raise it to eps" in n for n in r.notes)
    floored_sqnr = 10 * np.log10(np.sum(x ** 2) / np.sum(
        (x - np.clip(np.rint(x / SCALE_FLOOR), -128, 127) * SCALE_FLOOR) ** 2))
    assert r.metrics["sqnr_db"] > floored_sqnr + 10


def test_constant_inputs():
    s = analyze(np.full(4, 2.0), Config()).summary()
    assert s["scale"] == 2.0 / 127 and s["clip_count"] == 0
    assert s["max_abs_error"] < 1e-15
    r = analyze(np.full(3, -3.0), Config(mode="asymmetric"))
    assert r.summary()["range_widened"]  # [-3, -3] becomes [-3, 0]
    assert r.summary()["zero_point"] == 255
    assert r.per_value.codes.tolist() == [0, 0, 0]
    assert any("widened" in n for n in r.notes)


def test_single_value_and_four_bit():
    r = analyze(np.array([0.7]), Config(bits=4))
    assert (r.q_min, r.q_max) == (-8, 7)
    assert r.per_value.codes.tolist() == [7]
    assert r.summary()["scale"] == pytest.approx(0.1)


def test_asymmetric_zero_point_clamped_and_positive_range_widened():
    s = analyze(np.array([2.0, 4.0]), Config(mode="asymmetric")).summary()
    assert s["real_min"] == 0.0 and s["range_widened"] and s["zero_point"] == 0
    assert s["scale"] == pytest.approx(4 / 255)


def test_a_zero_point_that_is_exactly_a_tie_rounds_half_to_even():
    # [-1000, 1000] on 4 bits (0..15): scale = 2000/15, zero point = 0 + 1000 * 15 / 2000 = 7.5
    # exactly, which rounds half to even to 8. Dividing by the rounded scale gave 7.4999999 -> 7.
    r = analyze(np.array([-1000.0, 1000.0]), Config(bits=4, mode="asymmetric"))
    assert int(r.params.zero_point[0]) == 8
    # more exact ties, worked by hand (zero point = -lo * levels / (hi - lo)):
    # [-1, 1] on 3 bits: 1 * 7 / 2 = 3.5 -> 4; [-5, 9] on 3 bits: 5 * 7 / 14 = 2.5 -> 2.
    for (lo, hi, bits), expected in {(-1, 1, 3): 4, (-5, 9, 3): 2}.items():
        r = analyze(np.array([lo, hi], float), Config(bits=bits, mode="asymmetric"))
        assert int(r.params.zero_point[0]) == expected, (lo, hi, bits)


def test_portable_log10_agrees_with_the_c_library():
    from quantcalc.engine.metrics import portable_log10

    rng = np.random.default_rng(0)
    values = np.concatenate([10.0 ** rng.uniform(-300, 300, 20_000), rng.uniform(0.5, 2, 20_000),
                             [1.0, 2.0, 10.0, 1e-300, 1.7e308, 5e-324]])
    for x in values:
        expected = math.log10(x)
        assert abs(portable_log10(x) - expected) <= 8 * np.spacing(abs(expected)) + 1e-300


def test_a_subnormal_error_gives_a_finite_sqnr():
    # 2 bits on [1, 2.2e-313]: 1 is exact, the subnormal rounds to 0, so the error is the
    # subnormal itself and SQNR = 20 log10(1 / 2.22507386e-313) (found by a property test: the
    # ratio of the two sums' scaling units overflowed and gave NaN)
    r = analyze(np.array([1.0, 2.22507386e-313]), Config(bits=2))
    assert r.metrics["sqnr_db"] == pytest.approx(-20 * math.log10(2.22507386e-313), rel=1e-12)
