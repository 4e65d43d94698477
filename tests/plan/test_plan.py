"""Bit-budget planner: exact against brute force where the Lagrangian theorem says it must be,
never over budget, no single change left that would help; llama.cpp's presets by their rules;
the command line end to end on a generated checkpoint with outlier channels."""

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from quantcalc import QuantcalcError
from quantcalc.engine import compare
from quantcalc.formats.ggml import decode as ggml_decode
from quantcalc.formats.ggml import fallback as ggml_fallback
from quantcalc.readers import checkpoint
from quantcalc.plan import llama_presets
from quantcalc.plan import allocate as plan
from quantcalc.plan import report as plan_report
from quantcalc.scan import model_scan as scan
from quantcalc.scan import roles as tensor_roles
from tests.support.command import quantcalc as cli
from tests.support import checkpoints as C


def bits_of(type_name) -> float:
    """Bits per value of a llama.cpp type by its name (Q4_K -> 4.5), from ggml's table."""
    number = next(n for n, (name, _, _) in ggml_decode.TYPES.items() if name == type_name)
    return ggml_decode.bits_per_value(number)



def random_tensors(rng, n_tensors, n_options, kept=1):
    """Tensors whose options trade bits for error as formats do (more bits, less error, with
    some off the convex hull and some dominated)."""
    out = []
    for i in range(n_tensors):
        params = int(rng.integers(1, 50)) * 64
        bits = np.sort(rng.choice(np.arange(2.0, 9.0, 0.25), n_options, replace=False))
        error = np.exp(-0.7 * bits + rng.normal(0, 0.4, n_options)) * params
        options = [(f"F{k}", float(b * params), float(e)) for k, (b, e) in
                   enumerate(zip(bits, error))]
        out.append(plan.Tensor(f"t{i}", "ffn_up", i, params, 256, options))
    for i in range(kept):
        out.append(plan.Tensor(f"norm{i}", "norm", i, 64, 64, [], kept="F32"))
    return out


def brute_force(tensors, budget):
    free = [t for t in tensors if not t.kept]
    fixed = sum(t.kept_bits for t in tensors if t.kept)
    best = math.inf
    for combo in itertools.product(*(range(len(t.options)) for t in free)):
        bits = fixed + sum(t.options[i][1] for t, i in zip(free, combo))
        if bits <= budget:
            best = min(best, sum(t.options[i][2] for t, i in zip(free, combo)))
    return best


def lagrangian_points(tensors):
    """(bits, error) of the assignments minimising error + lambda * bits, for lambdas between
    every pair of slopes: computed over all options, without the planner's hull code."""
    free = [t for t in tensors if not t.kept]
    fixed = sum(t.kept_bits for t in tensors if t.kept)
    slopes = {0.0}
    for t in free:
        for a, b in itertools.combinations(t.options, 2):
            if a[1] != b[1]:
                slopes.add(abs((a[2] - b[2]) / (a[1] - b[1])))
    ordered = sorted(slopes)
    lambdas = [ordered[0] / 2] + [(x + y) / 2 for x, y in zip(ordered, ordered[1:])] + \
        [ordered[-1] * 2 + 1]
    points = set()
    for lam in lambdas:
        picks = [min(t.options, key=lambda o: (o[2] + lam * o[1], o[1])) for t in free]
        points.add((fixed + sum(p[1] for p in picks), sum(p[2] for p in picks)))
    return sorted(points)


@pytest.mark.parametrize("seed", range(12))
def test_exact_at_every_lagrangian_point_and_never_over_budget(seed):
    rng = np.random.default_rng(seed)
    tensors = random_tensors(rng, n_tensors=4, n_options=4)
    for bits, error in lagrangian_points(tensors):
        chosen = plan.allocate(tensors, bits)
        assert chosen.bits <= bits
        optimum = brute_force(tensors, bits)
        # the theorem: a Lagrangian minimiser is optimal for its own total
        assert math.isclose(optimum, error, rel_tol=1e-12)
        assert math.isclose(chosen.error, optimum, rel_tol=1e-12), (seed, bits)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 5), st.integers(2, 4), st.floats(0, 1))
def test_any_budget_stays_within_it_and_no_single_change_helps(seed, n, k, where):
    rng = np.random.default_rng(seed)
    tensors = random_tensors(rng, n_tensors=n, n_options=k)
    free = [t for t in tensors if not t.kept]
    fixed = sum(t.kept_bits for t in tensors if t.kept)
    low = fixed + sum(min(o[1] for o in t.options) for t in free)
    high = fixed + sum(max(o[1] for o in t.options) for t in free)
    budget = low + where * (high - low)
    chosen = plan.allocate(tensors, budget)
    assert chosen.bits <= budget
    optimum = brute_force(tensors, budget)
    assert chosen.error >= optimum * (1 - 1e-12)
    for t in free:  # the greedy fill ends where no single change fits and helps
        now = t.options[chosen.choice[t.name]]
        for option in t.options:
            assert not (option[2] < now[2] and chosen.bits - now[1] + option[1] <= budget)


def test_a_target_below_the_smallest_plan_is_refused_with_the_smallest():
    tensors = random_tensors(np.random.default_rng(0), 3, 3)
    with pytest.raises(QuantcalcError, match="below the smallest plan .* bits per weight"):
        plan.allocate(tensors, 1.0)
    assert plan.parse_size("4GB") == 4e9 and plan.parse_size("1.5 GiB") == 1.5 * 2 ** 30
    with pytest.raises(QuantcalcError, match="not a size"):
        plan.parse_size("four gigs")


def test_the_hull_drops_dominated_and_non_convex_points():
    options = [("a", 2, 10.0), ("b", 3, 9.9), ("c", 4, 4.0), ("d", 5, 5.0), ("e", 6, 1.0),
               ("f", 4, 6.0)]
    # b is above the chord a-c, d and f are dominated by c
    assert plan.hull(options) == [0, 2, 4]


def llama_rows(layers=32, hidden=4096, kv=1024, ffn=14336, vocab=128256):
    rows = []
    for name, shape in C.llama_tensors(layers, hidden, ffn, vocab, kv=kv, gguf_names=True):
        layer, role = tensor_roles.layer_and_role(name)
        rows.append({"name": name, "shape": list(shape), "role": role, "layer": layer})
    return rows


def test_q4_k_m_gives_q6_k_to_half_the_attn_v_and_ffn_down_and_to_output():
    types = llama_presets.assign(llama_rows(), "Q4_K_M")
    more = [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]  # use_more_bits(i, 32)
    for i in range(32):
        expected = "Q6_K" if i in more else "Q4_K"
        assert types[f"blk.{i}.attn_v.weight"] == expected
        assert types[f"blk.{i}.ffn_down.weight"] == expected
        for role in ("attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"):
            assert types[f"blk.{i}.{role}.weight"] == "Q4_K"
    assert types["output.weight"] == "Q6_K" and types["token_embd.weight"] == "Q4_K"
    assert "blk.0.attn_norm.weight" not in types  # norms stay F32


@pytest.mark.parametrize("preset, attn_v, ffn_down, attn_output", [
    ("Q2_K", ["Q4_K"] * 32, ["Q3_K"] * 32, ["Q3_K"] * 32),       # GQA 4: attn_v to Q4_K
    ("Q3_K_S", ["Q3_K"] * 32, ["Q3_K"] * 32, ["Q3_K"] * 32),
    ("Q3_K_M", ["Q5_K"] * 2 + ["Q4_K"] * 30, ["Q5_K"] * 2 + ["Q4_K"] * 30, ["Q4_K"] * 32),
    ("Q3_K_L", ["Q5_K"] * 32, ["Q5_K"] * 32, ["Q5_K"] * 32),
    ("Q4_K_S", ["Q5_K"] * 4 + ["Q4_K"] * 28, ["Q5_K"] * 4 + ["Q4_K"] * 28, ["Q4_K"] * 32),
    ("Q5_K_S", ["Q5_K"] * 32, ["Q5_K"] * 32, ["Q5_K"] * 32),
    ("Q6_K", ["Q6_K"] * 32, ["Q6_K"] * 32, ["Q6_K"] * 32),
])
def test_presets_follow_llama_quant_rules(preset, attn_v, ffn_down, attn_output):
    types = llama_presets.assign(llama_rows(), preset)
    assert [types[f"blk.{i}.attn_v.weight"] for i in range(32)] == attn_v
    assert [types[f"blk.{i}.ffn_down.weight"] for i in range(32)] == ffn_down
    assert [types[f"blk.{i}.attn_output.weight"] for i in range(32)] == attn_output
    assert types["output.weight"] == "Q6_K"


def test_rows_that_blocks_do_not_divide_fall_back_as_llama_cpp_does():
    rows = llama_rows(layers=2, hidden=4096, kv=1024, ffn=11008 + 64)  # 11072 % 256 = 64
    types = llama_presets.assign(rows, "Q4_K_M")
    # of 2 layers, use_more_bits picks layer 1 only: Q6_K falls back to Q8_0, Q4_K to Q5_0
    assert types["blk.1.ffn_down.weight"] == "Q8_0"
    assert types["blk.0.ffn_down.weight"] == "Q5_0"
    assert types["blk.0.ffn_up.weight"] == "Q4_K"     # its rows are 4096 long
    assert ggml_fallback.type_for("Q4_K", 11072) == "Q5_0"
    assert ggml_fallback.type_for("Q5_K", 100) == "F16"
    untied = [r for r in llama_rows(layers=2) if r["role"] != "output"]
    assert llama_presets.assign(untied, "Q4_K_M")["token_embd.weight"] == "Q6_K"  # tied


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """A Llama-style checkpoint with outlier channels, scanned under llama.cpp's types."""
    folder = tmp_path_factory.mktemp("plan")
    arrays = C.make_arrays(C.llama_tensors(layers=8, hidden=256, ffn=512, vocab=512), seed=4)
    C.write_sharded(folder, arrays, shards=2)
    doc = scan.scan(checkpoint.open_checkpoint([folder]),
                    scan.formats_from_specs(compare.PRESETS["llama.cpp"]))
    path = folder / "scan.json"
    path.write_text(json.dumps(scan_json(doc)))
    return folder, path, doc


def scan_json(doc):
    from quantcalc.reports.tables import to_jsonable
    return to_jsonable(doc)


def test_the_plan_beats_or_matches_every_preset_at_its_size(scanned):
    _, _, doc = scanned
    result = plan_report.build(doc, target_bpw=4.9)
    assert result["bits_per_weight"] <= 4.9
    priced = {p["preset"] for p in result["presets"]}
    assert {"Q4_K_M", "Q4_K_S", "Q3_K_M", "Q5_K_M", "Q6_K"} <= priced
    for p in result["presets"]:
        # the planner at the preset's size: never over it, never worse than the preset (the
        # preset's own assignment is one it could have chosen)
        assert p["plan_bits_per_weight"] <= p["bits_per_weight"] * (1 + 1e-12)
        assert p["plan_error"] <= p["preset_error"] * (1 + 1e-12), p
    curve = result["curve"]
    assert all(a["total_error"] >= b["total_error"] for a, b in zip(curve, curve[1:]))
    lines = result["llama_quantize"]["tensor_types"]
    assert all(re_line.startswith(("blk\\.", "token_embd", "output")) for re_line in lines)
    assert result["llama_quantize"]["unmapped"] == []


def test_keep_patterns_and_role_minimums_are_respected(scanned):
    _, _, doc = scanned
    result = plan_report.build(doc, target_bpw=5.0, keep=[r"layers\.0\."],
                               minimum={"attn_v": "Q6_K"})
    rows = {r["name"]: r for r in result["tensors"]}
    assert rows["model.layers.0.mlp.down_proj.weight"]["format"] == "F16"
    for name, row in rows.items():
        if row["role"] == "attn_v" and not row["kept"]:
            assert bits_of(row["format"]) >= 6.5625, (name, row["format"])
    assert result["bits_per_weight"] <= 5.0
    with pytest.raises(QuantcalcError, match="was not scanned"):
        plan_report.build(doc, target_bpw=4.0, minimum={"attn_v": "FP8"})


def test_cli_plan_writes_the_recipe_csv_pdf_and_tensor_types(scanned, tmp_path):
    _, path, _ = scanned
    out = cli("plan", path, "--target-bpw", "4.5", "--json", tmp_path / "plan.json",
              "--csv", tmp_path / "plan.csv", "--pdf", tmp_path / "plan.pdf",
              "--tensor-types", tmp_path / "types.txt")
    assert out.returncode == 0, out.stderr
    assert "bits per weight" in out.stdout and "Q4_K_M" in out.stdout
    recipe = json.loads((tmp_path / "plan.json").read_text())
    assert recipe["bits_per_weight"] <= 4.5 and recipe["kind"] == "quantcalc-plan"
    assert (tmp_path / "plan.pdf").read_bytes()[:5] == b"%PDF-"
    assert len((tmp_path / "plan.csv").read_text().splitlines()) == 1 + len(recipe["tensors"])
    types = (tmp_path / "types.txt").read_text().split()
    assert types == recipe["llama_quantize"]["tensor_types"]
    size = cli("plan", path, "--target-size", "2.5MB", "--json", tmp_path / "small.json")
    assert size.returncode == 0, size.stderr
    assert json.loads((tmp_path / "small.json").read_text())["bytes"] <= 2.5e6
    bad = cli("plan", path, "--target-bpw", "0.5")
    assert bad.returncode == 2 and "below the smallest plan" in bad.stderr
    both = cli("plan", path)
    assert both.returncode == 2 and "target" in both.stderr


def test_scan_and_plan_in_one_go_equals_scan_then_plan(scanned, tmp_path):
    folder, path, _ = scanned
    one = cli("scan", folder, "--preset", "llama.cpp", "--plan-bpw", "4.5",
              "--plan-json", tmp_path / "one.json", "--quiet")
    assert one.returncode == 0, one.stderr
    two = cli("plan", path, "--target-bpw", "4.5", "--json", tmp_path / "two.json")
    assert two.returncode == 0, two.stderr
    assert json.loads((tmp_path / "one.json").read_text()) == \
        json.loads((tmp_path / "two.json").read_text())


def test_with_an_importance_matrix_the_plan_weighs_the_error_by_it(tmp_path):
    """A GGUF checkpoint scanned with an imatrix: the K-quants search with it, the rows carry the
    weighted MSE, and the planner plans on it (a tensor missing from the matrix says so)."""
    from tests.readers.test_imatrix import write_gguf_imatrix  # by its full name: runs alone too

    arrays = C.make_arrays(C.llama_tensors(layers=2, hidden=256, ffn=512, vocab=512,
                                           gguf_names=True), seed=9)
    C.write_gguf(tmp_path / "model.gguf", arrays)
    rng = np.random.default_rng(1)
    named = [n for n, x in arrays.items() if x.ndim == 2 and n != "output.weight"]
    sums = {n: rng.uniform(0, 30, arrays[n].shape[1]).astype(np.float32) for n in named}
    write_gguf_imatrix(tmp_path / "i.gguf", sums, {n: [5] for n in named})
    out = cli("scan", tmp_path / "model.gguf", "--format", "q4_k", "--format", "q6_k",
              "--imatrix", tmp_path / "i.gguf", "--json", tmp_path / "scan.json", "--quiet",
              "--plan-bpw", "5.5", "--plan-json", tmp_path / "plan.json")
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "scan.json").read_text())
    rows = {r["name"]: r for r in doc["tensors"]}
    assert rows["blk.0.attn_q.weight"]["results"][0]["weighted_mse"] is not None
    assert any("not weighted by the importance matrix" in n
               for n in rows["output.weight"]["notes"])
    recipe = json.loads((tmp_path / "plan.json").read_text())
    assert recipe["metric"] == "importance-weighted MSE"
    chosen = {r["name"]: r for r in recipe["tensors"]}
    q = rows["blk.0.attn_q.weight"]["results"]
    picked = next(r for r in q if r["format"] == chosen["blk.0.attn_q.weight"]["format"])
    assert chosen["blk.0.attn_q.weight"]["error"] == picked["weighted_mse"] * 256 * 256
    # output.weight has no weights: planned on its plain MSE
    o = rows["output.weight"]["results"]
    picked = next(r for r in o if r["format"] == chosen["output.weight"]["format"])
    assert chosen["output.weight"]["error"] == picked["mse"] * 512 * 256


def test_sizes_are_written_in_binary_units_as_the_page_writes_them():
    from quantcalc.plan.allocate import size_text
    assert size_text(3 * 2 ** 30) == "3 GiB" and size_text(12.5 * 2 ** 20) == "12.5 MiB"
    assert size_text(2048) == "2 KiB" and size_text(100) == "100 bytes"
