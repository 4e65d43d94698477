"""Calibration: percentile, MSE search and TensorRT-style entropy against independent code."""

from collections import Counter

import numpy as np
import pytest

from quantcalc import Config, analyze
from quantcalc.engine.ranges import ENTROPY_BINS, entropy_threshold


def test_percentile_symmetric_is_the_percentile_of_abs_x():
    x = np.random.default_rng(0).standard_normal(10_001)
    r = analyze(x, Config(calibration="percentile", percentile=99.0))
    t = np.percentile(np.abs(x), 99.0)
    assert r.summary()["real_max"] == pytest.approx(t) and r.summary()["real_min"] == -t
    assert r.metrics["clip_count"] > 0


def test_percentile_asymmetric_uses_both_tails_and_100_is_minmax():
    x = np.random.default_rng(1).gamma(2.0, size=5000) - 1
    r = analyze(x, Config(mode="asymmetric", calibration="percentile", percentile=99.5))
    assert r.calibrated_min[0] == pytest.approx(np.percentile(x, 0.5))
    assert r.calibrated_max[0] == pytest.approx(np.percentile(x, 99.5))
    full = analyze(x, Config(calibration="percentile", percentile=100)).summary()
    assert full["real_max"] == pytest.approx(np.abs(x).max())


@pytest.mark.parametrize("size, outlier", [(4000, 12.0), (50_000, 40.0)])  # exact / histogram
@pytest.mark.parametrize("mode", ["symmetric", "asymmetric"])
def test_mse_search_beats_minmax_with_an_outlier(size, outlier, mode):
    x = np.random.default_rng(2).standard_normal(size)
    x[7] = outlier
    minmax = analyze(x, Config(bits=4, mode=mode))
    searched = analyze(x, Config(bits=4, mode=mode, calibration="mse"))
    assert searched.summary()["real_max"] < outlier
    assert searched.metrics["mse"] < 0.5 * minmax.metrics["mse"]
    assert searched.metrics["clip_count"] >= 1
    # and no 0.2-step grid of custom ranges does better than 10 % under the search's result
    grid = np.arange(0.2, outlier + 0.1, 0.2)
    lows = [-t for t in grid] if mode == "symmetric" else [x.min() * f for f in (1, .75, .5)]
    best = min(analyze(x, Config(bits=4, mode=mode, calibration="custom", range_min=lo,
                                 range_max=t)).metrics["mse"] for t in grid for lo in
               (lows if mode == "asymmetric" else [-t]))
    assert searched.metrics["mse"] <= best * 1.1


def test_mse_search_never_worse_than_minmax_on_small_inputs():
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = rng.standard_t(3, size=200)
        a = analyze(x, Config(bits=3, calibration="mse")).metrics["mse"]
        b = analyze(x, Config(bits=3)).metrics["mse"]
        assert a <= b * (1 + 1e-12)  # min-max is one of the candidates


def pytorch_quantization_entropy(calib_hist, calib_bin_edges, num_bits, start_bin=128):
    """Direct transcription of NVIDIA pytorch-quantization's _compute_amax_entropy (stride 1,
    signed), with scipy.stats.entropy written out; the loop form, for independence."""
    bins = calib_hist[:].astype(np.float64)
    bins[0] = bins[1]
    nbins = 1 << (num_bits - 1)
    divergences, arguments = [], []
    new_density_counts = np.zeros(nbins, dtype=np.float64)
    for i in range(start_bin, len(bins) + 1):
        new_density_counts.fill(0)
        space = np.linspace(0, i, num=nbins + 1)
        digitized_space = np.digitize(range(i), space) - 1
        digitized_space[bins[:i] == 0] = -1
        for idx, digitized in enumerate(digitized_space):
            if digitized != -1:
                new_density_counts[digitized] += bins[idx]
        counter = Counter(digitized_space)
        for key, val in counter.items():
            if key != -1:
                new_density_counts[key] = new_density_counts[key] / val
        new_density = np.zeros(i, dtype=np.float64)
        for idx, digitized in enumerate(digitized_space):
            if digitized != -1:
                new_density[idx] = new_density_counts[digitized]
        reference_density = np.array(bins[:len(digitized_space)])
        reference_density[-1] += np.sum(bins[i:])
        p = reference_density / reference_density.sum()
        q = new_density / new_density.sum()
        with np.errstate(divide="ignore", invalid="ignore"):  # p = 0: 0 * log 0, masked out
            ent = np.sum(np.where(p > 0, p * np.log(p / np.where(q > 0, q, 1e-300)), 0))
        if np.any((p > 0) & (q == 0)):
            ent = np.inf
        divergences.append(ent)
        arguments.append(i)
    divergences = np.array(divergences)
    last_argmin = len(divergences) - 1 - np.argmin(divergences[::-1])
    return calib_bin_edges[last_argmin + start_bin]


@pytest.mark.parametrize("seed", [0, 1])
def test_entropy_threshold_matches_pytorch_quantization(seed):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.laplace(size=20_000), rng.normal(0, 8, 50)])
    hist, edges = np.histogram(np.abs(x), bins=ENTROPY_BINS, range=(0, np.abs(x).max()))
    expected = pytorch_quantization_entropy(hist, edges, 8)
    assert entropy_threshold(hist, edges, 8) == pytest.approx(expected, rel=1e-12)


def test_entropy_calibration_clips_long_tails():
    x = np.random.default_rng(4).laplace(size=50_000)
    r = analyze(x, Config(calibration="entropy"))
    assert r.summary()["real_max"] < np.abs(x).max()
    assert 0 < r.metrics["clip_rate"] < 0.01


def test_the_percentile_of_float32_data_is_computed_in_float64():
    x = np.zeros(4096, np.float32)
    x[-2], x[-1] = 1, 2
    r = analyze(x, Config(calibration="percentile", percentile=99.99))
    expected = np.percentile(np.abs(x.astype(np.float64)), 99.99)  # 1.5905, not float32's 1.59033
    assert r.calibrated_max[0] == expected and abs(expected - 1.5905) < 1e-12
    a = analyze(x, Config(calibration="percentile", percentile=99.99, mode="asymmetric"))
    assert a.calibrated_max[0] == np.percentile(x.astype(np.float64), 99.99)
