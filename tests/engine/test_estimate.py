"""The sample estimator behind estimated scans (engine/estimate.py), checked on populations whose
totals are known: nested, seeded batches spread over the tensor; the 95 % interval covers the
true total in about 95 % of samples; the estimate is unbiased; a complete sample is exact."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantcalc.engine.estimate import StratifiedSample, sqnr_half_width_db


def population(units, seed, spread=1.0):
    """Per-unit signal and noise sums shaped like quantization's: noise grows with the unit's
    magnitude, with unit-to-unit scatter (heavy-tailed magnitudes across the tensor)."""
    rng = np.random.default_rng(seed)
    signal = rng.lognormal(0.0, spread, units) * 4096
    noise = signal * 1e-3 * rng.gamma(8.0, 1 / 8.0, units)
    return signal, noise


def sample_until(sample, signal, noise, batches):
    for _ in range(batches):
        if sample.complete:
            break
        units = sample.next_batch()
        sample.record(units, signal=signal[units], noise=noise[units])
    return sample


@given(units=st.integers(1, 5000), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_batches_are_seeded_nested_disjoint_and_reach_every_unit(units, seed):
    first, second = StratifiedSample(units, seed), StratifiedSample(units, seed)
    seen = []
    while not first.complete:
        batch = first.next_batch()
        assert np.array_equal(batch, second.next_batch())   # the same seed, the same units
        assert np.all(np.diff(batch) > 0)                     # sorted, for reading in order
        seen.append(batch)
    every = np.concatenate(seen)
    assert np.array_equal(np.sort(every), np.arange(units))  # each unit once, all of them
    assert first.measured_units() == units


def test_the_first_batch_spreads_over_the_whole_tensor():
    sample = StratifiedSample(4096, seed=3)
    batch = sample.next_batch()
    assert len(batch) == 64 and sample.strata == 32
    # two units in each 128-unit stretch, so none of the tensor's 32 parts goes unseen
    assert np.array_equal(np.bincount(batch // 128, minlength=32), np.full(32, 2))


def test_a_complete_sample_gives_the_exact_total_and_no_interval():
    signal, noise = population(300, seed=1)
    sample = sample_until(StratifiedSample(300, seed=5), signal, noise, batches=99)
    assert sample.complete
    total, se = sample.total("noise", "signal", float(signal.sum()))
    assert total == pytest.approx(noise.sum(), rel=1e-12) and se == 0.0
    assert sqnr_half_width_db(total, se) == 0.0


@pytest.mark.parametrize("auxiliary", [True, False], ids=["ratio", "expansion"])
def test_the_interval_covers_the_truth_about_95_percent_of_the_time(auxiliary):
    signal, noise = population(4096, seed=7)
    truth = noise.sum()
    covered, errors = 0, []
    seeds = range(400)
    for seed in seeds:
        sample = sample_until(StratifiedSample(4096, seed), signal, noise, batches=2)  # 6 %
        total, se = sample.total("noise", "signal", float(signal.sum())) if auxiliary \
            else sample.total("noise")
        covered += abs(total - truth) <= 1.959964 * se
        errors.append((total - truth) / truth)
    assert 0.90 <= covered / len(seeds) <= 0.99
    # unbiased: the mean relative error over seeds is within 3 standard errors of 0
    errors = np.array(errors)
    assert abs(errors.mean()) <= 3 * errors.std() / math.sqrt(len(errors))


def test_the_ratio_estimate_is_tighter_when_noise_follows_the_signal():
    signal, noise = population(4096, seed=11, spread=1.5)
    ratio, expansion = [], []
    for seed in range(50):
        sample = sample_until(StratifiedSample(4096, seed), signal, noise, batches=2)
        ratio.append(sample.total("noise", "signal", float(signal.sum()))[1])
        expansion.append(sample.total("noise")[1])
    assert np.median(ratio) < 0.5 * np.median(expansion)


def test_half_width_in_db():
    # 1 % standard error of the noise is 1.96 * 4.343 * 0.01 = 0.0851 dB
    assert sqnr_half_width_db(100.0, 1.0) == pytest.approx(0.08512, abs=1e-5)
    assert sqnr_half_width_db(0.0, 1.0) == math.inf
