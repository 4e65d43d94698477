"""Small checkpoints of real architectures: each with the tensor names and shape pattern of the
real model (BERT, GPT-2, Llama, Gemma 3, Qwen2, Phi-3, Mixtral, Qwen2-MoE; tiny dimensions) and
the config.json that names it, written as a safetensors checkpoint, and as the GGUF that
llama.cpp's convert_hf_to_gguf.py writes from it.

The GGUF's names come from gguf-py's TensorNameMap (the table convert renames with), not from
quantcalc, so a test can set quantcalc's names beside them. What convert does besides renaming
is done here as convert does it: tensors it drops (BERT's position_ids and pooler, GPT-2's
attention-mask buffers), GPT-2's Conv1D weights transposed, per-expert matrices stacked into one
3-D tensor per layer (Mixtral's block_sparse_moe.experts.E.w1 -> ffn_gate_exps), norms and 1-D
tensors in F32, the rest in the output type (F16, BF16, F32). An "already quantized" GGUF holds
what `llama-quantize --pure` makes of it: Q8_0 wherever llama-quantize quantizes.
"""

import copy
import json
import re
from pathlib import Path

import numpy as np

from tests.support import checkpoints

H, KV, FFN, VOCAB, LAYERS = 256, 128, 512, 256, 2
EXPERT_FFN = 256
_EXPERT = re.compile(r"^(?P<head>.*\.experts)\.(?P<expert>\d+)\.(?P<tail>.+)$")
# kept in F32 by convert whatever the output type (its extra_f32 tensors and every norm)
_F32_KINDS = ("_norm.weight", "ffn_gate_inp.weight", "position_embd.weight",
              "token_types.weight")


class Architecture:
    """One architecture's checkpoint: `tensors` [(Hugging Face name, shape)], its config.json,
    the architecture convert writes (`gguf_arch`, gguf-py's name), the names convert drops and
    the ones it transposes, and how many experts each MoE layer has (0: none)."""

    def __init__(self, key, config, tensors, gguf_arch, dropped=(), transposed=(), experts=0):
        self.key, self.config, self.tensors = key, config, tensors
        self.gguf_arch, self.experts = gguf_arch, experts
        self.dropped, self.transposed = tuple(dropped), tuple(transposed)

    @property
    def block_count(self):
        return self.config.get("num_hidden_layers", self.config.get("n_layer"))

    def arrays(self, seed=0):
        """{name: array} in file order: float weights, and BERT's integer position_ids."""
        floats = checkpoints.make_arrays([(n, s) for n, s in self.tensors if n != _IDS], seed)
        return {n: np.arange(64, dtype=np.int64).reshape(1, 64) if n == _IDS else floats[n]
                for n, _ in self.tensors}

    def __repr__(self):
        return self.key


_IDS = "embeddings.position_ids"


def _attention(p, q_bias=False, kv=KV, out="o_proj"):
    out_list = [(p + "self_attn.q_proj.weight", (H, H)), (p + "self_attn.k_proj.weight", (kv, H)),
                (p + "self_attn.v_proj.weight", (kv, H)), (p + f"self_attn.{out}.weight", (H, H))]
    if q_bias:
        out_list[3:3] = [(p + "self_attn.q_proj.bias", (H,)), (p + "self_attn.k_proj.bias", (kv,)),
                         (p + "self_attn.v_proj.bias", (kv,))]
    return out_list


def _mlp(p, ffn=FFN, prefix="mlp."):
    return [(p + prefix + "gate_proj.weight", (ffn, H)), (p + prefix + "up_proj.weight", (ffn, H)),
            (p + prefix + "down_proj.weight", (H, ffn))]


def bert():
    """BERT as BertModel stores it (all-MiniLM's pattern: half the parameters in the word
    embeddings), with the position_ids buffer and the pooler convert drops."""
    out = [(_IDS, (1, 64)), ("embeddings.word_embeddings.weight", (8 * VOCAB, H)),
           ("embeddings.position_embeddings.weight", (64, H)),
           ("embeddings.token_type_embeddings.weight", (2, H)),
           ("embeddings.LayerNorm.weight", (H,)), ("embeddings.LayerNorm.bias", (H,))]
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for part in ("query", "key", "value"):
            out += [(p + f"attention.self.{part}.weight", (H, H)),
                    (p + f"attention.self.{part}.bias", (H,))]
        out += [(p + "attention.output.dense.weight", (H, H)),
                (p + "attention.output.dense.bias", (H,)),
                (p + "attention.output.LayerNorm.weight", (H,)),
                (p + "attention.output.LayerNorm.bias", (H,)),
                (p + "intermediate.dense.weight", (FFN, H)), (p + "intermediate.dense.bias", (FFN,)),
                (p + "output.dense.weight", (H, FFN)), (p + "output.dense.bias", (H,)),
                (p + "output.LayerNorm.weight", (H,)), (p + "output.LayerNorm.bias", (H,))]
    out += [("pooler.dense.weight", (H, H)), ("pooler.dense.bias", (H,))]
    return Architecture("bert", {"model_type": "bert", "architectures": ["BertModel"],
                                 "num_hidden_layers": LAYERS}, out, "bert",
                        dropped=(_IDS, "pooler.dense.weight", "pooler.dense.bias"))


def gpt2():
    """GPT-2 as openai-community/gpt2 stores it: GPT2Model's names, Conv1D weights as [in, out],
    the attention-mask buffer h.N.attn.bias, no lm_head (tied to wte)."""
    out = [("wte.weight", (VOCAB, H)), ("wpe.weight", (64, H))]
    for i in range(LAYERS):
        p = f"h.{i}."
        out += [(p + "ln_1.weight", (H,)), (p + "ln_1.bias", (H,)),
                (p + "attn.bias", (1, 1, 16, 16)),
                (p + "attn.c_attn.weight", (H, 3 * H)), (p + "attn.c_attn.bias", (3 * H,)),
                (p + "attn.c_proj.weight", (H, H)), (p + "attn.c_proj.bias", (H,)),
                (p + "ln_2.weight", (H,)), (p + "ln_2.bias", (H,)),
                (p + "mlp.c_fc.weight", (H, 4 * H)), (p + "mlp.c_fc.bias", (4 * H,)),
                (p + "mlp.c_proj.weight", (4 * H, H)), (p + "mlp.c_proj.bias", (H,))]
    out += [("ln_f.weight", (H,)), ("ln_f.bias", (H,))]
    return Architecture("gpt2", {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
                                 "n_layer": LAYERS}, out, "gpt2",
                        dropped=tuple(f"h.{i}.attn.bias" for i in range(LAYERS)),
                        transposed=(".c_attn.weight", ".c_proj.weight", ".c_fc.weight"))


def _decoder(key, config, gguf_arch, layer, tied, experts=0):
    out = [("model.embed_tokens.weight", (VOCAB, H))]
    for i in range(LAYERS):
        out += layer(f"model.layers.{i}.")
    out.append(("model.norm.weight", (H,)))
    if not tied:
        out.append(("lm_head.weight", (VOCAB, H)))
    config = {"num_hidden_layers": LAYERS, "tie_word_embeddings": tied, **config}
    return Architecture(key, config, out, gguf_arch, experts=experts)


def _norms(p, *names):
    return [(p + f"{n}.weight", (H,)) for n in names]


def llama():
    return _decoder("llama", {"model_type": "llama", "architectures": ["LlamaForCausalLM"]},
                    "llama", lambda p: _norms(p, "input_layernorm") + _attention(p)
                    + _norms(p, "post_attention_layernorm") + _mlp(p), tied=False)


def gemma3():
    """Gemma 3 (text): q/k norms, four norms a layer, tied embeddings (no lm_head)."""
    def layer(p):
        return (_norms(p, "input_layernorm") + _attention(p)
                + [(p + "self_attn.q_norm.weight", (H // 2,)), (p + "self_attn.k_norm.weight",
                                                               (H // 2,))]
                + _norms(p, "post_attention_layernorm", "pre_feedforward_layernorm",
                         "post_feedforward_layernorm") + _mlp(p))
    return _decoder("gemma3", {"model_type": "gemma3_text",
                               "architectures": ["Gemma3ForCausalLM"]}, "gemma3", layer, tied=True)


def qwen2():
    """Qwen2 (0.5B's pattern): q/k/v biases, tied embeddings."""
    return _decoder("qwen2", {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]},
                    "qwen2", lambda p: _norms(p, "input_layernorm") + _attention(p, q_bias=True)
                    + _norms(p, "post_attention_layernorm") + _mlp(p), tied=True)


def phi3():
    """Phi-3: fused qkv_proj ([q; k; v] rows) and gate_up_proj ([gate; up] rows)."""
    def layer(p):
        return (_norms(p, "input_layernorm")
                + [(p + "self_attn.qkv_proj.weight", (H + 2 * KV, H)),
                   (p + "self_attn.o_proj.weight", (H, H))]
                + _norms(p, "post_attention_layernorm")
                + [(p + "mlp.gate_up_proj.weight", (2 * FFN, H)),
                   (p + "mlp.down_proj.weight", (H, FFN))])
    return _decoder("phi3", {"model_type": "phi3", "architectures": ["Phi3ForCausalLM"]},
                    "phi3", layer, tied=False)


def mixtral(experts=8):
    """Mixtral: per-expert w1 (gate), w2 (down), w3 (up) and the router block_sparse_moe.gate;
    convert writes it as a llama GGUF with 3-D ffn_*_exps."""
    def layer(p):
        moe = [(p + "block_sparse_moe.gate.weight", (experts, H))]
        for e in range(experts):
            q = p + f"block_sparse_moe.experts.{e}."
            moe += [(q + "w1.weight", (EXPERT_FFN, H)), (q + "w2.weight", (H, EXPERT_FFN)),
                    (q + "w3.weight", (EXPERT_FFN, H))]
        return (_norms(p, "input_layernorm") + _attention(p)
                + _norms(p, "post_attention_layernorm") + moe)
    return _decoder("mixtral", {"model_type": "mixtral", "architectures": ["MixtralForCausalLM"],
                                "num_local_experts": experts}, "llama", layer, tied=False,
                    experts=experts)


def qwen2_moe(experts=4):
    """Qwen2-MoE (Qwen1.5-MoE's pattern): per-expert gate/up/down_proj, the router mlp.gate, a
    shared expert and its gate (one row), q/k/v biases."""
    def layer(p):
        moe = [(p + "mlp.gate.weight", (experts, H))]
        for e in range(experts):
            moe += _mlp(p, EXPERT_FFN, f"mlp.experts.{e}.")
        moe += _mlp(p, FFN, "mlp.shared_expert.") + [(p + "mlp.shared_expert_gate.weight", (1, H))]
        return (_norms(p, "input_layernorm") + _attention(p, q_bias=True)
                + _norms(p, "post_attention_layernorm") + moe)
    return _decoder("qwen2_moe", {"model_type": "qwen2_moe",
                                  "architectures": ["Qwen2MoeForCausalLM"],
                                  "num_experts": experts}, "qwen2moe", layer, tied=False,
                    experts=experts)


ALL = (bert, gpt2, llama, gemma3, qwen2, phi3, mixtral, qwen2_moe)


# ---------------------------------------------------------------- what convert writes
def expert_index(name):
    """The expert number in a per-expert tensor's name, or None."""
    match = _EXPERT.match(name)
    return None if match is None else int(match["expert"])


def tensor_name_map(gguf_arch, blocks):
    """gguf-py's TensorNameMap for the architecture, made from gguf-py's tables as its module
    defines them (TensorNameMap changes its class's tables in place: the next one would see
    this architecture's names), the tables restored after."""
    from gguf.constants import MODEL_ARCH_NAMES
    from gguf.tensor_mapping import TensorNameMap

    from tests.plan.make_gguf_names import pristine_tables

    names, block_names, arch_names = pristine_tables()
    arch = next(a for a, name in MODEL_ARCH_NAMES.items() if name == gguf_arch)
    saved = (TensorNameMap.mappings_cfg, TensorNameMap.block_mappings_cfg,
             TensorNameMap.arch_block_mappings_cfg)
    try:
        TensorNameMap.mappings_cfg, TensorNameMap.block_mappings_cfg = names, block_names
        TensorNameMap.arch_block_mappings_cfg = arch_names
        return TensorNameMap(arch, blocks)
    finally:
        (TensorNameMap.mappings_cfg, TensorNameMap.block_mappings_cfg,
         TensorNameMap.arch_block_mappings_cfg) = (copy.deepcopy(saved[0]),
                                                   copy.deepcopy(saved[1]), saved[2])


def converted(arch, arrays):
    """{GGUF name: array} as convert_hf_to_gguf.py writes the checkpoint, in its order, and
    {Hugging Face name: GGUF name} (the per-expert names to their stacked tensor)."""
    mapper = tensor_name_map(arch.gguf_arch, arch.block_count)
    stacks, out, names = {}, {}, {}
    for name, x in arrays.items():
        if name in arch.dropped:
            continue
        if name.endswith(arch.transposed):
            x = np.ascontiguousarray(x.T)
        match = _EXPERT.match(name)
        if match:  # stacked when the layer's last expert arrives, as convert does
            merged = f"{match['head']}.{match['tail']}"
            stacks.setdefault(merged, {})[int(match["expert"])] = (name, x)
            if len(stacks[merged]) < arch.experts:
                continue
            members = [stacks[merged][e] for e in range(arch.experts)]
            x = np.stack([m[1] for m in members])
            gguf_name = mapper.get_name(merged, try_suffixes=(".weight", ".bias"))
            names.update({m[0]: gguf_name for m in members})
        else:
            gguf_name = mapper.get_name(name, try_suffixes=(".weight", ".bias"))
            names[name] = gguf_name
        if gguf_name is None:
            raise AssertionError(f"convert cannot map {name} for {arch.gguf_arch}")
        out[gguf_name] = x
    return out, names


def write_safetensors(folder, arch, seed=0):
    """model.safetensors and config.json in `folder`; the safetensors file's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoints.write_safetensors(folder / "model.safetensors", arch.arrays(seed))
    (folder / "config.json").write_text(json.dumps(arch.config))
    return folder / "model.safetensors"


def gguf_type(gguf_name, x, outtype):
    """The type of a tensor in the GGUF: F32 for 1-D tensors, norms and convert's extra F32
    kinds; `outtype` for the rest, except that a quantized outtype goes only where
    llama-quantize quantizes and the rows take its blocks (the rest stay F16)."""
    if x.ndim <= 1 or gguf_name.endswith(_F32_KINDS):
        return "F32"
    if outtype in ("F32", "F16", "BF16"):
        return outtype
    quantizes = gguf_name.endswith(".weight") and x.shape[-1] % 32 == 0 and \
        "ffn_gate_inp" not in gguf_name and (x.ndim > 2 or min(x.shape) > 1)
    return outtype if quantizes else "F16"


def write_gguf(path, arch, outtype="F16", seed=0):
    """The GGUF convert writes (outtype F32, F16 or BF16), or what llama-quantize --pure makes
    of it (outtype Q8_0 or Q4_0); {Hugging Face name: GGUF name}."""
    import gguf

    tensors, names = converted(arch, arch.arrays(seed))
    writer = gguf.GGUFWriter(str(path), arch.gguf_arch)
    writer.add_block_count(arch.block_count)
    if arch.experts:
        writer.add_expert_count(arch.experts)
    for name, x in tensors.items():
        kind = gguf_type(name, x, outtype)
        if kind == "F32":
            writer.add_tensor(name, x.astype(np.float32))
        elif kind == "F16":
            writer.add_tensor(name, x.astype(np.float16))
        else:
            q = gguf.quants.quantize(x.astype(np.float32), gguf.GGMLQuantizationType[kind])
            writer.add_tensor(name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType[kind])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return names
