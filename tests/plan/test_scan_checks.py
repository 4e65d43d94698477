"""Hand-edited scans given to the planner (issue 26): every field the planner reads is checked
(type, range, finiteness, unique tensor names) and the first bad place is named on one line; the
plan never exceeds its target; --keep patterns are matched in time linear in the name; --min
takes only known roles and scanned formats."""

import copy
import json
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from quantcalc import QuantcalcError, api
from tests.support import checkpoints as C
from tests.support.command import quantcalc, refused

FORMATS = ["q4_k", "q6_k", "q8_0"]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """A valid scan document of a small Llama (norms, matrices, three llama.cpp types)."""
    path, _ = C.small_llama(tmp_path_factory.mktemp("checks"), seed=8)
    reply = api.scan_model([str(path)], FORMATS)
    assert "error" not in reply, reply
    return reply["document"]


def edited(doc, change):
    doc = copy.deepcopy(doc)
    change(doc)
    return doc


def _set(path, value):
    def change(doc):
        *head, last = path
        node = doc
        for key in head:
            node = node[key]
        node[last] = value
    return change


def _delete(path):
    def change(doc):
        *head, last = path
        node = doc
        for key in head:
            node = node[key]
        del node[last]
    return change


# (what is changed, words the one line must hold): each gave a traceback or was accepted before
VARIANTS = {
    "missing mse": (_delete(["tensors", 2, "results", 0, "mse"]),
                    ["s.json: tensors[2].results[0].mse is missing"]),
    "text parameters": (_set(["tensors", 2, "parameters"], "many"),
                        ["tensors[2].parameters is 'many'", "whole number"]),
    "no tensors": (_set(["tensors"], []), ["tensors is empty"]),
    "no formats": (_set(["formats"], []), ["formats is empty"]),
    "negative mse": (_set(["tensors", 2, "results", 0, "mse"], -1.0),
                     ["tensors[2].results[0].mse is -1.0; it must be a number ≥ 0"]),
    "negative parameters": (_set(["tensors", 2, "parameters"], -65536),
                            ["tensors[2].parameters is -65536"]),
    "zero bits": (_set(["tensors", 2, "results", 1, "bits_per_value"], 0),
                  ["tensors[2].results[1].bits_per_value is 0", "> 0"]),
    "huge parameters": (_set(["tensors", 2, "parameters"], 10 ** 400),
                        ["tensors[2].parameters is 1000"]),
    "results not a list": (_set(["tensors", 3, "results"], "x"), ["tensors[3].results is 'x'"]),
    "row not an object": (_set(["tensors", 4], 5), ["tensors[4] is 5"]),
    "unknown format": (_set(["tensors", 2, "results", 0, "format"], "Q9_Z"),
                       ["tensors[2].results[0].format is 'Q9_Z'", "Q4_K"]),
    "shape of text": (_set(["tensors", 2, "shape"], "256x256"), ["tensors[2].shape"]),
    "parameters unlike the shape": (_set(["tensors", 2, "shape"], [3, 3]),
                                    ["tensors[2].parameters", "product of its shape"]),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_hand_edited_scan_is_refused_at_its_first_bad_place(variant, scanned, tmp_path):
    change, words = VARIANTS[variant]
    path = tmp_path / "s.json"
    path.write_text(json.dumps(edited(scanned, change)))
    refused(quantcalc("plan", path, "--target-bpw", "6"), *words)


def test_nan_and_infinity_are_refused(scanned, tmp_path):
    path = tmp_path / "s.json"
    doc = edited(scanned, _set(["tensors", 2, "results", 0, "mse"], float("nan")))
    path.write_text(json.dumps(doc))  # a bare NaN, which json.loads reads
    refused(quantcalc("plan", path, "--target-bpw", "6"), "tensors[2].results[0].mse is nan")
    doc = edited(scanned, _set(["tensors", 2, "results", 0, "weighted_mse"], "inf"))
    path.write_text(json.dumps(doc))
    refused(quantcalc("plan", path, "--target-bpw", "6"), "tensors[2].results[0].weighted_mse")


def test_a_duplicated_tensor_is_refused_and_the_budget_is_kept(scanned):
    doc = edited(scanned, lambda d: d["tensors"].append(copy.deepcopy(d["tensors"][3])))
    error = api.plan(doc, {"target_bpw": 4.6})["error"]
    name = scanned["tensors"][3]["name"]
    assert error["kind"] == "input" and f"tensors[{len(scanned['tensors'])}].name" in \
        error["message"] and "tensors[3]" in error["message"] and name in error["message"]
    for target in (4.53, 4.6, 5.0, 6.0, 7.5):
        plan = api.plan(scanned, {"target_bpw": target})["plan"]
        assert plan["bits_per_weight"] <= target


# ---------------------------------------------------------------- any edit: a plan or one line
LEAVES = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70)
          | st.sampled_from([0, -1, 1, 2 ** 53 + 1, 10 ** 400, 1e308, -0.0, 1e-320])
          | st.floats(allow_nan=True, allow_infinity=True)
          | st.sampled_from(["inf", "-inf", "nan", "", "Q4_K", "attn_v", "x"])
          | st.lists(st.integers(-2, 300), max_size=3))
VALUES = st.recursive(LEAVES, lambda children: st.lists(children, max_size=3)
                      | st.dictionaries(st.sampled_from(["label", "name", "x"]), children,
                                        max_size=2), max_leaves=6)
ROW_KEYS = ["name", "role", "layer", "shape", "parameters", "results"]
RESULT_KEYS = ["format", "bits_per_value", "mse", "weighted_mse", "error"]


@st.composite
def edits(draw, doc):
    """One to three edits of the document: a key deleted or given another value, a row
    duplicated, a list emptied."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["row", "result", "format", "top", "duplicate", "empty"]))
        rows = doc.get("tensors") if isinstance(doc.get("tensors"), list) else []
        if kind in ("row", "result", "duplicate") and not rows:
            continue
        if kind == "duplicate":
            rows.append(copy.deepcopy(draw(st.sampled_from(rows))))
            continue
        if kind == "empty":
            key = draw(st.sampled_from(["tensors", "formats", "results"]))
            if key == "results" and rows and isinstance(rows[0], dict):
                rows[draw(st.integers(0, len(rows) - 1))]["results"] = []
            else:
                doc[key] = []
            continue
        if kind == "row":
            node, key = draw(st.sampled_from(rows)), draw(st.sampled_from(ROW_KEYS))
        elif kind == "result":
            row = draw(st.sampled_from(rows))
            results = row.get("results") if isinstance(row, dict) else None
            if not isinstance(results, list) or not results:
                continue
            node, key = draw(st.sampled_from(results)), draw(st.sampled_from(RESULT_KEYS))
        elif kind == "format":
            formats = doc.get("formats")
            if not isinstance(formats, list) or not formats:
                continue
            node, key = draw(st.sampled_from(formats)), "label"
        else:
            node, key = doc, draw(st.sampled_from(["formats", "tensors", "kind", "interrupted"]))
        if not isinstance(node, dict):
            continue
        if draw(st.booleans()) and key in node:
            del node[key]
        else:
            node[key] = draw(VALUES)
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), target=st.sampled_from([4.6, 5.0, 6.0, 7.0, 9.0, 30.0]))
def test_any_edit_gives_a_plan_within_budget_or_one_line(scanned, data, target):
    doc = data.draw(edits(scanned))
    reply = api.plan(doc, {"target_bpw": target})
    if "error" in reply:
        error = reply["error"]
        assert error["kind"] == "input", error.get("trace", error)
        assert "\n" not in error["message"] and error["message"]
        return
    plan = reply["plan"]
    bits = math.fsum(row["bits"] for row in plan["tensors"])
    params = sum(row["parameters"] for row in plan["tensors"])
    assert plan["bits_per_weight"] <= plan["target_bits_per_weight"] == target
    assert bits <= target * params
    names = [row["name"] for row in plan["tensors"]]
    assert len(names) == len(set(names))
    for kind in ("json", "csv", "text", "tensor_types"):  # its reports are made too
        made = api.plan_export(plan, kind)
        assert "bytes" in made, made


# ---------------------------------------------------------------- --keep and --min
def test_a_pattern_that_backtracks_for_ages_is_matched_in_linear_time(scanned, tmp_path):
    """(\\w+\\.?)+\\.bias$ against a long name: 2^60 ways to fail for Python's re. The planner's
    automaton reads each name once; the timeout only guards against a hang."""
    doc = copy.deepcopy(scanned)
    doc["tensors"][1]["name"] = "w" * 60 + "x"
    doc["tensors"][2]["name"] = "model.layers.0.attn.bias"
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    out = quantcalc("plan", path, "--target-bpw", "9", "--keep", r"(\w+\.?)+\.bias$",
                    "--json", tmp_path / "p.json", timeout=120)
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads((tmp_path / "p.json").read_text())["tensors"]}
    assert rows["model.layers.0.attn.bias"]["kept"] == "matches a keep pattern"
    assert rows["w" * 60 + "x"]["kept"] != "matches a keep pattern"


ATOMS = ["a", "b", ".", r"\.", r"\w", r"\d", r"\W", "[ab]", "[^a]", "[a-c_]", "_", "1"]


@st.composite
def patterns(draw, depth=0):
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(st.integers(0, 9 if depth < 2 else 5))
        if choice <= 3:
            part = draw(st.sampled_from(ATOMS))
        elif choice == 4:
            part = draw(st.sampled_from(["^", "$", r"\b", r"\B", r"\A", r"\Z"]))
        elif choice == 5:
            part = draw(st.sampled_from(ATOMS)) + draw(st.sampled_from(
                ["*", "+", "?", "*?", "+?", "{2}", "{1,3}", "{2,}", "{0,2}?"]))
        elif choice <= 7:
            part = "(" + draw(patterns(depth + 1)) + ")" + draw(st.sampled_from(
                ["", "*", "+", "?", "{1,2}", "+?"]))
        else:
            part = "(?:" + draw(patterns(depth + 1)) + "|" + draw(patterns(depth + 1)) + ")" \
                + draw(st.sampled_from(["", "*", "?"]))
        parts.append(part)
    return "".join(parts)


@settings(max_examples=400, deadline=None)
@given(patterns(), st.lists(st.text("ab._1\nA", max_size=12), min_size=1, max_size=6),
       st.sampled_from(["", "(?i)", "(?m)", "(?s)", "(?a)"]))
def test_the_automaton_agrees_with_python_re(pattern, names, flags):
    from quantcalc.plan import keep_patterns

    pattern = flags + pattern
    matcher = keep_patterns.compile_pattern(pattern)
    expected = re.compile(pattern)
    for name in names:
        assert matcher.search(name) == bool(expected.search(name)), (pattern, name)


@pytest.mark.parametrize("pattern, words", [
    (r"(a)\1", "backreference"),
    (r"(?=attn)", "lookahead"),
    (r"(?!attn)x", "lookahead"),
    (r"(?<=attn)x", "lookbehind"),
    (r"(x)?(?(1)a|b)", "conditional"),
    (r"(?>a+)b", "atomic"),
    (r"a*+b", "possessive"),
    (r"((\w{100}){100}){100}", "too large"),
    (r"(unclosed", "not a regular expression"),
])
def test_what_an_automaton_cannot_match_is_refused_with_the_reason(pattern, words):
    from quantcalc.plan import keep_patterns

    with pytest.raises(QuantcalcError) as err:
        keep_patterns.compile_pattern(pattern)
    assert words in err.value.message and err.value.field == "keep"
    assert "\n" not in err.value.message


def test_unknown_roles_and_formats_in_min_are_refused(scanned, tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(scanned))
    line = refused(quantcalc("plan", path, "--target-bpw", "6", "--min", "nosuchrole=Q6_K"),
                   "nosuchrole")
    for role in ("attn_v", "ffn_down", "embed", "norm"):
        assert role in line
    refused(quantcalc("plan", path, "--target-bpw", "6", "--min", "attn_v=Q9_Z"), "Q9_Z",
            "Q4_K, Q6_K, Q8_0")
    out = quantcalc("plan", path, "--target-bpw", "7", "--min", "attn_v=q8_0", "--json", "-")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["tensors"]
    assert all(r["format"] == "Q8_0" for r in rows if r["role"] == "attn_v" and not r["kept"])
