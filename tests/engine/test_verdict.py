"""The verdict: headline cues at their stated thresholds, and hints quoting what they measured."""

import dataclasses
import math
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from quantcalc import Config, analyze
from quantcalc import api
from quantcalc.schema import grades
from quantcalc.schema import registry
from quantcalc.engine.verdict import headline, hints

from tests.support.command import quantcalc
from tests.formats.test_properties import SETTINGS, configs

GAUSS = np.random.default_rng(0).standard_normal(20_000)


def cues(summary):
    return {item["key"]: (item["level"], item["cue"]) for item in headline(summary)}


@pytest.mark.parametrize("db, level", [(math.inf, "exact"), (45.0, "good"), (30.0, "good"),
                                       (29.99, "fair"), (20.0, "fair"), (19.9, "poor"),
                                       (13.0, "poor"), (12.9, "bad"), (-3.0, "bad")])
def test_sqnr_grades_at_their_stated_thresholds(db, level):
    assert grades.sqnr(db)[0] == level


@pytest.mark.parametrize("rate, level", [(0.0, "good"), (0.001, "good"), (0.0011, "fair"),
                                         (0.01, "fair"), (0.0101, "poor"), (1.0, "poor")])
def test_clip_rate_grades_at_their_stated_thresholds(rate, level):
    assert grades.clip_rate(rate)[0] == level


def test_the_page_gets_every_threshold_without_infinities():
    table = grades.page_table()
    assert [row["bound"] for row in table["sqnr"]] == [30.0, 20.0, 13.0, None]
    assert [row["bound"] for row in table["clip_rate"]] == [0.0, 0.001, 0.01, None]


def test_headline_of_the_worked_example():
    x = np.array([-1.25, -0.92, -0.51, -0.10, 0, 0.14, 0.37, 0.79, 1.12, 1.46])
    summary = analyze(x, Config()).summary()
    found = cues(summary)
    assert found["sqnr_db"][0] == "good"  # 49.2 dB
    # relative RMSE is quoted as a percentage of the values' RMS: 0.346 %
    assert f"{summary['rel_rmse'] * 100:.3g}" == "0.346"
    assert found["rel_rmse"][1] == "the error's RMS is 0.346 % of the values' RMS"
    assert found["clip_rate"] == ("good", "nothing clipped")
    # 8 + 32 / 10 bits per value
    assert found["bits_per_value"][1] == "1.4× smaller than float16, 2.9× smaller than float32"


def test_headline_of_a_zero_tensor_and_of_a_sixteen_bit_format():
    assert cues(analyze(np.zeros(8), Config()).summary())["sqnr_db"][0] == "exact"
    assert cues(analyze(np.zeros(8), Config()).summary())["rel_rmse"][1] == "no error"
    summary = analyze(GAUSS, Config(bits=4)).summary()
    assert "smaller than float16" in cues(summary)["bits_per_value"][1]
    tiny = analyze(np.array([1.0, 2.0]), Config(bits=16, granularity="group", group_size=1))
    assert cues(tiny.summary())["bits_per_value"][1].startswith("no smaller than float32")
    pair = analyze(np.array([1.0, 2.0]), Config(bits=8))  # 8 + 32 / 2 = 24 bits
    assert cues(pair.summary())["bits_per_value"][1] == \
        "1.3× smaller than float32, larger than float16"


def gain_in(text, label):
    """The signed dB a hint quotes after `label`."""
    found = re.search(re.escape(label) + r"[^+−]*([+−])(∞|[0-9.]+) dB", text)
    assert found, text
    sign = 1 if found.group(1) == "+" else -1
    return sign * (math.inf if found.group(2) == "∞" else float(found.group(2)))


def sqnr(x, config):
    return analyze(x, config, keep=0).metrics["sqnr_db"]


def test_an_outlier_that_sets_the_range_gets_a_measured_proposal():
    x = GAUSS.copy()
    x[123] = 40.0
    config = Config(bits=4)
    r = analyze(x, config)
    [hint] = [h for h in hints(x, r) if h["kind"] == "outlier"]
    assert "index 123, 40)" in hint["text"]
    ratio = 40 / np.percentile(np.abs(x), 99.9, method="lower")
    assert f"{ratio:.1f}× the 99.9th percentile" in hint["text"]
    base = r.metrics["sqnr_db"]
    mse = sqnr(x, dataclasses.replace(config, calibration="mse")) - base
    pct = sqnr(x, dataclasses.replace(config, calibration="percentile", percentile=99.99)) - base
    best, other = ("MSE", "Percentile (99.99)") if mse >= pct else ("Percentile (99.99)", "MSE")
    assert f"try {best} calibration" in hint["text"]
    assert gain_in(hint["text"], "would be") == round(max(mse, pct), 1)
    assert gain_in(hint["text"], other + ":") == round(min(mse, pct), 1)


def test_no_outlier_hint_without_an_outlier_or_with_another_range_source():
    r = analyze(GAUSS, Config(bits=4))
    assert not [h for h in hints(GAUSS, r) if h["kind"] == "outlier"]
    x = GAUSS.copy()
    x[0] = 40.0
    r = analyze(x, Config(bits=4, calibration="mse"))
    assert not [h for h in hints(x, r) if h["kind"] == "outlier"]


def test_a_range_much_wider_than_the_data():
    config = Config(bits=8, calibration="custom", range_min=-50, range_max=50)
    r = analyze(GAUSS, config)
    [hint] = [h for h in hints(GAUSS, r) if h["kind"] == "wide_range"]
    width = GAUSS.max() - GAUSS.min()
    assert f"{100 / width:.1f}× wider" in hint["text"]
    minmax = sqnr(GAUSS, Config(bits=8))
    assert gain_in(hint["text"], "gives SQNR") == round(minmax - r.metrics["sqnr_db"], 1)


@pytest.mark.parametrize("calibration", [dict(calibration="custom", range_min=-1, range_max=1),
                                         dict(calibration="percentile", percentile=95)])
def test_heavy_clipping_is_weighed_against_min_max(calibration):
    config = Config(bits=8, **calibration)
    r = analyze(GAUSS, config)
    [hint] = [h for h in hints(GAUSS, r) if h["kind"] == "clipping"]
    assert hint["text"].startswith(f"{r.metrics['clip_count']} values (")
    gain = sqnr(GAUSS, Config(bits=8)) - r.metrics["sqnr_db"]
    assert gain > 1 and gain_in(hint["text"], "gives SQNR") == round(gain, 1)


def test_heavy_clipping_that_pays_for_itself_is_said_to():
    # 2 bits on a heavy-tailed tensor: clipping the tails beats min-max's coarse step
    x = np.random.default_rng(3).standard_t(2, 20_000)
    config = Config(bits=2, calibration="percentile", percentile=95)  # 1.5 % clipped
    r = analyze(x, config)
    minmax = sqnr(x, Config(bits=2))
    assert minmax < r.metrics["sqnr_db"]
    [hint] = [h for h in hints(x, r) if h["kind"] == "clipping"]
    assert f"would give {minmax:.1f} dB, no better" in hint["text"]


def test_partial_blocks_and_small_samples():
    rows = np.random.default_rng(1).standard_normal((3, 40))
    r = analyze(rows, Config(format="mxfp4"))
    [hint] = hints(rows, r)
    assert hint["kind"] == "partial_block" and "holds 8 values" in hint["text"]
    whole = np.random.default_rng(1).standard_normal((64, 64))
    # whole blocks: nothing to say of them (a block format that does better is a proposal)
    assert [h["kind"] for h in hints(whole, analyze(whole, Config(format="mxfp4")))
            if h["kind"] != "structure"] == []
    few = np.array([0.5, -1.0, 0.25])
    [hint] = hints(few, analyze(few, Config()))
    assert hint["kind"] == "scale_overhead"
    assert "take 10.7 of the 18.7 bits" in hint["text"]  # 8 + 32 / 3


@SETTINGS
@given(hnp.arrays(np.float64, st.integers(1, 60),
                  elements=st.floats(-1e6, 1e6, allow_nan=False, width=64)), configs())
def test_hints_never_fail_and_say_something(x, config):
    r = analyze(x, config)
    for hint in hints(x, r):
        assert hint["kind"] in HINT_KINDS and len(hint["text"]) > 20
        assert hint["text"] == hint["text"].strip() and "nan" not in hint["text"].lower()
    check_headline(headline(r.summary()), r.summary())


HINT_KINDS = {"outlier", "wide_range", "clipping", "partial_block", "scale_overhead",
              "structure"}


def expected_sqnr_level(db):
    """The SQNR grade by the README's table, written out independently of grades.py."""
    if db == math.inf:
        return "exact"
    return "good" if db >= 30 else "fair" if db >= 20 else "poor" if db >= 13 else "bad"


def expected_clip_level(rate):
    return "good" if rate <= 0.001 else "fair" if rate <= 0.01 else "poor"


def check_headline(items, summary):
    """The four headline items say what the summary's numbers are: keys in order, the grade of
    each number, and cues that quote the numbers themselves."""
    assert [item["key"] for item in items] == ["sqnr_db", "rel_rmse", "clip_rate", "bits_per_value"]
    by_key = {item["key"]: item for item in items}
    assert by_key["sqnr_db"]["level"] == expected_sqnr_level(summary["sqnr_db"])
    assert by_key["rel_rmse"]["level"] == by_key["sqnr_db"]["level"]
    assert by_key["clip_rate"]["level"] == expected_clip_level(summary["clip_rate"])
    assert by_key["bits_per_value"]["level"] == "info"
    rel = summary["rel_rmse"]
    if rel == 0:
        assert by_key["rel_rmse"]["cue"] == "no error"
    elif math.isfinite(rel):
        assert f"{float(f'{rel * 100:.3g}'):g} %" in by_key["rel_rmse"]["cue"]
    if summary["clip_rate"] == 0:
        assert by_key["clip_rate"]["cue"] == "nothing clipped"
    bits = summary["bits_per_value"]
    if bits < 16:
        assert f"{16 / bits:.1f}× smaller than float16" in by_key["bits_per_value"]["cue"]


@pytest.mark.parametrize("fmt", [f.name for f in registry.FORMATS if f.block_size in (None, 32)
                                 or f.family != "ggml"])
def test_every_format_gets_a_headline_and_hints_without_error(fmt):
    x = np.random.default_rng(2).standard_normal((4, 256)).astype(np.float32)
    r = analyze(x, Config(format=fmt))
    check_headline(headline(r.summary()), r.summary())
    hints(x, r)


def test_the_page_reply_and_the_command_line_carry_them():
    reply = api.analyze({"bits": 4}, {"text": "0.1, 0.2, -0.3, 5"})
    assert [item["key"] for item in reply["headline"]] == ["sqnr_db", "rel_rmse", "clip_rate",
                                                           "bits_per_value"]
    assert reply["summary"]["hints"] and "scales take" in reply["summary"]["hints"][0]
    out = quantcalc("analyze", "--values", "0.1, 0.2, -0.3, 5", "--bits", "4")
    assert out.returncode == 0
    assert "scales take" in out.stdout and "Hint" in out.stdout


def test_a_hint_that_runs_out_of_memory_never_costs_the_result(monkeypatch):
    from quantcalc.engine import verdict

    def no_memory(*args):
        raise MemoryError

    monkeypatch.setattr(verdict, "hints", no_memory)
    reply = api.analyze({"bits": 4}, {"text": "0.1, 0.2, -0.3, 5"})
    assert "error" not in reply and reply["summary"]["hints"] == []
    assert reply["summary"]["sqnr_db"] > 0


def test_a_result_with_no_signal_and_no_error_gets_the_lowest_grade_not_a_crash():
    assert grades.sqnr(math.nan) == grades.SQNR[-1][1:]
    assert grades.clip_rate(math.nan) == grades.CLIP_RATE[-1][1:]
