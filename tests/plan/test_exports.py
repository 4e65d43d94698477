"""What a plan exports is what a tool can make: llama-quantize arguments name only llama.cpp's
types and GGUF names, applied as llama-quantize applies them (the first pattern that finds a
name wins, --pure for the rest); other formats get an llm-compressor recipe where
compressed-tensors has a scheme, and the rest are said plainly to be made by no known tool.
Scans with rows that have no results (integers, already-quantized tensors) plan without a
crash, and a scan with nothing to plan says why in one line."""

import json

import pytest

from quantcalc import QuantcalcError
from quantcalc.plan import compressed_tensors, llama_quantize, naming
from quantcalc.plan import report as plan_report
from quantcalc.schema import gguf_names

Q = {"Q4_K": 4.5, "Q6_K": 6.5625, "Q8_0": 8.5, "Q5_0": 5.5}


def result(label, bits, mse):
    return {"format": label, "bits_per_value": bits, "sqnr_db": 30.0, "rel_rmse": 0.01,
            "max_abs_error": 0.1, "clip_rate": 0.0, "mse": mse, "weighted_mse": None,
            "weighted_sqnr_db": None, "error": None, "notes": []}


def row(name, shape, role="other", layer=None, results=(), dtype="F32"):
    n = 1
    for size in shape:
        n *= size
    return {"name": name, "shape": list(shape), "role": role, "layer": layer, "parameters": n,
            "dtype": dtype, "stored_bits": 32.0 if dtype == "F32" else None,
            "results": list(results)}


def measured(labels, scale=1.0):
    return [result(label, bits, scale * 2.0 ** -bits) for label, bits in labels.items()]


def doc(rows, formats, files=("model.safetensors",), model=None):
    out = {"kind": "quantcalc-scan", "version": 1, "files": [{"name": f} for f in files],
           "formats": formats, "tensors": rows, "notes": []}
    if model is not None:
        out["model"] = model
    return out


def ggml(*labels):
    return [{"label": label, "settings": {"format": label.lower()}} for label in labels]


def llama_doc(labels=Q):
    rows = [row("model.embed_tokens.weight", (512, 256), "embed", None, measured(labels))]
    for i in range(2):
        for part, role in (("self_attn.q_proj", "attn_q"), ("self_attn.o_proj", "attn_o"),
                           ("mlp.down_proj", "ffn_down")):
            rows.append(row(f"model.layers.{i}.{part}.weight", (256, 256), role, i,
                            measured(labels, 1 + i)))
        rows.append(row(f"model.layers.{i}.input_layernorm.weight", (256,), "norm", i))
    rows.append(row("lm_head.weight", (512, 256), "output", None, measured(labels, 3)))
    return doc(rows, ggml(*labels))


# ---------------------------------------------------------------- llama-quantize
def test_patterns_are_gguf_names_anchored_and_each_tensor_gets_its_planned_type():
    plan = plan_report.build(llama_doc(), target_bpw=6.0)
    lq = plan["llama_quantize"]
    assert lq["made"] and lq["base"] in Q and not lq["unmapped"]
    names = {r["gguf_name"]: r["format"] for r in plan["tensors"]
             if r["gguf_name"] and not r["kept"]}
    assert all(line.split("=")[0].endswith("$") for line in lq["tensor_types"])
    lines = [(line.rsplit("=", 1)[0], line.rsplit("=", 1)[1].upper())
             for line in lq["tensor_types"]]
    assert llama_quantize.effective(lines, lq["base"], names) == names
    for line in lq["tensor_types"]:
        kind = line.rsplit("=", 1)[1]
        assert kind.upper() in gguf_names.GGML_TYPES and " " not in line
    assert "--pure" in lq["command"] and " " not in lq["command"].split()[-2]


def test_a_shorter_name_never_gives_its_type_to_a_longer_one():
    """`output\\.weight$` finds blk.0.attn_output.weight too: that tensor gets its own pattern,
    placed first, even at the base type."""
    wanted = {"blk.0.attn_output.weight": "Q4_K", "output.weight": "Q6_K",
              "blk.0.attn_q.weight": "Q4_K"}
    lines = llama_quantize.overrides(wanted, "Q4_K")
    assert [p for p, _ in lines] == [r"blk\.0\.attn_output\.weight$", r"output\.weight$"]
    assert llama_quantize.effective(lines, "Q4_K", wanted) == wanted


def test_formats_llama_quantize_cannot_make_are_not_exported_to_it():
    formats = ggml("Q4_K", "Q8_0") + [{"label": "NVFP4", "settings": {"format": "nvfp4"}},
                                       {"label": "MXFP6 E2M3", "settings": {"format":
                                                                            "mxfp6_e2m3"}}]
    rows = [{"name": f"model.layers.{i}.mlp.up_proj.weight", "gguf_name": f"blk.{i}.ffn_up.weight",
             "shape": [64, 64], "parameters": 4096, "format": label, "kept": None}
            for i, label in enumerate(["Q4_K", "NVFP4", "MXFP6 E2M3", "NVFP4"])]
    out = llama_quantize.arguments(rows, {f["label"]: f for f in formats})
    assert not out["made"] and out["tensor_types"] == [] and out["command"] == ""
    assert "NVFP4 (2 tensors)" in out["reason"] and "MXFP6 E2M3 (1 tensor)" in out["reason"]
    assert not llama_quantize.makes("MXFP4", {"MXFP4": {"settings": {"format": "mxfp4"}}})
    assert llama_quantize.makes("IQ4_NL", {"IQ4_NL": {"settings": {"format": "iq4_nl"}}})


def test_file_names_on_the_command_line_have_no_spaces():
    assert llama_quantize.file_name("MXFP6 E2M3") == "MXFP6-E2M3"
    command = llama_quantize.command([], "Q4_K", "my model v2.gguf")
    assert "'my model v2.gguf' my-model-v2-Q4_K-plan.gguf Q4_K" in command


def test_tensors_llama_quantize_never_quantizes_stay_as_convert_writes_them():
    assert not llama_quantize.quantizes("position_embd.weight", 2)
    assert not llama_quantize.quantizes("token_types.weight", 2)
    assert not llama_quantize.quantizes("blk.0.attn_norm.weight", 2)
    assert not llama_quantize.quantizes("blk.0.ffn_gate_inp.weight", 2)
    assert llama_quantize.quantizes("blk.0.attn_output.weight", 2)
    assert not llama_quantize.quantizes("blk.0.attn_output.weight", 1)


# ---------------------------------------------------------------- llm-compressor
@pytest.mark.parametrize("settings, expected", [
    ({"format": "int", "bits": "4", "granularity": "group", "group_size": "128"},
     {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128, "symmetric": True}),
    ({"format": "int", "bits": "8", "granularity": "channel"},
     {"num_bits": 8, "type": "int", "strategy": "channel", "symmetric": True}),
    ({"format": "int", "bits": "4", "mode": "asymmetric", "granularity": "group"},
     {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 32, "symmetric": False}),
    ({"format": "fp8_e4m3"}, {"num_bits": 8, "type": "float", "strategy": "tensor"}),
    ({"format": "fp8_t128"}, {"strategy": "block", "block_structure": [128, 128]}),
    ({"format": "nvfp4"}, {"num_bits": 4, "type": "float", "strategy": "tensor_group",
                           "group_size": 16}),
    ({"format": "mxfp4"}, {"num_bits": 4, "type": "float", "strategy": "group",
                           "group_size": 32, "scale_dtype": "torch.uint8"}),
])
def test_compressed_tensors_schemes(settings, expected):
    args, _ = compressed_tensors.weights(settings)
    assert expected.items() <= args.items()


@pytest.mark.parametrize("settings, words", [
    ({"format": "mxfp6_e2m3"}, "no tool"),
    ({"format": "fp6_e2m3"}, "no tool"),
    ({"format": "nf4"}, "no tool"),
    ({"format": "fp8_e5m2"}, "no tool"),
    ({"format": "int", "bits": "6"}, "4 and 8 bits"),
    ({"format": "int", "bits": "8", "granularity": "channel", "axis": "1"}, "axis 1"),
    ({"format": "q4_k"}, "llama-quantize makes it"),
    ({"format": "no-such"}, "does not say"),
])
def test_formats_compressed_tensors_has_no_scheme_for(settings, words):
    with pytest.raises(compressed_tensors.NotMade, match=words):
        compressed_tensors.weights(settings)


def test_a_plan_of_other_formats_exports_a_recipe_and_names_what_no_tool_makes():
    labels = {"INT4 g128": 4.25, "NVFP4": 4.5, "MXFP6 E2M3": 6.25}
    formats = [{"label": "INT4 g128", "settings": {"format": "int", "bits": "4",
                                                   "granularity": "group",
                                                   "group_size": "128"}},
               {"label": "NVFP4", "settings": {"format": "nvfp4"}},
               {"label": "MXFP6 E2M3", "settings": {"format": "mxfp6_e2m3"}}]
    scan = llama_doc(labels)
    scan["formats"] = formats
    plan = plan_report.build(scan, target_bpw=5.0)
    used = {r["format"] for r in plan["tensors"] if not r["kept"]}
    assert used == set(labels), used  # the target mixes all three
    assert not plan["llama_quantize"]["made"]
    ct = plan["compressed_tensors"]
    assert ct["made"] and {g["format"] for g in ct["groups"]} == used - {"MXFP6 E2M3"}
    for group in ct["groups"]:
        assert all(not t.endswith(".weight") for t in group["targets"])
    assert plan["not_made"] == [{"format": "MXFP6 E2M3", "tensors": sum(
        1 for r in plan["tensors"] if r["format"] == "MXFP6 E2M3")}]
    text = compressed_tensors.recipe_text(plan)
    assert "config_groups:" in text and "MXFP6 E2M3" in text
    summary = plan_report.summary_text(plan)
    assert "no known tool makes MXFP6 E2M3" in summary and "llm-compressor recipe" in summary
    with pytest.raises(QuantcalcError, match="llama-quantize makes only llama.cpp's types"):
        plan_report.tensor_types_text(plan)
    assert "tensor_types" not in json.dumps(ct)


def test_a_plan_of_llama_cpp_types_only_has_no_recipe_and_says_why():
    plan = plan_report.build(llama_doc(), target_bpw=6.0)
    assert not plan["compressed_tensors"]["made"]
    assert "llama-quantize makes" in plan["compressed_tensors"]["reason"]
    assert compressed_tensors.recipe_text(plan).startswith("#")
    assert plan["not_made"] == []


# ---------------------------------------------------------------- rows without results
def test_rows_without_results_are_kept_as_stored_and_the_presets_are_priced():
    """An I64 matrix (MiniLM's position_ids) and a tensor no format took: no crash, kept as they
    are stored, every parameter counted, and the presets priced (position ids are not in the
    GGUF convert writes)."""
    scan = llama_doc()
    scan["tensors"].insert(0, row("embeddings.position_ids", (1, 512), dtype="I64"))
    scan["tensors"][0]["stored_bits"] = 64.0
    plan = plan_report.build(scan, target_bpw=6.0)
    ids = next(r for r in plan["tensors"] if r["name"] == "embeddings.position_ids")
    assert ids["format"] == "I64" and ids["bits"] == 64 * 512 and "not floats" in ids["kept"]
    assert ids["gguf_name"] is None
    assert plan["parameters"] == sum(r["parameters"] for r in scan["tensors"])
    assert {p["preset"] for p in plan["presets"]} >= {"Q4_K_M", "Q6_K"}


def quantized_doc(with_floats=False):
    rows = [row("token_embd.weight", (512, 256), "embed", dtype="Q8_0"),
            row("blk.0.attn_norm.weight", (256,), "norm", 0),
            row("blk.0.attn_q.weight", (256, 256), "attn_q", 0, dtype="Q4_1"),
            row("output.weight", (512, 256), "output", dtype="Q4_1")]
    for r, bits in zip(rows, (8.5, 32.0, 5.0, 5.0)):
        r["stored_bits"] = bits
    if with_floats:
        rows[2].update(dtype="F16", stored_bits=16.0, results=measured(Q))
    return doc(rows, ggml(*Q), files=("model.Q4_1.gguf",),
               model={"architecture": "llama", "source": "general.architecture",
                      "block_count": 1})


def test_an_already_quantized_gguf_has_nothing_to_plan_said_in_one_line():
    with pytest.raises(QuantcalcError) as caught:
        plan_report.build(quantized_doc(), target_bpw=6.0, where="smol.json")
    message = caught.value.message
    assert "\n" not in message and message.startswith("smol.json: nothing to plan")
    assert "model.Q4_1.gguf is already quantized (2 tensors in Q4_1, 1 tensor in Q8_0)" in message
    assert "--allow-requantize" in message
    assert "tick 'Allow re-quantizing'" in message  # the page user has a checkbox, not a flag


def test_a_partly_quantized_gguf_keeps_its_quantized_tensors_as_stored():
    plan = plan_report.build(quantized_doc(with_floats=True), target_bpw=7.0)
    rows = {r["name"]: r for r in plan["tensors"]}
    assert rows["token_embd.weight"]["format"] == "Q8_0"
    assert rows["token_embd.weight"]["bits"] == 8.5 * 512 * 256
    assert "already quantized as Q8_0" in rows["token_embd.weight"]["kept"]
    lq = plan["llama_quantize"]
    # a tensor kept in its own type is copied as it is: no re-quantizing to allow
    assert lq["made"] and "--allow-requantize" not in lq["command"]
    assert r"token_embd\.weight$=q8_0" in lq["tensor_types"] or lq["base"] == "Q8_0"
    assert lq["command"].split()[-3] == "model.Q4_1.gguf"
    assert plan["notes"]  # the presets the kept tensors stop say so
    assert any("not measured" in note for note in plan["notes"])


def test_the_architecture_names_the_tensors_and_an_unknown_one_is_said():
    scan = llama_doc()
    scan["model"] = {"architecture": "llama", "source": "config.json model_type llama",
                     "block_count": 2}
    names = naming.naming(scan)
    assert names["architecture"] == "llama" and names["source"].startswith("config.json")
    assert names["names"]["model.layers.1.mlp.down_proj.weight"] == "blk.1.ffn_down.weight"
    scan["model"] = {"architecture": "no-such-arch"}
    names = naming.naming(scan)
    assert names["architecture"] == "llama" and "no-such-arch is not an architecture" in \
        names["source"]
    scan["model"] = "garbage"
    assert naming.naming(scan)["architecture"] == "llama"
