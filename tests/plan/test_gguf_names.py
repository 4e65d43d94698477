"""GGUF names from the field's own table: the generated copy of gguf-py's TensorNameMap
(py/quantcalc/schema/gguf_tensor_names.py) equals what the installed gguf gives today (drift),
and quantcalc's lookup gives TensorNameMap's answer for every name of every architecture."""

import copy

import pytest

from quantcalc.schema import gguf_names
from tests.plan import make_gguf_names

gguf = pytest.importorskip("gguf", reason="gguf (llama.cpp's gguf-py) is a test dependency")


def test_the_generated_table_is_what_the_installed_gguf_gives():
    text = make_gguf_names.TARGET.read_text(encoding="utf-8")
    assert text == make_gguf_names.source(), (
        "py/quantcalc/schema/gguf_tensor_names.py is out of date with the installed gguf: run "
        "`.venv/bin/python -m tests.plan.make_gguf_names` and review the difference")
    assert gguf_names.GGUF_PY_VERSION == make_gguf_names.data_version()


@pytest.fixture(scope="module")
def reference_maps():
    """TensorNameMap(arch, 3) for every architecture, each made from gguf-py's own tables as
    its module defines them (TensorNameMap(arch) changes its class's table in place)."""
    names, blocks, arch_blocks = make_gguf_names.pristine_tables()
    from gguf.constants import MODEL_ARCH_NAMES
    from gguf.tensor_mapping import TensorNameMap

    out = {}
    for arch, name in MODEL_ARCH_NAMES.items():
        TensorNameMap.mappings_cfg = copy.deepcopy(names)
        TensorNameMap.block_mappings_cfg = copy.deepcopy(blocks)
        TensorNameMap.arch_block_mappings_cfg = copy.deepcopy(arch_blocks)
        out[name] = TensorNameMap(arch, 3)
    TensorNameMap.block_mappings_cfg = copy.deepcopy(blocks)
    return out


def test_every_architecture_maps_every_name_as_tensor_name_map_does(reference_maps):
    checked = 0
    for arch, reference in reference_maps.items():
        ours = gguf_names.NameMap(arch, 3)
        for key, (_, expected) in reference.mapping.items():
            for suffix in ("", ".weight", ".bias"):
                got = ours.get(key + suffix)
                assert got == reference.get_name(key + suffix, try_suffixes=(".weight", ".bias")), \
                    (arch, key + suffix, got)
                checked += 1
            assert expected  # the reference's own answer, for the message above
    assert checked > 100_000


@pytest.mark.parametrize("arch, name, expected", [
    ("llama", "model.layers.29.self_attn.q_proj.weight", "blk.29.attn_q.weight"),
    ("llama", "lm_head.weight", "output.weight"),
    ("llama", "model.embed_tokens.weight", "token_embd.weight"),
    ("llama", "blk.4.ffn_down.weight", "blk.4.ffn_down.weight"),
    ("bert", "encoder.layer.5.attention.self.query.weight", "blk.5.attn_q.weight"),
    ("bert", "encoder.layer.0.attention.output.LayerNorm.bias", "blk.0.attn_output_norm.bias"),
    ("bert", "embeddings.position_embeddings.weight", "position_embd.weight"),
    ("bert", "embeddings.position_ids", None),
    ("bert", "pooler.dense.weight", None),
])
def test_names_of_the_corpus_architectures(arch, name, expected):
    assert gguf_names.name_map(arch, 30).get(name) == expected


def test_block_numbers_beyond_the_model_are_not_its_tensors():
    assert gguf_names.name_map("llama", 2).get("model.layers.2.mlp.up_proj.weight") is None
    assert gguf_names.name_map("llama").get("model.layers.200.mlp.up_proj.weight") == \
        "blk.200.ffn_up.weight"
    assert gguf_names.name_map("llama").get("model.layers.01.mlp.up_proj.weight") is None


def test_the_architecture_comes_from_config_json_then_from_the_names():
    assert gguf_names.architecture_of_config({"model_type": "bert",
                                              "architectures": ["BertModel"]})[0] == "bert"
    assert gguf_names.architecture_of_config({"architectures": ["LlamaForCausalLM"]})[0] == \
        "llama"
    assert gguf_names.architecture_of_config({"model_type": "no-such"}) == (None, None)
    assert gguf_names.architecture_of_config(["not", "a", "dict"]) == (None, None)
    assert gguf_names.block_count_of_config({"num_hidden_layers": 6}) == 6
    llama = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
             "model.norm.weight", "lm_head.weight"]
    assert gguf_names.infer_architecture(llama) == ("llama", 4)
    assert gguf_names.infer_architecture(["nothing.known"]) == (None, 0)
