"""Per-channel and per-group results equal a plain loop of per-tensor analyses over the slices."""

import numpy as np
import pytest

from quantcalc import Config, QuantcalcError, analyze


def loop_reference(slices, **settings):
    """Analyse each slice on its own, per tensor: (scale, zero_point, codes) per slice."""
    out = []
    for values in slices:
        r = analyze(values, Config(**settings))
        out.append((r.params.scale[0], r.params.zero_point[0], r.per_value.codes))
    return out


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("mode", ["symmetric", "asymmetric"])
@pytest.mark.parametrize("calibration", ["minmax", "percentile", "mse", "entropy"])
def test_per_channel_equals_a_loop_over_channels(axis, mode, calibration):
    x = np.random.default_rng(3).standard_normal((4, 6, 10)).astype(np.float32)
    x[:, 2, :] *= 20  # channels of different magnitude
    settings = dict(mode=mode, calibration=calibration, bits=6)
    r = analyze(x, Config(granularity="channel", axis=axis, **settings))
    codes = r.per_value.codes.reshape(x.shape)
    channels = x.shape[axis]
    assert r.params.scale.size == channels
    expected = loop_reference([np.take(x, c, axis=axis) for c in range(channels)], **settings)
    for c, (scale, zero_point, slice_codes) in enumerate(expected):
        assert r.params.scale[c] == pytest.approx(scale, rel=1e-12)
        assert r.params.zero_point[c] == zero_point
        assert np.array_equal(np.take(codes, c, axis=axis).reshape(-1), slice_codes)


@pytest.mark.parametrize("group_size", [1, 3, 4, 10, 32])
@pytest.mark.parametrize("calibration", ["minmax", "percentile", "mse"])
def test_per_group_equals_a_loop_over_groups(group_size, calibration):
    x = np.random.default_rng(4).standard_normal((3, 10))
    settings = dict(mode="asymmetric", calibration=calibration, bits=4)
    r = analyze(x, Config(granularity="group", group_size=group_size, **settings))
    slices = [row[start:start + group_size] for row in x for start in range(0, 10, group_size)]
    expected = loop_reference(slices, **settings)
    assert r.params.scale.size == len(slices)  # the last group of a row may be shorter
    codes = r.per_value.codes.reshape(x.shape)
    position = 0
    for row in range(3):
        for start in range(0, 10, group_size):
            scale, zero_point, slice_codes = expected[position]
            assert r.params.scale[position] == pytest.approx(scale, rel=1e-12)
            assert r.params.zero_point[position] == zero_point
            assert np.array_equal(codes[row, start:start + group_size], slice_codes)
            position += 1


def test_metrics_over_segments_are_over_all_values():
    x = np.random.default_rng(5).standard_normal((8, 64))
    r = analyze(x, Config(granularity="channel", bits=4))
    err = x.reshape(-1) - r.per_value.dequantized
    assert r.metrics["mse"] == pytest.approx(np.mean(err ** 2), rel=1e-12)
    sizes_scales = r.segment_sizes * r.params.scale ** 2 / 12
    assert r.metrics["uniform_noise_mse"] == pytest.approx(sizes_scales.sum() / x.size)
    s = r.summary()
    assert isinstance(s["scale"], list) and len(s["scale"]) == 8
    # per channel is never worse than per tensor at the same bits on channels of unequal size
    x[3] *= 50
    per_tensor = analyze(x, Config(bits=4)).metrics["sqnr_db"]
    per_channel = analyze(x, Config(bits=4, granularity="channel")).metrics["sqnr_db"]
    assert per_channel > per_tensor


def test_bad_axis_and_group_size_name_their_field():
    with pytest.raises(QuantcalcError) as err:
        analyze(np.zeros((2, 3)), Config(granularity="channel", axis=2))
    assert err.value.field == "axis" and "2x3" in err.value.message
    with pytest.raises(QuantcalcError) as err:
        Config(granularity="group", group_size=0)
    assert err.value.field == "group_size"


def test_entropy_refuses_thousands_of_tiny_groups():
    with pytest.raises(QuantcalcError) as err:
        analyze(np.zeros(32 * 5000), Config(granularity="group", calibration="entropy"))
    assert err.value.field == "calibration"
