"""q, k and v fused on one side and separate on the other (audit/fused.py): the fused tensor is
cut into its q, k and v rows and each part gets its own SQNR, checked against the SQNR of the
same rows computed here; a GGUF's attn_qkv (ggml's Q8_0 of the permuted q, k and v stacked, as
a converter that fuses would write it) against a Hugging Face original with three projections;
and shapes that do not add up stay listed with the reason."""

import json

import numpy as np
import pytest

from quantcalc import api
from tests.support import audit_pairs as ap, checkpoints

gguf = pytest.importorskip("gguf")

PREFIX = "model.layers.0.self_attn."
SHAPES = {"q_proj": (256, 256), "k_proj": (128, 256), "v_proj": (128, 256)}


def separate(seed=0):
    rng = np.random.default_rng(seed)
    return {PREFIX + f"{k}.weight": (rng.standard_normal(s) * 0.05).astype(np.float32)
            for k, s in SHAPES.items()}


def write(folder, arrays, dtype="F32"):
    folder.mkdir(parents=True, exist_ok=True)
    checkpoints.write_safetensors(folder / "model.safetensors", arrays, dtype)
    (folder / "config.json").write_text(json.dumps({"model_type": "phi3"}))


def fused_of(arrays):
    return {PREFIX + "qkv_proj.weight": np.concatenate(
        [arrays[PREFIX + f"{k}.weight"] for k in SHAPES])}


def audit(tmp_path):
    reply = api.audit_model([str(tmp_path / "original")], [str(tmp_path / "quantized")])
    assert "error" not in reply, reply
    return {r["name"]: r for r in reply["document"]["tensors"]}


def f16(x):
    return x.astype(np.float16).astype(np.float32)


def test_a_fused_quantized_tensor_is_cut_into_q_k_v(tmp_path):
    arrays = separate()
    write(tmp_path / "original", arrays)
    write(tmp_path / "quantized", fused_of(arrays), "F16")
    rows = audit(tmp_path)
    fused = PREFIX + "qkv_proj.weight"
    assert set(rows) == {f"{fused}[{p}]" for p in "qkv"}
    for part, key in zip("qkv", SHAPES):
        row = rows[f"{fused}[{part}]"]
        x = arrays[PREFIX + f"{key}.weight"]
        assert row["original_name"] == PREFIX + f"{key}.weight" and row["reason"] is None
        assert row["shape"] == list(x.shape)
        assert row["sqnr_db"] == pytest.approx(ap.sqnr_db(x, f16(x)), abs=1e-9)


def test_a_fused_original_is_cut_for_separate_quantized_tensors(tmp_path):
    arrays = separate(1)
    write(tmp_path / "original", fused_of(arrays))
    write(tmp_path / "quantized", arrays, "F16")
    rows = audit(tmp_path)
    assert set(rows) == set(arrays)
    for part, key in zip("qkv", SHAPES):
        row = rows[PREFIX + f"{key}.weight"]
        x = arrays[PREFIX + f"{key}.weight"]
        assert row["original_name"] == PREFIX + f"qkv_proj.weight[{part}]"
        assert row["sqnr_db"] == pytest.approx(ap.sqnr_db(x, f16(x)), abs=1e-9)


def test_shapes_that_do_not_add_up_stay_listed(tmp_path):
    arrays = separate(2)
    write(tmp_path / "original", arrays)
    fused = fused_of(arrays)
    fused[PREFIX + "qkv_proj.weight"] = fused[PREFIX + "qkv_proj.weight"][:500]
    write(tmp_path / "quantized", fused, "F16")
    rows = audit(tmp_path)
    row = rows[PREFIX + "qkv_proj.weight"]
    assert row["sqnr_db"] is None and "fused" in row["reason"]


def test_gguf_attn_qkv_against_separate_hugging_face_projections(tmp_path):
    arrays, config = ap.hf_llama(tmp_path / "original", layers=1)
    tensors = ap.gguf_tensors(arrays, config)  # q and k permuted as the converter does
    names = [f"blk.0.attn_{p}.weight" for p in "qkv"]
    tensors["blk.0.attn_qkv.weight"] = np.concatenate([tensors.pop(n) for n in names])
    path = tmp_path / "quantized" / "model.gguf"
    path.parent.mkdir()
    ap.write_gguf(path, tensors, config, {"blk.0.attn_qkv.weight": "q8_0"})
    reference = ap.dequantized(path)["blk.0.attn_qkv.weight"]
    rows = audit(tmp_path)
    first = 0
    for part, key in zip("qkv", ("q_proj", "k_proj", "v_proj")):
        row = rows[f"blk.0.attn_qkv.weight[{part}]"]
        x = arrays[f"model.layers.0.self_attn.{key}.weight"]
        got = reference[first:first + x.shape[0]]
        first += x.shape[0]
        expected = ap.sqnr_db(tensors_part(x, part, config), got)
        assert row["reason"] is None and row["stored_format"] == "Q8_0"
        assert row["sqnr_db"] == pytest.approx(expected, abs=1e-9), part
        assert row["sqnr_db"] > 30  # the rope permutation undone: not the -3 dB of a mismatch


def tensors_part(x, part, config):
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    if part == "q":
        return ap.permute(x, heads, heads)
    if part == "k":
        return ap.permute(x, heads, kv)
    return x
