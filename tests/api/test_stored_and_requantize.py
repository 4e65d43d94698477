"""What a file already is, through the facade: a tensor stored quantized names its stored format
in its result (a note and the summary's stored_format) and in a comparison; a scan records the
model's architecture (general.architecture, config.json) for the plan's GGUF names; a checkpoint
whose matrices are all quantized has nothing to plan, said before any work, unless the scan is
asked to measure their dequantized values (allow_requantize), in one process or several."""

import json

import numpy as np
import pytest

from quantcalc import api
from tests.support import checkpoints as C

gguf = pytest.importorskip("gguf", reason="gguf (llama.cpp's gguf-py) writes the test files")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stored")
    arrays = C.make_arrays(C.llama_tensors(layers=1, hidden=256, ffn=512, vocab=256,
                                           gguf_names=True), seed=5)
    matrices = [n for n, x in arrays.items() if x.ndim == 2]
    C.write_gguf(folder / "quantized.gguf", arrays,
                 {n: "Q8_0" if n == "token_embd.weight" else "Q4_0" for n in matrices})
    C.write_gguf(folder / "mixed.gguf", arrays, {"blk.0.attn_q.weight": "Q4_0"})
    hf = folder / "hf"
    hf.mkdir()
    C.write_safetensors(hf / "model.safetensors", C.make_arrays(C.llama_tensors(
        layers=1, hidden=256, ffn=512, vocab=256), seed=5))
    (hf / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 1,
                                                "architectures": ["LlamaForCausalLM"]}))
    return folder


def source(path, tensor):
    return {"file_path": str(path), "file_name": path.name, "tensor": tensor}


def test_a_quantized_tensor_names_its_stored_format(files):
    reply = api.analyze({"format": "q8_0"}, source(files / "mixed.gguf", "blk.0.attn_q.weight"))
    summary = reply["summary"]
    assert summary["stored_format"] == "Q4_0"
    assert list(summary).index("stored_format") == list(summary).index("dtype") + 1
    assert summary["notes"][0].startswith("stored as Q4_0 (4.5 bits per value): these are its "
                                          "dequantized values")
    plain = api.analyze({"format": "q8_0"}, source(files / "mixed.gguf", "blk.0.attn_k.weight"))
    assert plain["summary"]["stored_format"] is None
    assert not any(n.startswith("stored as") for n in plain["summary"]["notes"])
    table = api.export({"format": "q8_0"}, source(files / "mixed.gguf", "blk.0.attn_q.weight"),
                       "text")["bytes"].decode()
    assert "stored as Q4_0" in table
    compared = api.compare(source(files / "quantized.gguf", "token_embd.weight"), ["format=q4_0"],
                           sweep=False)
    assert any(n.startswith("stored as Q8_0") for n in compared["notes"])


def test_nothing_to_plan_is_known_from_the_headers(files):
    listed = api.scan_inputs([str(files / "quantized.gguf")])
    assert listed["quantized"] == listed["tensors"] - 3  # the norms are F32
    assert listed["plan_refusal"].startswith("nothing to plan: quantized.gguf is already "
                                             "quantized (8 tensors in Q4_0, 1 tensor in Q8_0)")
    assert api.scan_inputs([str(files / "mixed.gguf")])["plan_refusal"] is None
    scanned = api.scan_model([str(files / "quantized.gguf")], ["q8_0"])["document"]
    error = api.plan(scanned, {"target_bpw": 6}, name="scan.json")["error"]
    assert error["field"] == "scan" and error["message"].startswith("scan.json: nothing to plan")


@pytest.mark.parametrize("jobs", [1, 2])
def test_allow_requantize_measures_the_dequantized_values(files, jobs):
    path = str(files / "quantized.gguf")
    reply = api.scan_model([path], ["q8_0", "q4_k"], jobs=jobs, allow_requantize=True)
    doc = reply["document"]
    assert doc["allow_requantize"] is True
    assert doc["model"] == {"architecture": "llama",
                            "source": "general.architecture of quantized.gguf",
                            "block_count": None}
    rows = {r["name"]: r for r in doc["tensors"]}
    q = rows["blk.0.attn_q.weight"]
    assert q["dtype"] == "Q4_0" and q["original"] is False
    assert [r["error"] for r in q["results"]] == [None, None]
    assert q["notes"][0].startswith("stored as Q4_0: measured on its dequantized values")
    # the same numbers as the calculator on the same dequantized values
    alone = api.analyze({"format": "q4_k"}, source(files / "quantized.gguf",
                                                    "blk.0.attn_q.weight"))
    assert q["results"][1]["sqnr_db"] == alone["summary"]["sqnr_db"]
    plan = api.plan(doc, {"target_bpw": 6.0})["plan"]
    assert "--allow-requantize" in plan["llama_quantize"]["command"]
    assert plan["llama_quantize"]["command"].split()[-3] == "quantized.gguf"
    # the page scans in parts and joins the rows: the same document, its notes included
    joined = api.scan_document([path], ["q8_0", "q4_k"], doc["tensors"],
                               allow_requantize=True)["document"]
    assert joined["notes"] == doc["notes"] and any(
        n.startswith("--allow-requantize:") for n in doc["notes"])


def test_a_scan_records_the_architecture_from_config_json(files):
    doc = api.scan_model([str(files / "hf")], ["q8_0"])["document"]
    assert doc["model"] == {"architecture": "llama", "source": "config.json model_type llama",
                            "block_count": 1}
    plan = api.plan(doc, {"target_bpw": 9})["plan"]
    assert plan["gguf"]["architecture"] == "llama"
    names = {r["name"]: r["gguf_name"] for r in plan["tensors"]}
    assert names["model.layers.0.self_attn.v_proj.weight"] == "blk.0.attn_v.weight"
    assert names["lm_head.weight"] == "output.weight"
    merged = api.scan_document([str(files / "hf")], ["q8_0"], doc["tensors"])["document"]
    assert merged["model"] == doc["model"]


def test_a_config_json_that_says_nothing_usable_falls_back_on_the_names(files, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    arrays = C.make_arrays(C.llama_tensors(layers=1, hidden=256, ffn=512, vocab=256), seed=1)
    C.write_safetensors(folder / "model.safetensors", arrays)
    for text in ("{not json", "[1, 2]", json.dumps({"model_type": 7})):
        (folder / "config.json").write_text(text)
        doc = api.scan_model([str(folder)], ["q8_0"], names=["lm_head.weight"])["document"]
        assert doc["model"]["architecture"] is None
    assert np.isfinite(doc["tensors"][0]["results"][0]["sqnr_db"])
