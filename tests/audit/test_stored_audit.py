"""The audit of quantized safetensors checkpoints against their originals, each made with its
format's own tools (tests/support/audit_stored.py): FP8 block-scaled (DeepSeek-V3's layout,
ml_dtypes casts), compressed-tensors 0.20.1 (its quantizer and compressors, several config
groups chosen by targets and an ignore list), GPTQ and AWQ (AutoGPTQ's and AutoAWQ's packing).
Every SQNR is checked against the SQNR of the tools' own dequantization of the same file, read
in slabs small enough that every layer spans several."""

import numpy as np
import pytest

from quantcalc import api
from tests.support import audit_pairs as ap

st = pytest.importorskip("tests.support.audit_stored", reason="torch runs the formats' tools")
pytest.importorskip("compressed_tensors", reason="compressed-tensors is the reference")

SLAB = 1 << 13  # 32 rows of 256: every layer is read in several slabs


def audited(tmp_path, reference, arrays, exact=True):
    reply = api.audit_model([str(tmp_path / "original")], [str(tmp_path / "quantized")],
                            slab_values=SLAB)
    assert "error" not in reply, reply
    rows = {r["name"]: r for r in reply["document"]["tensors"]}
    assert set(rows) == set(arrays)
    for name, x in arrays.items():
        row = rows[name]
        assert row["reason"] is None and row["side"] == "both", row
        if name in reference:
            expected = ap.sqnr_db(x, reference[name])
            assert row["sqnr_db"] == pytest.approx(expected, abs=1e-9 if exact else 0.02), name
            # made by the formats' own min-max tools: reproduced, or null where not remade
            # (GPTQ, AWQ, NVFP4; tests/audit/test_reproduce_stored.py)
            assert row["reproduced"] is not False and row["bits_per_value"] < 16
        else:  # kept in float32 on the quantized side
            assert row["sqnr_db"] == np.inf and row["stored_format"] == "F32"
    return rows, reply["document"]


def test_fp8_block_scaled_deepseek(tmp_path):
    arrays = st.original(tmp_path / "original")
    reference = st.fp8_block(tmp_path / "quantized", arrays)
    rows, _ = audited(tmp_path, reference, arrays)
    row = rows["model.layers.0.mlp.gate_proj.weight"]  # 384 rows: three tiles, the last short
    assert row["stored_format"] == "FP8 E4M3 128x128 blocks"
    assert row["bytes"] == 384 * 256 + 3 * 2 * 4 and 25 < row["sqnr_db"] < 40


def test_fp8_tiles_without_a_config_follow_from_the_shapes(tmp_path):
    arrays = st.original(tmp_path / "original")
    reference = st.fp8_block(tmp_path / "quantized", arrays)
    (tmp_path / "quantized" / "config.json").unlink()
    rows, _ = audited(tmp_path, reference, arrays)
    assert rows["model.layers.0.mlp.down_proj.weight"]["stored_format"] == "FP8 E4M3 blocks"


W4A16 = dict(num_bits=4, type="int", symmetric=True, strategy="group", group_size=128)
W4_ASYM = dict(num_bits=4, type="int", symmetric=False, strategy="group", group_size=64)
W8_CHANNEL = dict(num_bits=8, type="int", symmetric=False, strategy="channel")


@pytest.mark.parametrize("args", [W4A16, W4_ASYM, W8_CHANNEL], ids=["w4a16", "asym", "w8"])
def test_compressed_tensors_pack_quantized(tmp_path, args):
    arrays = st.original(tmp_path / "original")
    reference = st.compressed(tmp_path / "quantized", arrays, {"group_0": (["Linear"], args)})
    rows, _ = audited(tmp_path, reference, arrays)
    label = rows["model.layers.0.self_attn.q_proj.weight"]["stored_format"]
    assert label.startswith(f"int{args['num_bits']}")
    assert ("asymmetric" in label) == (not args["symmetric"])


def test_compressed_tensors_groups_by_targets_and_ignore(tmp_path):
    arrays = st.original(tmp_path / "original")
    groups = {"attention": (["re:.*self_attn.*"], W4A16), "mlp": (["re:.*mlp.*"], W8_CHANNEL)}
    reference = st.compressed(tmp_path / "quantized", arrays, groups)
    rows, doc = audited(tmp_path, reference, arrays)
    assert rows["model.layers.0.self_attn.o_proj.weight"]["stored_format"] == \
        "int4 group 128 symmetric"
    assert rows["model.layers.0.mlp.up_proj.weight"]["stored_format"] == \
        "int8 per channel asymmetric"
    formats = {f["stored_format"]: f for f in doc["totals"]["by_format"]}
    assert formats["int8 per channel asymmetric"]["tensors"] == 3


@pytest.mark.parametrize("fmt, args, label", [
    ("float-quantized", dict(num_bits=8, type="float", symmetric=True, strategy="channel"),
     "FP8 E4M3 per channel"),
    ("float-quantized", dict(num_bits=8, type="float", symmetric=True, strategy="block",
                             block_structure=[128, 128]), "FP8 E4M3 128x128 blocks"),
    ("int-quantized", dict(num_bits=8, type="int", symmetric=False, strategy="channel"),
     "int8 per channel asymmetric"),
    ("nvfp4-pack-quantized", dict(num_bits=4, type="float", symmetric=True,
                                  strategy="tensor_group", group_size=16), "NVFP4 group 16")])
def test_compressed_tensors_int_float_and_nvfp4(tmp_path, fmt, args, label):
    arrays = st.original(tmp_path / "original")
    reference = st.compressed(tmp_path / "quantized", arrays, {"group_0": (["Linear"], args)},
                              fmt=fmt)
    # the library's NVFP4 decompressor rounds its output to bf16; quantcalc keeps float32
    rows, _ = audited(tmp_path, reference, arrays, exact=fmt != "nvfp4-pack-quantized")
    assert rows["model.layers.0.mlp.down_proj.weight"]["stored_format"] == label


@pytest.mark.parametrize("bits, group, sym, act_order, dtype", [
    (4, 128, True, False, "float32"), (4, 64, False, True, "float32"),
    (8, 128, True, False, "float32"), (3, 128, False, False, "float32"),
    (4, 128, True, False, "float16")])
def test_gptq(tmp_path, bits, group, sym, act_order, dtype):
    import torch
    arrays = st.original(tmp_path / "original")
    reference = st.gptq(tmp_path / "quantized", arrays, bits, group, sym, act_order,
                        getattr(torch, dtype))
    rows, _ = audited(tmp_path, reference, arrays, exact=dtype == "float32")
    label = rows["model.layers.0.mlp.up_proj.weight"]["stored_format"]
    assert label.startswith(f"GPTQ int{bits} group {group}")
    assert label.endswith("act-order") == act_order


def test_awq(tmp_path):
    arrays = st.original(tmp_path / "original")
    reference = st.awq(tmp_path / "quantized", arrays)
    rows, _ = audited(tmp_path, reference, arrays, exact=False)
    assert rows["model.layers.0.mlp.down_proj.weight"]["stored_format"] == "AWQ int4 group 128"


def test_packed_integers_without_a_config_are_listed_with_the_reason(tmp_path):
    arrays = st.original(tmp_path / "original")
    st.gptq(tmp_path / "quantized", arrays)
    (tmp_path / "quantized" / "config.json").unlink()
    reply = api.audit_model([str(tmp_path / "original")], [str(tmp_path / "quantized")])
    rows = {r["name"]: r for r in reply["document"]["tensors"]}
    row = rows["model.layers.0.mlp.up_proj.weight"]
    assert row["sqnr_db"] is None and "no gptq or awq quantization_config" in row["reason"]
    assert rows["lm_head.weight"]["sqnr_db"] == np.inf


def test_a_layer_the_config_ignores_but_the_file_compresses_is_listed(tmp_path):
    import json
    arrays = st.original(tmp_path / "original")
    st.compressed(tmp_path / "quantized", arrays, {"group_0": (["Linear"], W4A16)})
    path = tmp_path / "quantized" / "config.json"
    config = json.loads(path.read_text())
    config["quantization_config"]["ignore"] = ["lm_head", "re:.*down_proj$"]
    path.write_text(json.dumps(config))
    reply = api.audit_model([str(tmp_path / "original")], [str(tmp_path / "quantized")])
    rows = {r["name"]: r for r in reply["document"]["tensors"]}
    assert "ignore list names it" in rows["model.layers.0.mlp.down_proj.weight"]["reason"]
    assert rows["model.layers.0.mlp.up_proj.weight"]["sqnr_db"] > 10


def test_worker_processes_read_stored_layers_as_here(tmp_path):
    import json
    arrays = st.original(tmp_path / "original")
    st.compressed(tmp_path / "quantized", arrays, {"group_0": (["Linear"], W4_ASYM)})
    paths = [str(tmp_path / "original")], [str(tmp_path / "quantized")]
    here = api.audit_model(*paths, slab_values=SLAB)["document"]
    there = api.audit_model(*paths, slab_values=SLAB, jobs=2)["document"]
    assert json.dumps(there, sort_keys=True) == json.dumps(here, sort_keys=True)
