"""Safetensors tensors stored quantized (issue 23, item 5 beyond GGUF): FP8 with its scales
(DeepSeek-V3 / Qwen3-FP8 `weight_scale_inv` per 128x128 tile, compressed-tensors `weight_scale`)
is decoded and its result names the stored format and says its error is that of re-quantizing
the dequantized values; packed int4 (GPTQ `qweight`, compressed-tensors `weight_packed`) is named
and refused in one line, never analysed as raw integers; a scan names both and counts them at
their stored size. The file's header is opened once per analysis."""

import json
import struct

import numpy as np
import pytest

from quantcalc import api
from quantcalc.engine import analysis
from quantcalc.engine.config import Config
from quantcalc.readers import checkpoint
from quantcalc.scan import model_scan as scan
from tests.support.command import quantcalc, refused

ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes is the FP8 reference here")

DOWN = "model.layers.0.mlp.down_proj."
UP = "model.layers.0.mlp.up_proj."
GATE = "model.layers.0.mlp.gate_proj."
QKV = "model.layers.0.self_attn.q_proj."


def write(path, tensors):
    """A .safetensors file of (name, dtype, shape, raw bytes)."""
    header, blobs, offset = {}, [], 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def fp8(values, kind=ml_dtypes.float8_e4m3fn):
    return np.clip(np.asarray(values, np.float32), -400, 400).astype(kind)  # no NaN codes


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A checkpoint with FP8 + 128x128 scale_inv (300 x 288: partial tiles), FP8 E5M2 with a
    per-channel BF16 weight_scale, FP8 with one scale, GPTQ int4 and a compressed-tensors
    weight_packed, beside a plain F32 norm."""
    rng = np.random.default_rng(11)
    down = fp8(rng.standard_normal((300, 288)) * 100)
    scale_inv = (rng.random((3, 3)) * 1e-3 + 1e-4).astype(np.float32)
    up = fp8(rng.standard_normal((64, 128)) * 10, ml_dtypes.float8_e5m2)
    up_scale = (rng.random((64, 1)) * 0.01 + 0.001).astype(ml_dtypes.bfloat16)
    gate = fp8(rng.standard_normal((64, 128)))
    gate_scale = np.array([0.02], np.float32)
    tensors = [
        (DOWN + "weight", "F8_E4M3", down.shape, down.tobytes()),
        (DOWN + "weight_scale_inv", "F32", scale_inv.shape, scale_inv.tobytes()),
        (UP + "weight", "F8_E5M2", up.shape, up.tobytes()),
        (UP + "weight_scale", "BF16", up_scale.shape, up_scale.tobytes()),
        (GATE + "weight", "F8_E4M3", gate.shape, gate.tobytes()),
        (GATE + "weight_scale", "F32", gate_scale.shape, gate_scale.tobytes()),
        (QKV + "qweight", "I32", (16, 128), rng.integers(-2**31, 2**31, (16, 128), np.int64)
         .astype("<i4").tobytes()),
        (QKV + "scales", "F16", (1, 128), np.ones((1, 128), "<f2").tobytes()),
        (QKV + "qzeros", "I32", (1, 16), np.zeros((1, 16), "<i4").tobytes()),
        (QKV + "g_idx", "I32", (128,), np.zeros(128, "<i4").tobytes()),
        ("model.layers.0.self_attn.o_proj.weight_packed", "I32", (128, 16),
         np.zeros((128, 16), "<i4").tobytes()),
        ("model.layers.0.self_attn.o_proj.weight_scale", "F16", (128, 1),
         np.ones((128, 1), "<f2").tobytes()),
        ("model.norm.weight", "F32", (128,), np.ones(128, "<f4").tobytes()),
    ]
    path = tmp_path_factory.mktemp("stored") / "model.safetensors"
    write(path, tensors)
    tiles = np.repeat(np.repeat(scale_inv, 128, 0), 128, 1)[:300, :288]
    reference = {
        DOWN + "weight": down.astype(np.float32) * tiles,
        UP + "weight": up.astype(np.float32) * up_scale.astype(np.float32),
        GATE + "weight": gate.astype(np.float32) * np.float32(0.02)}
    return path, reference


def source(path, tensor):
    return {"file_path": str(path), "file_name": path.name, "tensor": tensor}


@pytest.mark.parametrize("name, label", [
    (DOWN + "weight", "FP8 E4M3 x 128x128 block scales (weight_scale_inv)"),
    (UP + "weight", "FP8 E5M2 x one scale per output channel (weight_scale)"),
    (GATE + "weight", "FP8 E4M3 x one scale per tensor (weight_scale)")])
def test_fp8_with_scales_is_decoded_and_named(stored, name, label):
    path, reference = stored
    values = checkpoint.read_tensor(path, name)
    np.testing.assert_array_equal(values, reference[name])
    reply = api.analyze({"format": "q8_0"}, source(path, name))
    summary = reply["summary"]
    assert summary["stored_format"] == label
    assert summary["notes"][0].startswith(f"stored as {label} (")
    assert "the error shown is that of re-quantizing them, not the error against the original" \
        in summary["notes"][0]
    expected = analysis.analyze(reference[name], Config.from_dict({"format": "q8_0"}), keep=0)
    assert summary["sqnr_db"] == expected.metrics["sqnr_db"]
    assert summary["data_max"] == float(reference[name].max())
    # the page's scanned-checkpoint source says the same
    scanned = api.analyze({"format": "q8_0"}, {"checkpoint": [str(path)], "tensor": name})
    assert scanned["summary"]["stored_format"] == label
    assert scanned["summary"]["sqnr_db"] == summary["sqnr_db"]


def test_stored_bits_count_the_scales(stored):
    path, _ = stored
    reply = api.analyze({"format": "q8_0"}, source(path, DOWN + "weight"))
    bits = 8 * (300 * 288 + 9 * 4) / (300 * 288)
    assert f"({bits:g} bits per value)" in reply["summary"]["notes"][0]


@pytest.mark.parametrize("name, words", [
    (QKV + "qweight", ("GPTQ/AWQ packed integers", "not decode", "raw integers")),
    ("model.layers.0.self_attn.o_proj.weight_packed", ("compressed-tensors pack-quantized",
                                                       "not decode")),
    (QKV + "qzeros", ("is not weights", "qzeros of", "GPTQ/AWQ"))])
def test_packed_int4_is_named_and_refused_in_one_line(stored, name, words):
    path, _ = stored
    reply = api.analyze({"format": "q8_0"}, source(path, name))
    message = reply["error"]["message"]
    assert "\n" not in message and all(w in message for w in words), message
    out = quantcalc("analyze", path, "--tensor", name, "--format", "q8_0")
    refused(out, *words)


def test_a_scan_names_them_and_counts_them_at_their_stored_size(stored):
    path, reference = stored
    model = checkpoint.open_checkpoint([path])
    doc = scan.scan(model, scan.formats_from_specs(["q8_0"]))
    rows = {row["name"]: row for row in doc["tensors"]}
    down = rows[DOWN + "weight"]
    assert down["stored_format"] == "FP8 E4M3 x 128x128 block scales (weight_scale_inv)"
    assert down["results"] == [] and down["original"] is False
    assert down["data_max"] == float(reference[DOWN + "weight"].max())  # decoded statistics
    assert any(n.startswith("already quantized as FP8 E4M3") for n in down["notes"])
    scale = rows[DOWN + "weight_scale_inv"]
    assert scale["results"] == [] and scale["stored_format"].startswith("scales of " + DOWN)
    qweight = rows[QKV + "qweight"]
    assert qweight["results"] == [] and qweight["data_max"] is None
    assert qweight["stored_format"] == "GPTQ/AWQ packed integers (int32 qweight)"
    assert rows["model.norm.weight"]["results"][0]["error"] is None
    total = doc["totals"][0]
    assert total["parameters_covered"] == 128
    assert total["parameters_total"] == sum(e.count for e in model.tensors)
    stored_bytes = sum(e.nbytes for e in model.tensors if e.name != "model.norm.weight")
    assert total["bytes"] == stored_bytes + 128 * 8.5 / 8


def test_the_header_is_opened_once_per_analysis(stored, monkeypatch):
    path, _ = stored
    opened = []
    real = checkpoint.open_checkpoint

    def counting(paths):
        opened.append(paths)
        return real(paths)

    monkeypatch.setattr(checkpoint, "open_checkpoint", counting)
    reply = api.analyze({"format": "q8_0"}, source(path, DOWN + "weight"))
    assert "error" not in reply and len(opened) == 1


@pytest.mark.parametrize("kind", ["gptq", "compressed"])
def test_packed_int4_with_its_quantization_config_is_decoded_and_named(tmp_path, kind):
    """With config.json's quantization_config beside it (as GPTQ and llm-compressor write
    them), a packed layer is decoded with its scales (readers/stored_layers.py): its values
    are the format's own dequantization, and the result names the stored format."""
    pytest.importorskip("torch")
    pytest.importorskip("compressed_tensors")
    from tests.support import audit_stored
    arrays = audit_stored.original(tmp_path / "hf")
    folder = tmp_path / "q"
    if kind == "gptq":
        reference = audit_stored.gptq(folder, arrays)
        name = "model.layers.0.self_attn.q_proj.qweight"
    else:
        reference = audit_stored.compressed(folder, arrays, {"group_0": (["Linear"], dict(
            num_bits=4, type="int", symmetric=True, strategy="group", group_size=128))})
        name = "model.layers.0.self_attn.q_proj.weight_packed"
    path = folder / "model.safetensors"
    reply = api.analyze({"format": "q8_0"}, source(path, name))
    assert "error" not in reply, reply.get("error")
    summary = reply["summary"]
    assert summary["stored_format"] and "bits per value" in summary["notes"][0]
    expected = api.analyze({"format": "q8_0"}, {
        "text": ",".join(repr(float(v)) for v in np.asarray(
            reference["model.layers.0.self_attn.q_proj.weight"], np.float32).reshape(-1))})
    # the libraries' own dequantization rounds GPTQ's products to fp16 (quantcalc keeps the
    # exact float32 product, tests/formats/stored): the same error within 0.02 dB
    assert summary["sqnr_db"] == pytest.approx(expected["summary"]["sqnr_db"],
                                               abs=0.02 if kind == "gptq" else 1e-6)
