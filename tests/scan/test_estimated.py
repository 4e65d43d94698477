"""Estimated errors (scan/estimated.py) against the exact analysis of the same tensor: the 95 %
interval covers the exact SQNR in at least 90 % of tensor x format x seed cases, the estimate
is unbiased over seeds, the same seed repeats exactly, and the cases a sample cannot stand for
are left to the exact measurement."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantcalc.engine import analysis
from quantcalc.scan import estimated
from quantcalc.scan.scan_formats import formats_from_specs
from quantcalc.scan.tensor_stats import TensorStats

SPECS = ["q4_k", "q8_0", "q2_k", "iq4_xs", "mxfp4", "nvfp4", "fp8_e4m3",
         "format=int,bits=4,granularity=group,group_size=64", "format=int,bits=8,granularity=channel,axis=0",
         "format=int,bits=8,mode=asymmetric", "format=int,bits=4,granularity=channel,axis=1", "fp8_t128"]


@pytest.fixture(autouse=True)
def small_tensors_are_sampled(monkeypatch):
    monkeypatch.setattr(estimated, "MIN_VALUES", 1 << 14)  # tests use small tensors
    monkeypatch.setattr(estimated, "MIN_UNITS", 256)


def tensor(seed, rows=2048, columns=256, kind="t"):
    rng = np.random.default_rng(seed)
    x = rng.standard_t(4, size=(rows, columns)) if kind == "t" else rng.standard_normal((rows, columns))
    x *= np.exp(rng.normal(0, 0.5, (rows, 1)))  # rows of different magnitudes
    x[:, seed % columns] *= 6                   # an outlier channel
    return (x * 0.02).astype(np.float32)


def stats_of(x):
    stats = TensorStats(x.shape)
    stats.add(x)
    stats.add_beyond(x)
    return stats


def exact_sqnr(x, fmt, stats):
    return analysis.analyze(x, fmt.config, keep=0, known_range=stats.segment_range).metrics


@pytest.mark.slow
def test_the_interval_covers_the_exact_sqnr_at_least_90_percent_of_the_time():
    cases, covered, misses = 0, 0, []
    for tensor_seed in range(3):
        x = tensor(tensor_seed, kind="t" if tensor_seed % 2 else "normal")
        stats = stats_of(x)
        for fmt in formats_from_specs(SPECS):
            exact = exact_sqnr(x, fmt, stats)["sqnr_db"]
            for seed in range(10):
                found = estimated.measure(fmt, x, stats, None, target_db=0.25, seed=seed)
                if found is None:
                    continue
                cases += 1
                metrics = found[0]
                inside = abs(metrics["sqnr_db"] - exact) <= metrics["sqnr_ci_db"]
                covered += inside
                if not inside:
                    misses.append((fmt.label, seed, metrics["sqnr_db"] - exact))
    assert cases >= 200
    assert covered / cases >= 0.90, misses


@pytest.mark.parametrize("spec", ["q4_k", "format=int,bits=4,granularity=group,group_size=64", "nvfp4"])
def test_the_estimate_is_unbiased_over_seeds(spec):
    x = tensor(5)
    stats = stats_of(x)
    fmt = formats_from_specs([spec])[0]
    exact = exact_sqnr(x, fmt, stats)["mse"]
    relative = [estimated.measure(fmt, x, stats, None, target_db=0.5, seed=s)[0]["mse"] / exact - 1
                for s in range(24)]
    spread = np.std(relative) / np.sqrt(len(relative))
    assert abs(np.mean(relative)) <= 3 * spread + 1e-3


def test_rows_bits_clipping_and_fraction_are_reported():
    x = tensor(2)
    stats = stats_of(x)
    fmt = formats_from_specs(["format=int,bits=4,granularity=group,group_size=64"])[0]
    exact = exact_sqnr(x, fmt, stats)
    metrics, notes = estimated.measure(fmt, x, stats, None, target_db=0.3, seed=0)
    assert metrics["bits_per_value"] == exact["bits_per_value"]
    assert 0 < metrics["sampled_fraction"] <= 0.5 and metrics["count"] == x.size
    assert 0 < metrics["sqnr_ci_db"] <= 0.3
    assert metrics["max_abs_error"] <= exact["max_abs_error"]  # the sample's largest
    assert "estimated from" in notes[0] and "±" in notes[0]


def test_the_same_seed_gives_the_same_estimate_and_another_seed_another():
    x = tensor(3)
    stats = stats_of(x)
    fmt = formats_from_specs(["q4_k"])[0]
    first = estimated.measure(fmt, x, stats, None, target_db=0.3, seed=11)[0]
    assert first == estimated.measure(fmt, x, stats, None, target_db=0.3, seed=11)[0]
    assert first["sqnr_db"] != estimated.measure(fmt, x, stats, None, target_db=0.3, seed=12)[0]["sqnr_db"]


@pytest.mark.parametrize("spec, shape, why", [
    ("q8_0", (64, 256), "small"),                                   # below MIN_VALUES
    ("format=int,bits=8,rounding=stochastic", (2048, 256), "stochastic"),
    ("format=int,bits=8,calibration=percentile,percentile=99.9", (2048, 256), "percentile"),
    ("q4_k", (512, 256), "tight"),                                  # would need half the rows
])
def test_what_a_sample_cannot_stand_for_is_left_to_the_exact_measurement(spec, shape, why):
    x = tensor(1, *shape)
    stats = stats_of(x)
    fmt = formats_from_specs([spec])[0]
    target = 1e-4 if why == "tight" else 0.1
    assert estimated.measure(fmt, x, stats, None, target_db=target, seed=0) is None


@given(seed=st.integers(0, 2**16), columns=st.sampled_from([64, 256]),
       rows=st.integers(70, 400))
@settings(max_examples=15, deadline=None)
def test_any_tensor_shape_gives_a_finite_estimate_or_the_exact_path(seed, columns, rows):
    x = tensor(seed, rows, columns)
    stats = stats_of(x)
    for fmt in formats_from_specs(["q4_0", "format=int,bits=4,granularity=channel,axis=1", "fp8_t128"]):
        found = estimated.measure(fmt, x, stats, None, target_db=0.5, seed=seed)
        if found is not None:
            metrics = found[0]
            assert np.isfinite(metrics["sqnr_db"]) and metrics["sqnr_ci_db"] <= 0.5


def checkpoint_with_a_large_tensor(folder):
    """A checkpoint whose 2048 x 160 projection is sampled and whose norm is not."""
    from tests.support.checkpoints import write_safetensors
    rng = np.random.default_rng(4)
    arrays = {"blk.0.ffn_up.weight": tensor(9, rows=2048, columns=160),
              "blk.0.attn_norm.weight": (1 + 0.1 * rng.standard_normal(160)).astype(np.float32)}
    path = folder / "model.safetensors"
    write_safetensors(path, arrays)
    return path


def scanned_json(path, out, *extra):
    from tests.support.command import quantcalc
    result = quantcalc("scan", path, "--format", "q4_0", "--format", "q8_0", "--json", out,
                       "--quiet", *extra)
    assert result.returncode == 0, result.stderr
    import json
    return json.loads(out.read_text())


@pytest.mark.slow
def test_the_command_line_estimates_reports_its_interval_and_repeats_with_its_seed(tmp_path):
    path = checkpoint_with_a_large_tensor(tmp_path)
    exact = scanned_json(path, tmp_path / "exact.json")
    first = scanned_json(path, tmp_path / "a.json", "--estimate", "0.2", "--estimate-seed", "3")
    again = scanned_json(path, tmp_path / "b.json", "--estimate", "0.2", "--estimate-seed", "3",
                         "--jobs", "2")
    assert first["estimate"] == {"db": 0.2, "seed": 3} and "estimate" not in exact
    assert first["tensors"] == again["tensors"]  # the same seed, the same rows, in any process
    sampled, norm = first["tensors"]
    for estimate, truth in zip(sampled["results"], exact["tensors"][0]["results"]):
        assert 0 < estimate["sqnr_ci_db"] <= 0.2 and 0 < estimate["sampled_fraction"] < 0.5
        assert abs(estimate["sqnr_db"] - truth["sqnr_db"]) <= 3 * estimate["sqnr_ci_db"]
        assert truth["sqnr_ci_db"] == 0.0 and truth["sampled_fraction"] == 1.0
    assert norm["results"] == exact["tensors"][1]["results"]  # 1-D: measured exactly
    assert all(total["total_error_ci"] > 0 for total in first["totals"])
    assert all(total["total_error_ci"] == 0 for total in exact["totals"])


@pytest.mark.slow
def test_a_target_that_needs_most_rows_gives_the_exact_digits(tmp_path):
    path = checkpoint_with_a_large_tensor(tmp_path)
    exact = scanned_json(path, tmp_path / "exact.json")
    tight = scanned_json(path, tmp_path / "tight.json", "--estimate", "0.001")
    assert tight["tensors"] == exact["tensors"] and tight["totals"] == exact["totals"]


@pytest.mark.parametrize("value, words", [("0", "between 0.001 and 10"), ("nan", "between"),
                                          ("99", "between 0.001 and 10")])
def test_a_bad_half_width_is_refused_in_one_line(tmp_path, value, words):
    from tests.support.command import quantcalc, refused
    path = checkpoint_with_a_large_tensor(tmp_path)
    refused(quantcalc("scan", path, "--format", "q8_0", "--estimate", value), words)


@pytest.mark.slow
def test_a_streamed_tensor_reads_only_its_sample_and_gives_the_same_estimate(tmp_path):
    path = checkpoint_with_a_large_tensor(tmp_path)
    whole = scanned_json(path, tmp_path / "whole.json", "--estimate", "0.2",
                         "--estimate-seed", "3")
    streamed = scanned_json(path, tmp_path / "streamed.json", "--estimate", "0.2",
                            "--estimate-seed", "3", "--memory-values", "40000")
    assert streamed["tensors"][0]["streamed"] and not whole["tensors"][0]["streamed"]
    for a, b in zip(whole["tensors"][0]["results"], streamed["tensors"][0]["results"]):
        assert a["sampled_fraction"] == b["sampled_fraction"] < 0.5  # the same rows
        assert a["sqnr_db"] == pytest.approx(b["sqnr_db"], abs=1e-9)  # moments summed by slab
        assert a["sqnr_ci_db"] == pytest.approx(b["sqnr_ci_db"], rel=1e-9)


@pytest.mark.slow
def test_a_plan_of_an_estimated_scan_says_so_and_carries_its_interval(tmp_path):
    import json

    from tests.support.command import quantcalc
    path = checkpoint_with_a_large_tensor(tmp_path)
    scanned_json(path, tmp_path / "est.json", "--estimate", "0.2", "--estimate-seed", "3")
    scanned_json(path, tmp_path / "exact.json")
    plans = {}
    for kind in ("est", "exact"):
        out = quantcalc("plan", tmp_path / f"{kind}.json", "--target-bpw", "6", "--json", "-")
        assert out.returncode == 0, out.stderr
        plans[kind] = json.loads(out.stdout)
    estimated_plan, exact_plan = plans["est"], plans["exact"]
    assert exact_plan["total_error_ci"] == 0.0
    assert 0 < estimated_plan["total_error_ci"] < estimated_plan["total_error"]
    assert abs(estimated_plan["total_error"] - exact_plan["total_error"]) <= \
        2 * estimated_plan["total_error_ci"]
    assert any("planned on estimated errors" in note for note in estimated_plan["notes"])
