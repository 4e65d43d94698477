"""Hints that find the big win (issue 27): besides calibrations, the cheap structural changes
(a scale per output channel, groups of 128, a block format at about the same bits) are measured,
each quoting its gain and its cost in bits per value, ranked by gain per extra bit.

Golden cases are built so the right answer is known; the real case is MiniLM's weights, where
per-tensor INT8 gives 25.6 dB and per channel 42.4 dB."""

import dataclasses
import math
import re

import numpy as np
import pytest

from quantcalc import Config, analyze
from quantcalc.engine import proposals
from quantcalc.engine.verdict import hints


def sqnr_and_bits(x, config):
    metrics = analyze(x, config, keep=0).metrics
    return metrics["sqnr_db"], metrics["bits_per_value"]


def quoted(text):
    """(gain in dB, cost in bits per value) a hint quotes."""
    found = re.search(r"([+−])([0-9.]+|∞) dB for ([+−])([0-9.]+) bits/value", text)
    assert found, text
    gain = math.inf if found.group(2) == "∞" else float(found.group(2))
    return ((1 if found.group(1) == "+" else -1) * gain,
            (1 if found.group(3) == "+" else -1) * float(found.group(4)))


def test_rows_of_very_different_magnitudes_rank_per_channel_first():
    """Each row's scale is 10^-3 … 1: one scale for all crushes the small rows, a scale per row
    (0.0625 bits per value on rows of 512) costs next to nothing."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((256, 512)) * np.logspace(-3, 0, 256)[:, None]).astype(np.float32)
    config = Config(bits=8)
    r = analyze(x, config)
    found = hints(x, r)
    first = found[0]
    assert first["kind"] == "structure" and first["text"].startswith("Per channel (axis 0")
    assert first["settings"] == {"granularity": "channel", "axis": 0}
    base, base_bits = sqnr_and_bits(x, config)
    per_channel, bits = sqnr_and_bits(x, dataclasses.replace(config, granularity="channel"))
    gain, extra = quoted(first["text"])
    assert gain == round(per_channel - base, 1) and gain > 8
    assert extra == float(f"{bits - base_bits:.3g}") and 0 < extra < 0.07
    # every proposal quotes its cost, and they come best gain per extra bit first
    ranked = [h for h in found if "gain_db" in h]
    assert [proposals.rank(h) for h in ranked] == sorted(
        (proposals.rank(h) for h in ranked), reverse=True)
    assert all("bits/value" in h["text"] for h in ranked)


def test_a_single_outlier_ranks_calibration_first():
    """One value 40 σ out in 4-bit per tensor: clipping it (MSE calibration) is the free win;
    groups of 128 also isolate it, but cost a quarter bit per value."""
    x = np.random.default_rng(0).standard_normal(20_000)
    x[123] = 40.0
    config = Config(bits=4)
    r = analyze(x, config)
    found = hints(x, r)
    assert found[0]["kind"] == "outlier" and "try MSE calibration" in found[0]["text"]
    gain, extra = quoted(found[0]["text"])
    mse, _ = sqnr_and_bits(x, dataclasses.replace(config, calibration="mse"))
    assert gain == round(mse - r.metrics["sqnr_db"], 1) and extra == 0
    groups = [h for h in found if h["kind"] == "structure"]
    assert groups and groups[0]["settings"] == {"granularity": "group", "group_size": 128}
    assert proposals.rank(groups[0]) < proposals.rank(found[0])
    assert not any("Per channel" in h["text"] for h in found)  # 1-D: no channels


def test_a_change_that_costs_bits_must_beat_a_bit_of_precision():
    """Gaussian rows under per-channel INT8: groups of 128 gain less than 6 dB per extra bit,
    so they are not proposed; nothing costs bits for little."""
    x = np.random.default_rng(1).standard_normal((256, 1024)).astype(np.float32)
    found = hints(x, analyze(x, Config(bits=8, granularity="channel")))
    for hint in found:
        if hint.get("extra_bits", 0) > proposals.FREE_BITS:
            assert hint["gain_db"] / hint["extra_bits"] >= proposals.DB_PER_BIT


def test_a_block_format_at_similar_bits_is_the_best_one_measured():
    x = np.random.default_rng(2).standard_t(4, (128, 512)).astype(np.float32)
    config = Config(format="q4_0")
    found = [h for h in hints(x, analyze(x, config)) if h["kind"] == "structure"]
    assert [h["settings"] for h in found] == [{"format": "q4_k"}]
    gain, extra = quoted(found[0]["text"])
    q4k, _ = sqnr_and_bits(x, Config(format="q4_k"))
    assert gain == round(q4k - sqnr_and_bits(x, config)[0], 1) and extra == 0


def test_a_large_tensor_is_sampled_and_the_hint_says_so(monkeypatch):
    monkeypatch.setattr(proposals, "WHOLE_VALUES", 1 << 16)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((1024, 256)) * np.logspace(-2, 0, 1024)[:, None]).astype(np.float32)
    x[1001, 3] = 9.0  # the extreme sets the per-tensor range: its row is in every sample
    config = Config(bits=8)
    r = analyze(x, config)
    [channel] = [h for h in hints(x, r) if h.get("settings") == {"granularity": "channel", "axis": 0}]
    assert "Measured on 257 of 1024 rows, evenly spaced, with the one holding the largest" \
        in channel["text"]
    whole = sqnr_and_bits(x, dataclasses.replace(config, granularity="channel"))[0] - \
        r.metrics["sqnr_db"]
    assert abs(quoted(channel["text"])[0] - whole) < 1.0  # the sample tells the whole's gain
    sample, _, _ = proposals.sample(x, None)
    assert sample.shape == (257, 256) and 9.0 in sample
    flat = rng.standard_normal(1 << 17)
    flat[-5] = -12.0  # in the tail past the last whole segment
    sample, _, note = proposals.sample(flat, None)
    assert sample.shape[1] == proposals.SEGMENT and -12.0 in sample and "segments" in note


@pytest.mark.parametrize("calibration", ["entropy", "mse"])
def test_a_searched_calibration_measures_proposals_on_a_few_scales(monkeypatch, calibration):
    """Entropy and MSE search once per scale: MiniLM's 384 x 384 query under entropy made
    1,537 searches (161 s, four minutes in the page) for its hints. Now the proposals see the
    rows that hold SEARCHED_SCALES scales of the proposal with the most, and say it."""
    from quantcalc.engine import ranges

    searches = []
    for name in ("_entropy_range", "_mse_search"):
        if hasattr(ranges, name):
            real = getattr(ranges, name)
            monkeypatch.setattr(ranges, name, lambda *a, _real=real, **k: (
                searches.append(1), _real(*a, **k))[1])
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((384, 384)) * np.logspace(-2, 0, 384)[:, None]).astype(np.float32)
    r = analyze(x, Config(bits=8, calibration=calibration))
    searches.clear()
    found = hints(x, r)
    # each proposal: the sampled rows' scales, and the current setting on them once
    assert len(searches) <= 2 * (proposals.SEARCHED_SCALES + 3) + 1
    sampled = [h["text"] for h in found if h["kind"] == "structure"]
    assert sampled and all("Measured on 11 of 384 rows" in text for text in sampled)
    assert searches  # the counter saw the searches (the test watches the right functions)
    assert proposals._budget(Config(bits=8, calibration=calibration), (384, 384)) == 10 * 384
    assert proposals._budget(Config(bits=8), (384, 384)) == proposals.WHOLE_VALUES
    searched = Config(bits=8, calibration=calibration)
    assert proposals._budget(searched, (20000,)) == proposals.SEGMENT  # 32 groups of 128
    assert proposals._budget(searched, (4, 0)) == proposals.WHOLE_VALUES  # nothing to divide
    assert proposals._budget(searched, (2, 3, 384)) == 3 * 3 * 384  # 9 groups a row


def test_few_values_get_no_structural_proposal():
    x = np.random.default_rng(4).standard_normal((8, 256)) * np.logspace(-3, 0, 8)[:, None]
    assert not [h for h in hints(x, analyze(x, Config())) if h["kind"] == "structure"]


@pytest.mark.slow
def test_minilm_per_channel_is_the_big_win():
    """all-MiniLM-L6-v2's encoder.layer.0.intermediate.dense.weight under INT8 per tensor:
    25.6 dB; per channel +16.8 dB for a scale per row of 384 (+0.0833 bits per value) comes
    before MSE calibration's +4.4 dB. output.dense (8.06 dB, one value 44× the 99.9th
    percentile) likewise."""
    from quantcalc.readers import checkpoint
    from tests.support import corpus
    path = corpus.file_or_skip("minilm-safetensors")
    x = checkpoint.read_tensor(str(path), "encoder.layer.0.intermediate.dense.weight")
    found = hints(x, analyze(x, Config(bits=8)))
    assert found[0]["text"] == ("Per channel (axis 0: one scale per output channel): "
                                "SQNR +16.8 dB for +0.0833 bits/value.")
    assert any("try MSE calibration — SQNR would be +4.4 dB" in h["text"] for h in found[1:])
    x = checkpoint.read_tensor(str(path), "encoder.layer.0.output.dense.weight")
    found = hints(x, analyze(x, Config(bits=8)))
    assert found[0]["settings"] == {"granularity": "channel", "axis": 0}
    assert quoted(found[0]["text"])[0] > 20
    assert {h["kind"] for h in found} >= {"structure", "outlier"}
