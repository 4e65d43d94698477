"""A tensor's layer and role from its name, in the spellings of Hugging Face (Llama, BERT,
GPT-2, Phi-3, Mixtral, Qwen2-MoE, ...) and GGUF checkpoints: what a model scan groups its rows
and figures by, and what llama.cpp's preset rules key on when a tensor has no GGUF name.

A tensor has the same role in either spelling. An MoE's experts (per-expert or stacked) and
shared experts are FFN tensors, as llama-quant.cpp counts them (ffn_down_exps is an ffn_down);
its routers (ffn_gate_inp, Mixtral's block_sparse_moe.gate, Qwen2-MoE's mlp.gate and
shared_expert_gate) are "other": not an FFN projection, and never quantized by llama.cpp."""

import re

LAYER = re.compile(r"(?:^|\.)(?:layers|layer|h|blk|block|blocks|decoder\.layers)\.(\d+)\.")
# (pattern on the name, role), first match wins (norms first: BERT's embeddings.LayerNorm is a
# norm; routers before embeddings and FFN gates); Hugging Face, BERT, GPT-2 and GGUF spellings
ROLES = [
    (r"norm|layernorm|ln_\d|\bln_f\b|LayerNorm", "norm"),
    (r"position_ids|ffn_gate_inp|(?<!experts)\.gate\.|shared_expert_gate|\.router\b", "other"),
    (r"embed_tokens|word_embeddings|token_embd|\bwte\b|\bwpe\b|tok_embeddings|embeddings\.|"
     r"position_embd|token_types", "embed"),
    (r"lm_head|^output\.weight|\boutput\.weight$", "output"),
    # before q/k/v: Phi-3's qkv_proj holds "v_proj"
    (r"qkv|c_attn|query_key_value", "attn_qkv"),
    (r"q_proj|\.query\b|attn_q\b|\.wq\b", "attn_q"),
    (r"k_proj|\.key\b|attn_k\b|\.wk\b", "attn_k"),
    (r"v_proj|\.value\b|attn_v\b|\.wv\b", "attn_v"),
    (r"o_proj|attention\.output\.dense|attn_output|\.wo\b|c_proj.*attn|attn.*c_proj|out_proj",
     "attn_o"),
    (r"gate_proj|ffn_gate|w1\b|\.gate\b", "ffn_gate"),
    (r"up_proj|ffn_up|intermediate\.dense|c_fc|w3\b|fc1", "ffn_up"),
    (r"down_proj|ffn_down|output\.dense|mlp\.c_proj|w2\b|fc2", "ffn_down"),
]
_ROLE_PATTERNS = [(re.compile(p), role) for p, role in ROLES]


def layer_and_role(name: str):
    """(layer index or None, role) from a Hugging Face or GGUF tensor name."""
    match = LAYER.search(name)
    layer = int(match.group(1)) if match else None
    for pattern, role in _ROLE_PATTERNS:
        if pattern.search(name):
            if role == "output" and layer is not None:
                continue
            return layer, role
    return layer, "other"
