"""The planner on scans whose rows the K-quants do not divide (a BERT of width 384, as
all-MiniLM-L6-v2): a K-quant's result measured in llama.cpp's fallback type is a candidate of
that type, so the presets are priced without scanning the fallback types too, and llama-quantize
is told the type it will really write."""

import json
import re

import numpy as np
import pytest

from quantcalc import api
from quantcalc.plan import scan_checks
from tests.support import checkpoints as C


@pytest.fixture(scope="module")
def bert_384(tmp_path_factory):
    """A 2-layer BERT of width 384 (ffn 1536: whole super-blocks) with its config.json."""
    folder = tmp_path_factory.mktemp("bert384")
    tensors = C.bert_tensors(layers=2, hidden=384, ffn=1536, vocab=300)
    tensors = [(name.removeprefix("bert."), shape) for name, shape in tensors]
    C.write_safetensors(folder / "model.safetensors", C.make_arrays(tensors, seed=7))
    (folder / "config.json").write_text(json.dumps({"model_type": "bert",
                                                    "num_hidden_layers": 2}))
    reply = api.scan_model([str(folder / "model.safetensors")], ["q4_k", "q6_k", "q8_0"])
    assert "error" not in reply, reply
    return reply["document"]


def _plan(doc, bpw):
    reply = api.plan(doc, {"target_bpw": bpw})
    assert "error" not in reply, reply["error"]
    return reply["plan"]


def test_fallback_results_are_candidates_of_the_type_llama_quantize_writes(bert_384):
    plan = _plan(bert_384, 6.0)
    formats = {row["name"]: row["format"] for row in plan["tensors"] if not row["kept"]}
    query = formats["encoder.layer.0.attention.self.query.weight"]  # rows of 384
    assert query in {"Q5_0", "Q8_0"}  # Q4_K's and Q6_K's fallbacks: never Q4_K or Q6_K here
    assert "Q5_0" in formats.values()  # no Q5_0 was scanned: Q4_K's results measured it
    assert formats["encoder.layer.0.output.dense.weight"] in {"Q4_K", "Q6_K", "Q8_0"}
    assert not {f for n, f in formats.items() if "output.dense" not in n} & {"Q4_K", "Q6_K"}


def test_the_presets_are_priced_from_the_fallback_results(bert_384):
    plan = _plan(bert_384, 6.0)
    # Q4_K_M needs Q5_0 (its fallback here) and Q6_K's Q8_0: the scan's K-quants measured them
    assert {"Q4_K_M", "Q6_K"} <= {p["preset"] for p in plan["presets"]}
    assert "Q5_0" not in plan["presets_not_priced"]


def test_llama_quantize_is_given_the_fallback_types(bert_384):
    plan = _plan(bert_384, 5.5)
    lq = plan["llama_quantize"]
    assert lq["made"], lq["reason"]
    kinds = {line.rsplit("=", 1)[1] for line in lq["tensor_types"]} | {lq["base"].lower()}
    planned = {row["format"].lower() for row in plan["tensors"]
               if not row["kept"] and row["gguf_name"]}
    assert planned <= kinds and not any(re.search(r"\s", line) for line in lq["tensor_types"])
    assert "q5_0" in kinds  # a fallback type, which the scan measured under Q4_K


def test_a_hand_edited_measured_as_is_refused_at_its_place(bert_384):
    doc = json.loads(json.dumps(bert_384))
    doc["tensors"][0]["results"][0]["measured_as"] = "Q4_K"
    with pytest.raises(Exception) as caught:
        scan_checks.check(doc, "scan.json")
    assert "tensors[0].results[0].measured_as is 'Q4_K'" in str(caught.value)


def test_a_plan_of_an_older_scan_without_measured_as_still_works(bert_384):
    doc = json.loads(json.dumps(bert_384))
    for row in doc["tensors"]:
        for result in row["results"]:
            del result["measured_as"]
    assert _plan(doc, 6.0)["bits_per_weight"] <= 6.0
    assert np.isfinite(_plan(doc, 6.0)["total_error"])
