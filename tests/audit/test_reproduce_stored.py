"""`reproduced` for quantized safetensors checkpoints (audit/reproduce_stored.py): pairs made
with the formats' own tools are reproduced exactly when made by the plain min-max rule, and not
when a code was changed, the scale rule differs (amax / 447, the observer's scale x 1.02) or
the maker used calibration data (GPTQ); NVFP4 says null with the reason. Layers are read in
slabs small enough that each spans several, so a per-tensor scale is checked across slabs."""

import numpy as np
import pytest

from quantcalc import api

st = pytest.importorskip("tests.support.audit_stored", reason="torch runs the formats' tools")
pytest.importorskip("compressed_tensors", reason="compressed-tensors is the reference")
torch = pytest.importorskip("torch")

SLAB = 1 << 13
QUANTIZED = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
             "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def rows_of(tmp_path):
    reply = api.audit_model([str(tmp_path / "original")], [str(tmp_path / "quantized")],
                            slab_values=SLAB)
    assert "error" not in reply, reply
    return {r["name"]: r for r in reply["document"]["tensors"]}, reply["document"]


def quantized_rows(rows):
    found = [r for n, r in rows.items() if any(q in n for q in QUANTIZED)]
    assert len(found) == len(QUANTIZED)
    return found


def assert_reproduced(rows, rule):
    for row in quantized_rows(rows):
        assert row["reproduced"] is True, row
        assert row["reproduced_as"] == rule
        # the rule's own error is the stored one when the file is the rule's
        assert row["plain_sqnr_db"] == row["sqnr_db"] and row["plain_mse"] == row["mse"]


def test_deepseek_fp8_blocks_are_reproduced(tmp_path):
    arrays = st.original(tmp_path / "original")
    st.fp8_block(tmp_path / "quantized", arrays)
    rows, doc = rows_of(tmp_path)
    assert_reproduced(rows, "amax/448 (DeepSeek-V3)")
    assert doc["totals"]["reproduced"]["true"] == len(QUANTIZED)


def test_fp8_blocks_scaled_by_amax_over_447_are_not(tmp_path):
    arrays = st.original(tmp_path / "original")
    st.fp8_block(tmp_path / "quantized", arrays, top=447)
    rows, _ = rows_of(tmp_path)
    for row in quantized_rows(rows):
        assert row["reproduced"] is False and row["reproduced_as"] is None
        # the plain amax/448 error is measured beside the stored one
        assert row["plain_sqnr_db"] is not None and row["plain_sqnr_db"] != row["sqnr_db"]


def test_one_changed_code_is_not_reproduced(tmp_path):
    arrays = st.original(tmp_path / "original")
    st.fp8_block(tmp_path / "quantized", arrays)
    st.perturb(tmp_path / "quantized", "model.layers.0.mlp.up_proj.weight", index=300 * 256 + 7)
    rows, _ = rows_of(tmp_path)
    assert rows["model.layers.0.mlp.up_proj.weight"]["reproduced"] is False
    assert rows["model.layers.0.mlp.gate_proj.weight"]["reproduced"] is True


W4A16 = dict(num_bits=4, type="int", symmetric=True, strategy="group", group_size=128)
SCHEMES = {
    "w4a16": ("pack-quantized", W4A16),
    "w4-asym-g64": ("pack-quantized", dict(num_bits=4, type="int", symmetric=False,
                                           strategy="group", group_size=64)),
    "w8-channel-asym": ("pack-quantized", dict(num_bits=8, type="int", symmetric=False,
                                               strategy="channel")),
    "w8a8-int": ("int-quantized", dict(num_bits=8, type="int", symmetric=True,
                                       strategy="channel")),
    "w8-tensor-asym": ("int-quantized", dict(num_bits=8, type="int", symmetric=False,
                                             strategy="tensor")),
    "fp8-tensor": ("float-quantized", dict(num_bits=8, type="float", symmetric=True,
                                           strategy="tensor")),
    "fp8-channel": ("float-quantized", dict(num_bits=8, type="float", symmetric=True,
                                            strategy="channel")),
    "fp8-block": ("float-quantized", dict(num_bits=8, type="float", symmetric=True,
                                          strategy="block", block_structure=[128, 128])),
}


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_compressed_tensors_minmax_schemes_are_reproduced(tmp_path, scheme):
    fmt, args = SCHEMES[scheme]
    arrays = st.original(tmp_path / "original")
    st.compressed(tmp_path / "quantized", arrays, {"group_0": (["Linear"], args)}, fmt=fmt)
    rows, _ = rows_of(tmp_path)
    assert_reproduced(rows, "min-max (compressed-tensors)")


@pytest.mark.parametrize("scheme", ["w4a16", "w8-tensor-asym", "fp8-tensor", "fp8-channel"])
def test_another_scale_rule_is_not_reproduced(tmp_path, scheme):
    fmt, args = SCHEMES[scheme]
    arrays = st.original(tmp_path / "original")
    st.compressed(tmp_path / "quantized", arrays, {"group_0": (["Linear"], args)}, fmt=fmt,
                  scale_factor=1.02)
    rows, _ = rows_of(tmp_path)
    for row in quantized_rows(rows):
        assert row["reproduced"] is False, row


def test_a_changed_packed_code_is_not_reproduced(tmp_path):
    arrays = st.original(tmp_path / "original")
    st.compressed(tmp_path / "quantized", arrays, {"group_0": (["Linear"], W4A16)})
    st.perturb(tmp_path / "quantized", "model.layers.0.self_attn.o_proj.weight_packed",
               index=200 * 32 + 3)
    rows, _ = rows_of(tmp_path)
    assert rows["model.layers.0.self_attn.o_proj.weight"]["reproduced"] is False
    assert rows["model.layers.0.self_attn.q_proj.weight"]["reproduced"] is True


def test_bf16_model_with_bf16_scales_is_reproduced(tmp_path):
    """llm-compressor on a bf16 model: scales and arithmetic in bf16."""
    arrays = st.original(tmp_path / "original")
    arrays = {n: torch.from_numpy(x).to(torch.bfloat16).float().numpy() for n, x in arrays.items()}
    st.write(tmp_path / "original", {n: torch.from_numpy(x).to(torch.bfloat16)
                                     for n, x in arrays.items()}, None)
    for scheme in ("w4a16", "w8-channel-asym"):
        fmt, args = SCHEMES[scheme]
        st.compressed(tmp_path / "quantized", arrays, {"group_0": (["Linear"], args)}, fmt=fmt,
                      dtype=torch.bfloat16)
        rows, _ = rows_of(tmp_path)
        for row in quantized_rows(rows):
            assert row["reproduced"] is True, (scheme, row)


def test_gptq_is_null_with_the_reason(tmp_path):
    arrays = st.original(tmp_path / "original")
    st.gptq(tmp_path / "quantized", arrays, dtype=torch.float32)
    rows, doc = rows_of(tmp_path)
    for row in quantized_rows(rows):
        assert row["reproduced"] is None and row["plain_sqnr_db"] is None
        assert any("calibration activations" in n for n in row["notes"]), row["notes"]
    assert doc["totals"]["reproduced"]["null"] >= len(QUANTIZED)


def test_nvfp4_is_null_with_the_reason(tmp_path):
    arrays = st.original(tmp_path / "original")
    args = dict(num_bits=4, type="float", symmetric=True, strategy="tensor_group", group_size=16)
    st.compressed(tmp_path / "quantized", arrays, {"group_0": (["Linear"], args)},
                  fmt="nvfp4-pack-quantized")
    rows, _ = rows_of(tmp_path)
    for row in quantized_rows(rows):
        assert row["reproduced"] is None and any("NVFP4" in n for n in row["notes"])


def test_gguf_rows_keep_their_reproduction(tmp_path):
    """The float tensors a safetensors quantized side keeps get no reproduction of a format."""
    arrays = st.original(tmp_path / "original")
    st.fp8_block(tmp_path / "quantized", arrays)
    rows, _ = rows_of(tmp_path)
    assert rows["lm_head.weight"]["reproduced"] is None
    assert np.isinf(rows["lm_head.weight"]["sqnr_db"])
