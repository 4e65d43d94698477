"""gpt-oss's MXFP4 experts (`*_blocks` U8 + `*_scales` U8 E8M0, 3-D) audited against an original
in BF16 in transformers' layout (experts, columns, rows): the quantized side made with ml_dtypes
by the OCP rule, each SQNR checked against transformers' own decoding (convert_moe_packed_tensors,
transcribed in tests/formats/stored/test_stored_mxfp4.py), reproduced true, and false when one
scale is changed. Slabs are one expert: the SQNR spans several."""

import json

import numpy as np
import pytest

from quantcalc import api
from tests.support import audit_pairs as ap

torch = pytest.importorskip("torch")
ml_dtypes = pytest.importorskip("ml_dtypes")
from safetensors.torch import save_file  # noqa: E402
from tests.formats.stored.test_stored_mxfp4 import convert_moe_packed_tensors  # noqa: E402

EXPERTS = {"model.layers.0.mlp.experts.gate_up_proj": (3, 64, 128),   # (E, hidden, 2 ffn)
           "model.layers.0.mlp.experts.down_proj": (3, 64, 64)}
CONFIG = {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss",
          "num_hidden_layers": 1, "hidden_size": 64, "num_local_experts": 3}


def ocp_mxfp4(x):
    """(blocks, scales) of x (E, columns, rows) by the OCP rule, cast by ml_dtypes."""
    stored = x.swapaxes(1, 2)
    groups = stored.reshape(*stored.shape[:-1], -1, 32)
    amax = np.abs(groups).max(axis=-1).astype(np.float64)
    with np.errstate(divide="ignore"):
        exponent = np.where(amax > 0, np.floor(np.log2(amax)) - 2, -127)
    codes = (groups / np.exp2(exponent)[..., None]).astype(ml_dtypes.float4_e2m1fn).view(np.uint8)
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8), \
        (exponent + 127).astype(np.uint8)


def write_pair(tmp_path, change_scale=False):
    rng = np.random.default_rng(7)
    original, quantized, reference = {}, {}, {}
    for name, shape in EXPERTS.items():
        x = torch.from_numpy((rng.standard_t(4, shape) * 0.02).astype(np.float32)) \
            .to(torch.bfloat16)
        original[name] = x
        blocks, scales = ocp_mxfp4(x.float().numpy())
        if change_scale:
            scales[1, 5, 0] += 1
        quantized[name + "_blocks"] = torch.from_numpy(blocks)
        quantized[name + "_scales"] = torch.from_numpy(scales)
        reference[name] = convert_moe_packed_tensors(torch.from_numpy(blocks),
                                                     torch.from_numpy(scales)).float().numpy()
    norm = torch.ones(64, dtype=torch.bfloat16)
    original["model.norm.weight"] = quantized["model.norm.weight"] = norm
    for side, tensors, extra in (("original", original, {}),
                                 ("quantized", quantized,
                                  {"quantization_config": {"quant_method": "mxfp4"}})):
        folder = tmp_path / side
        folder.mkdir()
        save_file({n: t.contiguous() for n, t in tensors.items()},
                  str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps({**CONFIG, **extra}))
    return {n: t.float().numpy() for n, t in original.items()}, reference


def audit(tmp_path):
    reply = api.audit_model([str(tmp_path / "original")], [str(tmp_path / "quantized")],
                            slab_values=1 << 10)
    assert "error" not in reply, reply
    return {r["name"]: r for r in reply["document"]["tensors"]}


def test_gpt_oss_experts_against_bf16(tmp_path):
    original, reference = write_pair(tmp_path)
    rows = audit(tmp_path)
    assert set(rows) == set(original)
    for name in EXPERTS:
        row = rows[name]
        assert row["reason"] is None and row["side"] == "both", row
        assert row["stored_format"].startswith("MXFP4")
        assert row["shape"] == list(EXPERTS[name])
        assert row["sqnr_db"] == pytest.approx(ap.sqnr_db(original[name], reference[name]),
                                               abs=1e-9)
        assert 10 < row["sqnr_db"] < 30
        assert row["bits_per_value"] == pytest.approx(4.25)
        assert row["reproduced"] is True and row["reproduced_as"].startswith("OCP MX")
        assert row["plain_sqnr_db"] == pytest.approx(row["sqnr_db"], abs=1e-12)


def test_a_changed_scale_is_not_reproduced(tmp_path):
    original, reference = write_pair(tmp_path, change_scale=True)
    rows = audit(tmp_path)
    for name in EXPERTS:
        row = rows[name]
        assert row["reproduced"] is False
        assert row["sqnr_db"] == pytest.approx(ap.sqnr_db(original[name], reference[name]),
                                               abs=1e-9)
        assert row["sqnr_db"] < row["plain_sqnr_db"]


def test_blocks_of_the_wrong_layout_are_listed_with_the_reason(tmp_path):
    write_pair(tmp_path)
    folder = tmp_path / "quantized"
    from safetensors.torch import load_file
    tensors = load_file(str(folder / "model.safetensors"))
    name = "model.layers.0.mlp.experts.down_proj"
    tensors[name + "_scales"] = tensors[name + "_scales"][:, :, :1].contiguous()
    save_file(tensors, str(folder / "model.safetensors"))
    rows = audit(tmp_path)
    assert rows[name]["sqnr_db"] is None and "gpt-oss's layout" in rows[name]["reason"]
    assert rows["model.layers.0.mlp.experts.gate_up_proj"]["reproduced"] is True
