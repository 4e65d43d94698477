"""llama.cpp's mixed presets (Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K): which type each tensor
gets, by the rules of `llama_tensor_get_type_impl` in llama.cpp's src/llama-quant.cpp (not Falcon;
70B's attn_v bump is left out), so a plan can be set beside them at equal size.

As llama-quant.cpp does, a tensor's category comes from its GGUF name (tensor_get_category:
`output.weight`, `token_embd.weight`, and attn_qkv / attn_kv_b / attn_v / attn_k / attn_q /
attn_output `.weight`, ffn_up / ffn_gate / ffn_down anywhere in the name, so an MoE's
ffn_down_exps and ffn_down_shexp are FFN-down tensors too); a scan without GGUF names goes by the
roles (scan/roles.py). The tensors are walked in llama.cpp's order (weight_name_comparer: by block
number, then by name), not the file's: a safetensors header lists layer 10 before layer 2.

The model's facts llama-quant.cpp reads from hparams are read from the tensors: tied embeddings
(no `output.weight`: token_embd takes the output's rule), the number of experts (the first axis of
a 3-D FFN tensor; with experts, ffn_down's layer is its block number and 8 experts raise attn_v,
attn_k and attn_output), n_gqa (attn_q's rows over attn_k's) and the block count (given, else
from the layers). A type whose block does not divide a tensor's rows falls back as llama.cpp's
tensor_type_fallback does (formats/ggml/fallback.py decides it, for the scan too); where
llama-quantize has no fallback it stops, and the tensor's type is STOPS.
"""

import re

from quantcalc.errors import QuantcalcError
from quantcalc.formats.ggml import fallback as ggml_fallback
from quantcalc.plan import llama_quantize

# llama.cpp's mixed file types (LLAMA_FTYPE_MOSTLY_*), named as llama-quantize takes them
FTYPES = ("Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M",
           "Q6_K")
BASE = {"Q2_K": "Q2_K", "Q3_K_S": "Q3_K", "Q3_K_M": "Q3_K", "Q3_K_L": "Q3_K", "Q4_K_S": "Q4_K",
        "Q4_K_M": "Q4_K", "Q5_K_S": "Q5_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K"}
STOPS = "stops"  # a tensor llama-quantize stops on: its type has no fallback for its rows
ATTN_V_LIKE = ("attn_v", "attn_qkv", "attn_kv_b")  # llama-quant.cpp's category_is_attn_v
# tensor_get_category: the first of these found in the GGUF name (after output and token_embd)
_CATEGORIES = (("attn_qkv.weight", "attn_qkv"), ("attn_kv_b.weight", "attn_kv_b"),
               ("attn_v.weight", "attn_v"), ("attn_k.weight", "attn_k"),
               ("attn_q.weight", "attn_q"), ("attn_output.weight", "attn_output"),
               ("ffn_up", "ffn_up"), ("ffn_gate", "ffn_gate"), ("ffn_down", "ffn_down"))
_BY_ROLE = {"output": "output", "attn_v": "attn_v", "attn_qkv": "attn_qkv", "attn_k": "attn_k",
            "attn_q": "attn_q", "attn_o": "attn_output", "ffn_up": "ffn_up",
            "ffn_gate": "ffn_gate", "ffn_down": "ffn_down"}
_TOKEN_EMBEDDING = re.compile(r"embed_tokens|word_embeddings|token_embd|\bwte\b|tok_embeddings")
_BLOCK = re.compile(r"^blk\.(\d+)\.")
# attn_output under 8 experts: these presets take Q5_K (llama-quant.cpp's n_expert == 8 list)
_EIGHT_EXPERT_ATTN_OUTPUT = ("Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M")


def use_more_bits(i_layer, n_layers):
    """llama.cpp's choice of layers that get more bits: the first and last eighth, and every
    third layer in between."""
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 \
        or (i_layer - n_layers // 8) % 3 == 2


def category(row, gguf_name=None) -> str:
    """llama-quant.cpp's tensor_get_category of the tensor's GGUF name; without one, the
    category of its role (token_embd only for a token embedding's name)."""
    if gguf_name is None:
        if row["role"] == "embed":
            return "token_embd" if _TOKEN_EMBEDDING.search(row["name"]) else "other"
        return _BY_ROLE.get(row["role"], "other")
    if gguf_name == "output.weight":
        return "output"
    if gguf_name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    return next((cat for part, cat in _CATEGORIES if part in gguf_name), "other")


def n_gqa(rows):
    """Query heads per key-value head, from the shapes: attn_q's rows over attn_k's."""
    q = next((r["shape"][-2] for r in rows if r["role"] == "attn_q" and len(r["shape"]) > 1),
             None)
    k = next((r["shape"][-2] for r in rows if r["role"] == "attn_k" and len(r["shape"]) > 1),
             None)
    return q // k if q and k else 1


def quantized(row, gguf_names=None) -> bool:
    """llama.cpp quantizes 2-D (and 3-D) weights, not norms, not 1-D tensors (a [1, n] tensor
    is 1-D to ggml); with the GGUF names ({name: GGUF name or None}), only tensors the GGUF has
    and llama-quantize quantizes (tensor_allows_quantization: not BERT's position and
    token-type embeddings, not an MoE's router, ...)."""
    dims = llama_quantize.ggml_dims(row["shape"])
    if dims < 2 or row["role"] == "norm":
        return False
    if gguf_names is None:
        return True
    gguf = gguf_names.get(row["name"])
    return gguf is not None and llama_quantize.quantizes(gguf, dims)


def _order(row, gguf_name):
    """llama.cpp's weight_name_comparer: block number (-1 outside blocks), then name."""
    if gguf_name is not None:
        match = _BLOCK.match(gguf_name)
        return (int(match.group(1)) if match else -1, gguf_name)
    return (-1 if row["layer"] is None else row["layer"], row["name"])


class _Model:
    """What llama-quant.cpp reads from the model's hparams and counts before it assigns."""

    def __init__(self, rows, cats, gguf_names, block_count):
        self.gqa = n_gqa(rows)
        names = (gguf_names or {}).values()
        self.tied = "output.weight" not in names if gguf_names is not None else \
            not any(c == "output" for c in cats.values())
        self.experts = max((r["shape"][0] for r in rows if len(r["shape"]) == 3
                            and cats[r["name"]].startswith("ffn_")), default=0)
        layers = [r["layer"] for r in rows if r["layer"] is not None]
        self.n_layer = block_count if block_count else \
            (max(layers) + 1 if layers else sum(1 for c in cats.values() if c == "ffn_down"))
        self.n_attention_v = sum(1 for c in cats.values() if c in ATTN_V_LIKE)
        self.i_attention_v = self.i_ffn_down = 0


def assign(rows, preset, gguf_names=None, block_count=None) -> dict:
    """{tensor name: type} for the quantized tensors under `preset` (others stay as they are);
    gguf_names as for `quantized`; block_count the model's blocks (None: from the layers)."""
    if preset not in FTYPES:
        raise QuantcalcError(f"unknown preset {preset}; llama.cpp's K presets are "
                             f"{', '.join(FTYPES)}", "preset")
    names = gguf_names or {}
    rows = sorted((r for r in rows if quantized(r, gguf_names)),
                  key=lambda r: _order(r, names.get(r["name"])))
    cats = {r["name"]: category(r, names.get(r["name"])) for r in rows}
    model = _Model(rows, cats, gguf_names, block_count)
    out = {}
    for row in rows:
        kind = _type_of(row, cats[row["name"]], preset, model, names.get(row["name"]))
        out[row["name"]] = ggml_fallback.type_for(kind, row["shape"][-1]) or STOPS
    return out


def _type_of(row, cat, preset, model, gguf_name):
    """llama_tensor_get_type_impl for the K presets: the type before the fallback."""
    base = BASE[preset]
    if cat == "output" or (model.tied and cat == "token_embd"):
        return "Q8_0" if row["shape"][-1] % ggml_fallback.block_of(base) else \
            base if base == "Q8_0" else "Q6_K"
    if cat in ATTN_V_LIKE:
        kind = _attention_v(preset, model)
        model.i_attention_v += 1
        return "Q8_0" if model.experts == 8 else kind
    if cat == "attn_k":
        return "Q8_0" if model.experts == 8 else base
    if cat == "ffn_down":
        i_layer = model.i_ffn_down
        if model.experts > 1:  # layer_info: the block number in the name
            match = _BLOCK.match(gguf_name or "")
            i_layer = int(match.group(1)) if match else row["layer"]
        model.i_ffn_down += 1
        return _ffn_down(preset, i_layer, model.n_layer) or base
    if cat == "attn_output":
        if model.experts == 8:
            return "Q5_K" if preset in _EIGHT_EXPERT_ATTN_OUTPUT else base
        return {"Q2_K": "Q3_K", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K"}.get(preset, base)
    return base


def _attention_v(preset, model):
    base, i, n = BASE[preset], model.i_attention_v, model.n_attention_v
    if preset == "Q2_K":
        return "Q4_K" if model.gqa >= 4 else "Q3_K"
    if preset == "Q3_K_M":
        return "Q5_K" if i < 2 else "Q4_K"
    if preset == "Q3_K_L":
        return "Q5_K"
    if preset in ("Q4_K_M", "Q5_K_M") and use_more_bits(i, n):
        return "Q6_K"
    if preset == "Q4_K_S" and i < 4:
        return "Q5_K"
    return base


def _ffn_down(preset, i_layer, n_layer):
    """The FFN-down type of the preset at this layer, or None for the base type."""
    if preset == "Q2_K":
        return "Q3_K"
    if preset == "Q3_K_M":
        return "Q5_K" if i_layer < n_layer // 16 else "Q4_K"
    if preset == "Q3_K_L":
        return "Q5_K"
    if preset in ("Q4_K_M", "Q5_K_M") and use_more_bits(i_layer, n_layer):
        return "Q6_K"
    if preset == "Q4_K_S" and i_layer < n_layer // 8:
        return "Q5_K"
    return None
