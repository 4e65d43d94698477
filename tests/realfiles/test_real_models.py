"""Real model files, end to end (issue 23): scan -> plan -> every export on all-MiniLM-L6-v2
(BERT safetensors with its config.json) and SmolLM2-135M (a Llama GGUF in Q4_1), through the
facade the page and the command line call.

What must hold on real files: the plan runs and counts every parameter; every
`llama-quantize --tensor-type PATTERN=TYPE` names a ggml type and finds a tensor of the GGUF that
convert_hf_to_gguf.py writes for this model (for SmolLM2, the GGUF itself; for MiniLM, the names
gguf-py's TensorNameMap gives for BERT), and no file name on the command line has a space; an
llm-compressor recipe targets modules the checkpoint has; a GGUF that is already quantized has
nothing to plan unless re-quantizing is asked for; `analyze` on a file of several tensors asks
which; a Q4_1 tensor's result names Q4_1 as its stored format.

Scans here take a few formats, and on SmolLM2 a few tensors, to keep the run short.
"""

import re
import shlex

import pytest

from quantcalc import api
from quantcalc.plan import compressed_tensors
from quantcalc.readers import checkpoint
from quantcalc.reports import exports
from tests.support import corpus
from tests.support.command import quantcalc

gguf = pytest.importorskip("gguf", reason="gguf (llama.cpp's gguf-py) is the reference here")

SMOL_TENSORS = ["token_embd.weight", "output_norm.weight"] + [
    f"blk.{i}.{part}.weight" for i in (0, 1) for part in (
        "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
        "ffn_up", "ffn_down")]


fetched = corpus.file_or_skip


@pytest.fixture(scope="module")
def minilm():
    return fetched("minilm-safetensors")


@pytest.fixture(scope="module")
def smollm2():
    return fetched("smollm2-q4_1-gguf")


def answer(reply):
    assert "error" not in reply, reply.get("error")
    return reply


def bert_gguf_names(path):
    """The GGUF names convert_hf_to_gguf.py gives MiniLM's tensors: gguf-py's TensorNameMap for
    BERT, as its map_tensor_name asks it (tensors it has no name for are not written)."""
    model = checkpoint.open_checkpoint([str(path)])
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.BERT, 6)
    mapped = {e.name: names.get_name(e.name, try_suffixes=(".weight", ".bias"))
              for e in model.tensors}
    return {hf: name for hf, name in mapped.items() if name is not None}


def check_llama_quantize(plan, gguf_tensor_names):
    """Every pattern finds a tensor of the GGUF and names a ggml type; no file name has a
    space; the patterns, applied as llama-quantize applies them, give the planned types."""
    lq = plan["llama_quantize"]
    assert lq["made"], lq["reason"]
    ggml_types = {t.name.lower() for t in gguf.GGMLQuantizationType}
    for line in lq["tensor_types"]:
        pattern, kind = line.rsplit("=", 1)
        assert kind in ggml_types and " " not in line, line
        found = [n for n in gguf_tensor_names if re.search(pattern, n)]
        assert found, f"{pattern} finds no tensor of the GGUF"
    words = shlex.split(lq["command"])
    assert words[0] == "llama-quantize" and "--pure" in words
    assert all(" " not in word for word in words[-3:])
    assert words[-1].upper() in {t.name for t in gguf.GGMLQuantizationType}
    planned = {r["gguf_name"]: r["format"].lower() for r in plan["tensors"]
               if r["gguf_name"] and not r["kept"]}
    for name, kind in planned.items():
        first = next((line.rsplit("=", 1)[1] for line in lq["tensor_types"]
                      if re.search(line.rsplit("=", 1)[0], name)), lq["base"].lower())
        assert first == kind, (name, first, kind)


def every_export(plan):
    """Each report of the plan's table through the facade, and the llm-compressor recipe."""
    made = {}
    for kind in exports.PLAN:
        reply = api.plan_export(plan, kind)
        if kind == "tensor_types" and not plan["llama_quantize"]["made"]:
            assert reply["error"]["field"] == "download"
            continue
        made[kind] = answer(reply)["bytes"]
        assert made[kind]
    made["llm_compressor"] = compressed_tensors.recipe_bytes(plan)
    return made


def test_minilm_scan_plan_and_llama_quantize(minilm):
    # Q4_K_M's types, and the blocks of 32 it falls back to where rows of 384 do not divide
    doc = answer(api.scan_model([str(minilm)], ["q8_0", "q6_k", "q5_0", "q4_k", "q4_0"]))[
        "document"]
    assert doc["model"]["architecture"] == "bert"
    assert doc["model"]["source"] == "config.json model_type bert"
    plan = answer(api.plan(doc, {"target_bpw": 6.0}))["plan"]
    model = checkpoint.open_checkpoint([str(minilm)])
    # every tensor has its row; those convert drops (the pooler, the position_ids buffer) are
    # not in the GGUF's count
    assert sum(e.count for e in model.tensors) == sum(r["parameters"] for r in plan["tensors"])
    dropped = [r for r in plan["tensors"] if r["gguf_name"] is None and "drops" in r["kept"]]
    assert {r["name"] for r in dropped} == {"pooler.dense.weight", "pooler.dense.bias",
                                            "embeddings.position_ids"}
    assert plan["parameters"] == sum(e.count for e in model.tensors) - \
        sum(r["parameters"] for r in dropped)
    assert plan["bits_per_weight"] <= 6.0
    assert {"Q4_K_M", "Q6_K"} <= {p["preset"] for p in plan["presets"]}  # position_ids and all
    rows = {r["name"]: r for r in plan["tensors"]}
    assert rows["embeddings.position_ids"]["format"] == "I64"
    assert rows["embeddings.position_embeddings.weight"]["format"] == "F16"  # never quantized
    names = bert_gguf_names(minilm)
    for name, row in rows.items():
        assert row["gguf_name"] == names.get(name), name
    check_llama_quantize(plan, set(names.values()))
    assert plan["llama_quantize"]["command"].split()[-3] == "model-f16.gguf"
    made = every_export(plan)
    assert made["tensor_types"].decode().split() == plan["llama_quantize"]["tensor_types"]
    assert made["llm_compressor"].startswith(b"#")  # llama.cpp's types: no recipe, said why


def test_minilm_other_formats_export_an_llm_compressor_recipe(minilm):
    model = checkpoint.open_checkpoint([str(minilm)])
    layer = [e.name for e in model.tensors if e.name.startswith("encoder.layer.0.")]
    doc = answer(api.scan_model([str(minilm)], [
        "nvfp4", "format=int bits=8 granularity=channel", "mxfp6_e2m3"], names=layer))["document"]
    plan = answer(api.plan(doc, {"target_bpw": 6.0}))["plan"]
    assert not plan["llama_quantize"]["made"]
    ct = plan["compressed_tensors"]
    assert ct["made"], ct["reason"]
    have = {e.name for e in model.tensors}
    for group in ct["groups"]:
        assert all(target + ".weight" in have for target in group["targets"])
        assert group["weights"]["num_bits"] in (4, 8)
    made = every_export(plan)
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the recipe as llm-compressor does")
    recipe = yaml.safe_load(made["llm_compressor"].decode())
    groups = recipe["quant_stage"]["quant_modifiers"]["QuantizationModifier"]["config_groups"]
    assert [g["targets"] for g in groups.values()] == [g["targets"] for g in ct["groups"]]
    assert [g["weights"] for g in groups.values()] == [g["weights"] for g in ct["groups"]]
    for item in plan["not_made"]:
        assert item["format"] == "MXFP6 E2M3"
        assert f"no known tool makes {item['format']}" in made["text"].decode()


def test_smollm2_is_already_quantized_so_nothing_to_plan(smollm2):
    listed = answer(api.scan_inputs([str(smollm2)]))
    assert "nothing to plan" in listed["plan_refusal"]
    doc = answer(api.scan_model([str(smollm2)], ["q8_0"], names=SMOL_TENSORS))["document"]
    assert doc["model"] == {"architecture": "llama", "block_count": 30,
                            "source": f"general.architecture of {smollm2.name}"}
    error = api.plan(doc, {"target_bpw": 6.0}, name="scan.json")["error"]
    assert error["message"].startswith(f"scan.json: nothing to plan: {smollm2.name} is already "
                                       f"quantized (")
    assert "--allow-requantize" in error["message"] and "\n" not in error["message"]
    # the scan itself says that its totals compare the formats on the float tensors only
    kept = [r for r in doc["tensors"] if not r["results"]]
    count, total = (sum(r["parameters"] for r in rows) for rows in (kept, doc["tensors"]))
    [note] = [n for n in doc["notes"] if "already quantized" in n]
    assert note.startswith(f"{count:,} of {total:,} parameters are already quantized (")
    assert "Q4_1" in note and f"on the other {total - count:,} only" in note


def test_smollm2_requantized_plan_and_every_export(smollm2):
    doc = answer(api.scan_model([str(smollm2)], ["q8_0", "q4_k", "q5_0"], names=SMOL_TENSORS,
                                allow_requantize=True))["document"]
    rows = {r["name"]: r for r in doc["tensors"]}
    assert not [n for n in doc["notes"] if "already quantized" in n]  # re-quantized: measured
    assert rows["blk.0.attn_q.weight"]["notes"][0].startswith("stored as Q4_1: measured on its "
                                                              "dequantized values")
    plan = answer(api.plan(doc, {"target_bpw": 6.0}))["plan"]
    assert plan["parameters"] == sum(r["parameters"] for r in doc["tensors"])
    gguf_tensors = [e.name for e in checkpoint.open_checkpoint([str(smollm2)]).tensors]
    assert all(r["gguf_name"] == r["name"] for r in plan["tensors"])
    check_llama_quantize(plan, gguf_tensors)
    command = plan["llama_quantize"]["command"]
    assert f"--allow-requantize --pure {smollm2.name}" in command
    every_export(plan)
    assert not plan["compressed_tensors"]["made"]  # a GGUF has no Hugging Face module names


def test_smollm2_analyze_asks_which_tensor_and_names_the_stored_format(smollm2):
    out = quantcalc("analyze", smollm2, "--format", "q8_0")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert f"{smollm2.name} holds 272 tensors: choose one with --tensor NAME (token_embd.weight," \
        in out.stderr and "(272 in all)" in out.stderr
    reply = answer(api.analyze({"format": "q8_0"}, {
        "file_path": str(smollm2), "file_name": smollm2.name, "tensor": "blk.0.attn_q.weight"}))
    summary = reply["summary"]
    assert summary["stored_format"] == "Q4_1" and summary["name"] == "blk.0.attn_q.weight"
    assert summary["notes"][0].startswith("stored as Q4_1 (5 bits per value)")
    table = quantcalc("analyze", smollm2, "--tensor", "blk.0.attn_q.weight", "--format", "q8_0")
    assert table.returncode == 0 and "stored as Q4_1" in table.stdout
    assert "blk.0.attn_q.weight" in table.stdout


def test_minilm_k_quants_fall_back_and_every_total_counts_every_tensor(minilm):
    """MiniLM's rows of 384 are no whole super-blocks: Q4_K and Q6_K are measured in Q5_0 and
    Q8_0 there, as llama-quantize writes them, and every total covers the same 22.7 M values;
    Q4_K_M is priced from those results alone (no Q5_0 scanned)."""
    model = checkpoint.open_checkpoint([str(minilm)])
    doc = answer(api.scan_model([str(minilm)], ["q4_k", "q6_k", "q8_0"]))["document"]
    rows = {r["name"]: r for r in doc["tensors"]}
    q4_k, q6_k, _ = rows["encoder.layer.0.attention.self.query.weight"]["results"]
    assert (q4_k["measured_as"], q6_k["measured_as"]) == ("Q5_0", "Q8_0")
    assert q4_k["notes"][0].startswith("fallback Q5_0 (row length 384 not a multiple of 256)")
    assert rows["encoder.layer.0.output.dense.weight"]["results"][0]["measured_as"] is None
    everything = sum(e.count for e in model.tensors)
    floats = sum(e.count for e in model.tensors if e.dtype == "F32")
    for total in doc["totals"]:
        assert total["parameters_total"] == everything
        assert total["parameters_covered"] == floats  # all but the I64 position ids
        assert total["parameters_kept"] == everything - floats
    assert doc["totals"][0]["parameters_fallback"] > 0 == doc["totals"][2]["parameters_fallback"]
    plan = answer(api.plan(doc, {"target_bpw": 6.0}))["plan"]
    assert {"Q4_K_M", "Q6_K"} <= {p["preset"] for p in plan["presets"]}
    check_llama_quantize(plan, set(bert_gguf_names(minilm).values()))


def test_smollm2_totals_count_its_quantized_tensors_at_their_stored_size(smollm2):
    model = checkpoint.open_checkpoint([str(smollm2)])
    entries = [model.get(name) for name in SMOL_TENSORS]
    doc = answer(api.scan_model([str(smollm2)], ["q8_0"], names=SMOL_TENSORS))["document"]
    total = doc["totals"][0]
    assert total["parameters_total"] == sum(e.count for e in entries)
    assert total["parameters_kept"] == sum(e.count for e in entries if e.quantized)
    assert total["parameters_covered"] == sum(e.count for e in entries if not e.quantized)
    stored = sum(e.nbytes for e in entries if e.quantized)
    assert total["bytes"] == stored + sum(e.count for e in entries if not e.quantized) * 8.5 / 8
