"""torchao's rowwise float8 scaling (FP8 E4M3 / E5M2 per channel under the PyTorch convention)
against torchao 0.18 itself (hp_tensor_to_float8_dynamic with AXISWISE scaling and the
"rowwise" recipe's power-of-two scales, tests/support/framework_refs.py): codes, scales and
reconstructions bit for bit on rows torchao finds hard: all-zero rows (amax clamped to 1e-12),
one huge value among tiny ones, ties, 1e-6 and 1e30 magnitudes, and scales just below a power of
two, which torch's float32 log2 rounds up to it (so x · scale saturates at the grid's max)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantcalc.engine.analysis import analyze
from quantcalc.engine.config import Config
from quantcalc.engine.framework_differences import REASONS, differences
from quantcalc.formats.conventions import float8
from tests.support.convention_cases import assert_identical

torch = pytest.importorskip("torch")
TOP = {"fp8_e4m3": 448.0, "fp8_e5m2": 57344.0}


@st.composite
def hostile_rows(draw):
    """A matrix whose rows are each one of: normal at 1e-6 … 1e30, half-step ties, all zeros,
    tiny values with one huge one, or amax giving a scale just below a power of two."""
    n_rows, n_cols = draw(st.integers(1, 6)), draw(st.integers(1, 40))
    fmt = draw(st.sampled_from(sorted(TOP)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    rows = []
    for _ in range(n_rows):
        kind = draw(st.sampled_from(["normal", "ties", "zero", "spike", "below_pow2"]))
        if kind == "normal":
            row = rng.standard_normal(n_cols) * draw(st.sampled_from([1e-6, 1.0, 1e3, 1e30]))
        elif kind == "ties":
            row = rng.integers(-255, 256, n_cols) / 2.0 * 2.0 ** draw(st.integers(-30, 30))
        elif kind == "zero":
            row = np.zeros(n_cols)
        elif kind == "spike":
            row = rng.standard_normal(n_cols) * 1e-6
            row[rng.integers(n_cols)] = draw(st.sampled_from([1e30, -3e38, 1e6]))
        else:
            # float32 scale 2^k (1 - j 2^-24): amax = top / scale, so max / amax lands on or
            # next to a float32 just below 2^k
            k, j = draw(st.integers(-100, 50)), draw(st.integers(1, 8))
            scale = np.float32(2.0 ** k * (1 - j * 2.0 ** -24))
            row = rng.uniform(-1, 1, n_cols) * (TOP[fmt] / float(scale))
            row[rng.integers(n_cols)] = TOP[fmt] / float(scale) * draw(st.sampled_from([1, -1]))
        rows.append(row)
    x = np.array(rows, np.float32)
    return (x if draw(st.booleans()) else x.T.copy()), fmt


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=hostile_rows(), axis=st.sampled_from([0, 1]))
def test_rowwise_is_bit_identical_to_torchao(drawn, axis):
    x, fmt = drawn
    assert_identical(x, {"convention": "pytorch", "format": fmt, "granularity": "channel",
                          "axis": axis})


def test_a_scale_just_below_a_power_of_two_rounds_up_and_saturates_as_torchao_does():
    """max / amax = 2^20 (1 - 2^-24) in float32: log2 of it is 20 − 8.6e-8, whose nearest
    float32 is 20, so torch's scale becomes 2^20, above max / amax, and amax · scale passes 448:
    the code saturates. The reference is torchao's own cast; the row really rounds up."""
    scale = np.float32(2.0 ** 20 * (1 - 2.0 ** -24))
    amax = np.float32(448.0 / float(scale))
    assert np.float32(448.0 / float(amax)) < 2.0 ** 20  # the unrounded scale is below 2^20
    x = np.array([[amax, amax / 2, -amax / 3], [1.0, 2.0, 0.0]], np.float32)
    case = {"convention": "pytorch", "format": "fp8_e4m3", "granularity": "channel"}
    assert_identical(x, case)
    result = analyze(x, Config(**case), keep=x.size)
    assert result.params.scale[0] == 2.0 ** -20
    assert result.per_value.codes[0] == 0x7E  # E4M3's 448, saturated
    assert result.per_value.dequantized[0] == np.float32(448.0 * 2.0 ** -20) < amax


def test_power_of_two_rounding_equals_torchaos_near_every_power_of_two():
    """quantcalc's float64-log2 rounding against torchao's _round_scale_down_to_power_of_2 on
    every float32 within 2^11 ulps of each normal power of two, and on random float32s."""
    with_warnings_off = pytest.importorskip("torchao.float8.float8_utils")
    ints = np.concatenate([np.arange(b - 2 ** 11, b + 2 ** 11) for b in
                           (np.float32(2.0 ** e).view(np.int32) for e in range(-125, 127))])
    rng = np.random.default_rng(0)
    ints = np.concatenate([ints, rng.integers(0x00800000, 0x7f800000, 1 << 20)])
    scales = ints.astype(np.int32).view(np.float32)
    theirs = with_warnings_off._round_scale_down_to_power_of_2(torch.from_numpy(scales)).numpy()
    ours = float8.round_down_to_power_of_2(scales)
    assert ours.dtype == np.float32
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("fmt", sorted(TOP))
def test_the_note_says_power_of_two_and_why_do_they_differ_names_the_rule(fmt):
    x = np.random.default_rng(5).standard_normal((8, 64)).astype(np.float32)
    x[3] *= 40.0
    x[5] = 0.0
    settings_ = {"format": fmt, "granularity": "channel"}
    result = analyze(x, Config(convention="pytorch", **settings_), keep=x.size)
    assert "rounded down to a power of two" in result.summary()["notes"][0]
    assert "no setting" in result.summary()["notes"][0]
    assert np.all(np.log2(result.params.scale) == np.round(np.log2(result.params.scale)))
    doc = differences(x, settings_, keep=x.size)
    row = next(r for r in doc["rows"] if r["convention"] == "pytorch")
    assert "refused" not in row and row["segments"] == 8
    exact = analyze(x, Config(**settings_), keep=x.size).per_value.codes
    assert row["codes_differ"] == int((result.per_value.codes != exact).sum()) > 0
    assert sum(row["reasons"][r] for r in REASONS) == row["codes_differ"]
    # the zero row meets torchao's 1e-12 floor; the others moved by the power of two
    assert row["reasons"]["scale_rule"] > 0 and row["reasons"]["calibration"] == 0
    assert any("1e-12" in note for note in result.summary()["notes"])
