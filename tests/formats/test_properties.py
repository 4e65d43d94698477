"""Property tests over the configuration space (hypothesis)."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from quantcalc import Config, analyze
from quantcalc.formats.integer import quantize

from tests.support import reference

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64)
tensors = hnp.arrays(np.float64, st.integers(1, 60), elements=finite)
DETERMINISTIC = ["half-even", "half-away", "floor", "ceil", "toward-zero"]
NEAREST = ["half-even", "half-away"]


@st.composite
def configs(draw, roundings=tuple(DETERMINISTIC) + ("stochastic",)):
    mode = draw(st.sampled_from(["symmetric", "asymmetric"]))
    calibration = draw(st.sampled_from(["minmax", "percentile", "mse", "custom"]))
    settings_ = dict(
        bits=draw(st.integers(2, 16)), mode=mode, rounding=draw(st.sampled_from(roundings)),
        narrow_range=mode == "symmetric" and draw(st.booleans()), calibration=calibration,
        seed=draw(st.integers(0, 2**32 - 1)),
        percentile=draw(st.floats(50, 100)),
    )
    if calibration == "custom":
        a, b = sorted([draw(finite), draw(finite)])
        settings_.update(range_min=a, range_max=b)
    return Config(**settings_)


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(tensors, configs())
def test_codes_stay_within_q_range(x, config):
    r = analyze(x, config)
    assert r.per_value.codes.min() >= r.q_min and r.per_value.codes.max() <= r.q_max
    s = r.summary()
    assert 0 <= s["clip_count"] <= x.size
    assert s["rmse"] == pytest.approx(math.sqrt(s["mse"]))
    assert s["mae"] <= s["rmse"] * (1 + 1e-12) + 1e-300  # mean |e| <= sqrt(mean e^2)
    assert s["max_abs_error"] >= s["mae"] * (1 - 1e-12)


@SETTINGS
@given(tensors, configs(roundings=NEAREST))
def test_unclipped_error_is_at_most_half_a_step(x, config):
    r = analyze(x, config)
    scale = r.params.scale[0]
    pv = r.per_value
    inside = ~pv.clipped
    bound = scale / 2 + 1e-9 * scale + 4 * np.spacing(np.abs(pv.original[inside]))
    assert np.all(np.abs(pv.error[inside]) <= bound)


@SETTINGS
@given(tensors, configs(roundings=NEAREST))
def test_quantizing_the_reconstruction_again_changes_nothing(x, config):
    # Only for round-to-nearest: floor/ceil move a reconstruction that float arithmetic left a
    # hair below/above its integer, in any implementation.
    r = analyze(x, config)
    fmt = config.number_format
    codes, clipped = quantize(r.per_value.dequantized, r.params.scale[0],
                              r.params.zero_point[0], fmt, config.rounding)
    assert np.array_equal(codes, r.per_value.codes)
    assert not clipped.any()


@SETTINGS
@given(tensors, configs(roundings=("stochastic", "half-even", "floor")),
       st.integers(1, 17))
def test_results_do_not_depend_on_the_chunk_size(x, config, chunk):
    a, b = analyze(x, config), analyze(x, config, chunk=chunk)
    assert np.array_equal(a.per_value.codes, b.per_value.codes)
    assert a.metrics["clip_count"] == b.metrics["clip_count"]
    assert a.metrics["mse"] == pytest.approx(b.metrics["mse"], rel=1e-12, abs=1e-300)


@SETTINGS
@given(hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-1000, 1000, width=32)),
       st.integers(2, 16), st.sampled_from(["symmetric", "asymmetric"]),
       st.sampled_from(DETERMINISTIC))
def test_matches_the_exact_rational_reference(x, bits, mode, rounding):
    config = Config(bits=bits, mode=mode, rounding=rounding)
    r = analyze(x, config)
    lo, hi = float(x.min()), float(x.max())
    scale, zp, codes, recon, clipped = reference.quantize(x.tolist(), lo, hi, bits, mode, rounding)
    assert r.params.scale[0] == pytest.approx(float(scale), rel=1e-15)
    assert int(r.params.zero_point[0]) == zp
    # float64 x / scale may land on the other side of a boundary only when the exact quotient is
    # within rounding distance of it; everywhere else the codes must agree exactly.
    for value, code, expected in zip(x.tolist(), r.per_value.codes.tolist(), codes):
        if code != expected:
            exact = Fraction(value) / scale + zp
            boundary = round(exact * 2) / 2 if rounding in NEAREST else round(exact)
            assert abs(exact - boundary) < Fraction(1, 10**9)


@pytest.mark.parametrize("bits", range(2, 16))
def test_sqnr_grows_about_6_db_per_bit_on_uniform_data(bits):
    x = np.random.default_rng(bits).uniform(-1, 1, 50_000)
    low = analyze(x, Config(bits=bits)).metrics["sqnr_db"]
    high = analyze(x, Config(bits=bits + 1)).metrics["sqnr_db"]
    # The step is amax / q_max, so one more bit gains 20 log10(q_max(b+1) / q_max(b)) dB:
    # 7.36 dB from 3 to 4 bits, tending to 20 log10(2) = 6.02 dB.
    expected = 20 * math.log10((2 ** bits - 1) / (2 ** (bits - 1) - 1))
    assert high - low == pytest.approx(expected, abs=0.2)
    if bits >= 8:
        assert high - low == pytest.approx(6.02, abs=0.1)
    # and the measured MSE is the uniform-noise prediction scale^2/12
    r = analyze(x, Config(bits=bits))
    assert r.metrics["mse"] == pytest.approx(r.metrics["uniform_noise_mse"], rel=0.05)
