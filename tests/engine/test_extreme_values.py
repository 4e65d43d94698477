"""Values at float64's and float32's edges (issue 26, second round): every format either refuses
them with a message or gives finite metrics that agree with each other, never another exception
and never a RuntimeWarning.

Squares of values below ~1e-154 underflow and above ~1e154 overflow in float64; the metrics are
summed in units of a power of two (engine/metrics.py), so MSE, RMSE and SQNR agree at any
magnitude float64 can hold them at, and the same values scaled by a power of two give the same
SQNR."""

import math
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from quantcalc import Config, QuantcalcError, analyze
from quantcalc.schema import registry

NORMAL_MIN = sys.float_info.min  # 2.2e-308: below it a float64 keeps fewer digits


def _log10_signal_rms(x):
    """log10 rms(x), without squaring x itself ((x / s)^2 neither underflows nor overflows) or
    forming rms(x), which may be below the smallest subnormal; None for all zeros."""
    x = np.asarray(x, np.float64).reshape(-1)
    s = float(np.abs(x).max())
    if s == 0:
        return None
    return math.log10(s) + 0.5 * math.log10(float(np.mean(np.square(x / s))))


def check_consistent(metrics, x):
    """Finite metrics that agree with each other and with the values (see the module doc)."""
    mse, rmse, mae, top = (metrics[k] for k in ("mse", "rmse", "mae", "max_abs_error"))
    for key in ("mse", "rmse", "mae", "max_abs_error", "rel_rmse", "clip_rate"):
        assert math.isfinite(metrics[key]), (key, metrics[key])
    assert mse >= 0 and rmse >= 0 and mae >= 0 and top >= 0
    if mse >= NORMAL_MIN:
        assert math.sqrt(mse) == pytest.approx(rmse, rel=1e-12)
    else:  # mse rounds to a subnormal or 0: rmse^2 is that small too
        assert rmse * rmse == pytest.approx(mse, rel=1e-9, abs=2 * NORMAL_MIN)
    assert top >= rmse * (1 - 1e-12) and rmse >= mae * (1 - 1e-12)
    assert top * top >= mse * (1 - 1e-12)  # inf >= mse where top^2 overflows
    signal = _log10_signal_rms(x)
    if top == 0:
        assert mse == 0 and metrics["sqnr_db"] == math.inf and metrics["rel_rmse"] == 0
        return
    assert signal is not None
    sqnr, relative = metrics["sqnr_db"], metrics["rel_rmse"]
    assert math.isfinite(sqnr)
    # each identity where float64 holds its terms with all their digits (an RMSE of one
    # 5e-324 among 512 zeros is itself below the smallest subnormal: 0)
    if relative >= NORMAL_MIN:
        assert sqnr == pytest.approx(-20 * math.log10(relative), abs=1e-9)
    if rmse >= NORMAL_MIN:
        assert sqnr == pytest.approx(20 * (signal - math.log10(rmse)), abs=1e-9)
        if relative >= NORMAL_MIN:
            assert math.log10(relative) == pytest.approx(math.log10(rmse) - signal, abs=1e-10)
    if mse >= NORMAL_MIN:  # 10 log10(mean x^2 / mse), the power taken in logs
        assert sqnr == pytest.approx(20 * signal - 10 * math.log10(mse), abs=1e-9)


def analyzed(x, config, importance=None):
    """analyze() with every warning an error: a result, or None for a QuantcalcError (checked
    to carry a message); any other exception fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return analyze(x, config, keep=0, importance=importance)
        except QuantcalcError as exc:
            assert exc.message.strip() and exc.field, exc
            return None


# ---------------------------------------------------------------- tiny and huge, by hand
@pytest.mark.parametrize("fmt", ["int", "nf4", "fp8_e4m3", "fp4_e2m1"])
def test_values_near_1e_300_agree_and_say_why_mse_reads_0(fmt):
    """NF4 on values near 1e-300 said MSE 0.0 beside a max error of 3e-301 and SQNR 20.9 dB,
    unexplained: the true MSE (about 1e-602) is below anything float64 holds, so it rounds to
    0, while RMSE and SQNR, summed in units of a power of two, are exact. The metrics agree
    within that rounding and a note says so."""
    x = np.random.default_rng(0).standard_normal((2, 256)) * 1e-300
    result = analyzed(x, Config(format=fmt))
    check_consistent(result.metrics, x)
    assert result.metrics["mse"] == 0 and result.metrics["max_abs_error"] > 0
    assert 15 < result.metrics["sqnr_db"] < 60
    [note] = [n for n in result.notes if n.startswith("MSE ")]
    assert "below float64's smallest normal number" in note and "e-60" in note


def test_subnormal_values_are_measured_and_the_note_says_why_mse_reads_0():
    x = np.array([1e-310, 3e-310, -2e-310])
    result = analyzed(x, Config())
    check_consistent(result.metrics, x)
    assert any("below float64's smallest normal number" in n for n in result.notes)


def test_a_subnormal_beside_ordinary_values_is_still_measured():
    """The error there is far below the signal: MSE rounds to 0 in float64, SQNR and RMSE are
    exact (tests/engine/test_golden.py's case), and they agree."""
    x = np.array([1.0, 2.22507386e-313])
    result = analyze(x, Config(bits=2))
    check_consistent(result.metrics, x)


def test_the_importance_weighted_sqnr_agrees_with_the_plain_one_at_1e_300():
    """Q4_K computes in float32, where values near 1e-300 are 0: every value is lost and both
    SQNRs are 0 dB (the weighted one said inf: its squares underflowed to 0 / 0)."""
    x = np.random.default_rng(1).standard_normal((2, 256)) * 1e-300
    weights = np.random.default_rng(0).uniform(0.1, 3, 256)
    result = analyzed(x, Config(format="q4_k"), importance=weights)
    m = result.metrics
    check_consistent(m, x)
    assert m["sqnr_db"] == 0.0 and m["weighted_sqnr_db"] == pytest.approx(0.0, abs=1e-9)


def test_ordinary_results_carry_no_underflow_note():
    x = np.random.default_rng(1).standard_normal(300)
    assert not any(n.startswith("MSE ") for n in analyze(x, Config()).notes)
    assert not any(n.startswith("MSE ") for n in analyze(np.zeros(4), Config()).notes)


def test_a_hint_that_would_overflow_is_left_out_not_raised():
    """An outlier near 1e160: min-max measures it (its own error is 0), the percentile and MSE
    calibrations the outlier hint tries would clip it to an error float64 cannot square; the
    hint is left out instead of failing the whole result."""
    from quantcalc.engine.verdict import hints

    x = np.random.default_rng(0).standard_normal(3000)
    x[5] = 1e160
    result = analyze(x, Config())
    assert hints(x, result) == []


@pytest.mark.parametrize("fmt", ["int", "nf4", "fp8_e4m3"])
def test_huge_values_whose_error_overflows_are_refused(fmt):
    x = np.random.default_rng(0).standard_normal((2, 256)) * 1e300
    with pytest.raises(QuantcalcError, match="overflows float64"):
        analyze(x, Config(format=fmt))


@pytest.mark.parametrize("k", [-1000, -600, -400, -200, 200, 400, 800])
@pytest.mark.parametrize("config", [Config(), Config(bits=4, mode="asymmetric"),
                                    Config(format="nf4"), Config(calibration="mse"),
                                    Config(format="fp8_e4m3", calibration="mse")],
                         ids=["int8", "int4 asym", "nf4", "int8 mse", "fp8 mse"])
def test_a_power_of_two_scales_every_error_exactly(config, k):
    """x · 2^k: every metric scales exactly (2^k and 2^2k), SQNR does not change, wherever
    float64 holds the MSE, and the MSE calibration picks the same range."""
    x = np.random.default_rng(2).standard_normal((4, 64))
    base = analyze(x, config, keep=0).metrics
    scaled = analyzed(np.ldexp(x, k), config)
    if scaled is None:  # the squared error beyond float64: refused
        assert math.log2(base["mse"]) + 2 * k >= 1024, k
        return
    m = scaled.metrics
    check_consistent(m, np.ldexp(x, k))
    # the sums are kept in other units of a power of two: log10 of their ratio may round in
    # the last place
    assert m["sqnr_db"] == pytest.approx(base["sqnr_db"], rel=1e-14)
    assert m["max_abs_error"] == math.ldexp(base["max_abs_error"], k)
    assert m["rmse"] == pytest.approx(math.ldexp(base["rmse"], k), rel=1e-14)


# ---------------------------------------------------------------- every format, extreme values
FLOAT64_MAGNITUDES = [5e-324, 1e-310, 2.2250738585072014e-308, 1e-300, 1e-200, 1e-154, 1e-45,
                      1e-8, 1.0, 1e38, 3e38, 1e154, 1e200, 1e300, 1.7e308]
FLOAT32_MAGNITUDES = [1.4e-45, 1e-40, 1.1754944e-38, 1e-20, 1.0, 6e4, 1e20, 1e38, 3e38,
                      3.4e38]
FORMAT_CONFIGS = [dict(format=f.name, calibration=c) for f in registry.FORMATS
                  for c in f.calibrations if c != "custom"]
FORMAT_CONFIGS += [dict(format="int", bits=4, mode="asymmetric"),
                   dict(format="int", granularity="channel"),
                   dict(format="int", bits=2, mode="asymmetric", calibration="mse")]


@st.composite
def extreme_tensors(draw):
    """(2, 256) values (whole super-blocks for the K-quants): a magnitude or two from float64's
    or float32's edges, signs, zeros and a few ordinary multiples, as float64 or float32."""
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    magnitudes = FLOAT64_MAGNITUDES if dtype == np.float64 else FLOAT32_MAGNITUDES
    chosen = draw(st.lists(st.sampled_from(magnitudes), min_size=1, max_size=2))
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(chosen), 512)
    factors = rng.choice([1.0, -1.0, 0.5, -0.75, 0.3, 0.0], 512,
                         p=[0.3, 0.3, 0.1, 0.1, 0.1, 0.1])
    if draw(st.booleans()):
        factors[rng.random(512) < 0.5] = 0.0  # mostly zeros
    with np.errstate(over="ignore", under="ignore"):
        x = (np.array(chosen)[picks] * factors).astype(dtype).reshape(2, 256)
    x[~np.isfinite(x)] = 0  # 1.7e308 * -0.75 is fine; a float32 product beyond its range is not
    return x


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(extreme_tensors(), st.sampled_from(FORMAT_CONFIGS))
@example(np.full((2, 256), 1e38, np.float32), dict(format="iq4_nl", calibration="minmax"))
@example(np.full((2, 256), 1e-300), dict(format="nf4", calibration="minmax"))
@example(np.full((2, 256), 1e300), dict(format="int", calibration="mse"))
def test_extreme_values_are_refused_or_measured_consistently_by_every_format(x, settings_):
    result = analyzed(x, Config.from_dict(settings_))
    if result is not None:
        check_consistent(result.metrics, x)
