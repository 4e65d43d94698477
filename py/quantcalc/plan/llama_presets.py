"""llama.cpp's mixed presets (Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K): which type each tensor
gets, by the rules of `llama_tensor_get_type_impl` in llama.cpp's src/llama-quant.cpp (standard
architectures, not Falcon, no experts; 70B's attn_v bump is left out), so a plan can be set beside
them at equal size.

Tensors are recognised by their role (tensor_roles.layer_and_role: GGUF and Hugging Face names);
attention-value and FFN-down tensors are counted in file order as llama.cpp counts them. A type
whose block does not divide a tensor's rows falls back as llama.cpp's tensor_type_fallback does
(formats/ggml/fallback.py decides it, for the scan too); where llama-quantize has no fallback it
stops, and the tensor's type is STOPS.
"""

from quantcalc.errors import QuantcalcError
from quantcalc.formats.ggml import fallback as ggml_fallback
from quantcalc.plan import llama_quantize

# llama.cpp's mixed file types (LLAMA_FTYPE_MOSTLY_*), named as llama-quantize takes them
FTYPES = ("Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M",
           "Q6_K")
BASE = {"Q2_K": "Q2_K", "Q3_K_S": "Q3_K", "Q3_K_M": "Q3_K", "Q3_K_L": "Q3_K", "Q4_K_S": "Q4_K",
        "Q4_K_M": "Q4_K", "Q5_K_S": "Q5_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K"}
STOPS = "stops"  # a tensor llama-quantize stops on: its type has no fallback for its rows


def use_more_bits(i_layer, n_layers):
    """llama.cpp's choice of layers that get more bits: the first and last eighth, and every
    third layer in between."""
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 \
        or (i_layer - n_layers // 8) % 3 == 2


def n_gqa(rows):
    """Query heads per key-value head, from the shapes: attn_q's rows over attn_k's."""
    q = next((r["shape"][0] for r in rows if r["role"] == "attn_q" and r["shape"]), None)
    k = next((r["shape"][0] for r in rows if r["role"] == "attn_k" and r["shape"]), None)
    return q // k if q and k else 1


def quantized(row, gguf_names=None) -> bool:
    """llama.cpp quantizes 2-D (and 3-D) weights, not norms, not 1-D tensors; with the GGUF
    names ({name: GGUF name or None}), only tensors the GGUF has and llama-quantize quantizes
    (tensor_allows_quantization: not BERT's position and token-type embeddings, ...)."""
    if len(row["shape"]) < 2 or row["role"] == "norm":
        return False
    if gguf_names is None:
        return True
    gguf = gguf_names.get(row["name"])
    return gguf is not None and llama_quantize.quantizes(gguf, len(row["shape"]))


def assign(rows, preset, gguf_names=None) -> dict:
    """{tensor name: type} for the quantized tensors under `preset` (others stay as they are);
    gguf_names as for `quantized`."""
    if preset not in FTYPES:
        raise QuantcalcError(f"unknown preset {preset}; llama.cpp's K presets are "
                             f"{', '.join(FTYPES)}", "preset")
    base = BASE[preset]
    rows = [r for r in rows if quantized(r, gguf_names)]
    gqa = n_gqa(rows)
    tied = not any(r["role"] == "output" for r in rows)
    n_attention_v = sum(1 for r in rows if r["role"] in ("attn_v", "attn_qkv"))
    n_ffn_down = sum(1 for r in rows if r["role"] == "ffn_down")
    i_attention_v = i_ffn_down = 0
    out = {}
    for row in rows:
        role, kind = row["role"], base
        if role == "output" or (tied and role == "embed"):
            kind = "Q8_0" if row["shape"][-1] % ggml_fallback.block_of(base) else "Q6_K"
        elif role in ("attn_v", "attn_qkv"):  # llama.cpp's category_is_attn_v takes both
            if preset == "Q2_K":
                kind = "Q4_K" if gqa >= 4 else "Q3_K"
            elif preset == "Q3_K_M":
                kind = "Q5_K" if i_attention_v < 2 else "Q4_K"
            elif preset == "Q3_K_L":
                kind = "Q5_K"
            elif preset in ("Q4_K_M", "Q5_K_M") and use_more_bits(i_attention_v, n_attention_v):
                kind = "Q6_K"
            elif preset == "Q4_K_S" and i_attention_v < 4:
                kind = "Q5_K"
            i_attention_v += 1
        elif role == "ffn_down":
            # without experts llama.cpp's layer_info is the running count, not the name's number
            i_layer, n_layer = i_ffn_down, n_ffn_down
            if preset == "Q2_K":
                kind = "Q3_K"
            elif preset == "Q3_K_M":
                kind = "Q5_K" if i_layer < n_layer // 16 else "Q4_K"
            elif preset == "Q3_K_L":
                kind = "Q5_K"
            elif preset in ("Q4_K_M", "Q5_K_M"):
                if use_more_bits(i_layer, n_layer):
                    kind = "Q6_K"
            elif preset == "Q4_K_S" and i_layer < n_layer // 8:
                kind = "Q5_K"
            i_ffn_down += 1
        elif role == "attn_o":
            kind = {"Q2_K": "Q3_K", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K"}.get(preset, base)
        out[row["name"]] = ggml_fallback.type_for(kind, row["shape"][-1]) or STOPS
    return out
