"""Large tensors: chunked analysis needs memory of the order of the chunk, not of the tensor."""

import tracemalloc

import numpy as np
import pytest

from quantcalc import Config, analyze
from quantcalc.reports import tables as report


def peak_bytes(work):
    tracemalloc.start()  # numpy reports its buffers to tracemalloc
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("settings", [
    dict(),
    dict(mode="asymmetric", rounding="stochastic"),
    dict(granularity="group", group_size=128),
    dict(granularity="channel", axis=1),
])
def test_no_float64_copy_of_the_tensor(settings):
    x = np.random.default_rng(0).standard_normal((1000, 4000)).astype(np.float32)  # 16 MB
    config = Config(**settings)
    peak = peak_bytes(lambda: analyze(x, config, keep=0))
    segments = {"tensor": 1, "channel": 4000, "group": x.size // 128}[config.granularity]
    # A float64 copy alone would be 32 MB and a float32 copy 16 MB. Allowed: half the input for
    # chunk buffers, plus 16 float64 numbers per segment (range, scale, zero point, flags...).
    assert peak < 0.5 * x.nbytes + 128 * segments, f"peak {peak / 1e6:.1f} MB"


def test_percentile_needs_at_most_one_input_sized_buffer():
    x = np.random.default_rng(1).standard_normal(4_000_000).astype(np.float32)
    peak = peak_bytes(lambda: analyze(x, Config(calibration="percentile"), keep=0))
    assert peak < 2.2 * x.nbytes


def test_per_value_results_and_csv_are_capped():
    x = np.arange(2500, dtype=np.float32)
    r = analyze(x, Config(), keep=1000)
    assert len(r.per_value.codes) == 1000 and r.count == 2500
    assert "first 1000 of 2500" in " ".join(r.notes)
    assert report.per_value_csv(r).count(b"\r\n") == 1001
    full = analyze(x, Config())
    assert np.array_equal(full.per_value.codes[:1000], r.per_value.codes)
    assert full.metrics == r.metrics
