"""Fused q/k/v projections on one side and separate ones on the other, compared part by part.

A checkpoint may hold q, k and v as one tensor (`attn_qkv` in a GGUF, `qkv_proj` in Phi-3's and
vLLM's layouts) where the other holds three. The fused tensor is the three stacked along rows
(q, then k, then v), so it is cut into three row ranges, each paired with its own tensor and
given its own SQNR: the row `blk.0.attn_qkv.weight[k]` is the fused tensor's k rows against
the original's k projection. Users compare q, k and v separately (the scan lists them so, and an
importance matrix weighs them alike), which one SQNR of the fused tensor would hide.

A row range of a tensor is its own bytes (a GGUF type quantizes along rows, a float tensor is
row-major), read by offset like any tensor. A fused tensor stored quantized in a safetensors
layer (with scales beside it) is not cut: it stays listed with the reason.
"""

import dataclasses

FUSED = (("attn_qkv", ("attn_q", "attn_k", "attn_v")),
         ("qkv_proj", ("q_proj", "k_proj", "v_proj")))
PARTS = ("q", "k", "v")


def rows(entry, first, count, label):
    """Rows first .. first + count of a 2-D TensorEntry (GGUF or float) as an entry."""
    total = int(entry.shape[0])
    per_row = entry.nbytes // total
    return dataclasses.replace(entry, name=f"{entry.name}[{label}]",
                               shape=(count, *entry.shape[1:]),
                               offset=entry.offset + first * per_row, nbytes=count * per_row)


def split_key(key):
    """(fused token, the part keys) when `key` names a fused qkv tensor, else None."""
    for token, parts in FUSED:
        if token in key:
            return [key.replace(token, part) for part in parts]
    return None


def fused_key(key):
    """(fused key, which part) when `key` names a separate q, k or v tensor, else None."""
    for token, parts in FUSED:
        for part, label in zip(parts, PARTS):
            if f"{part}." in key or key.endswith(part):
                return key.replace(part, token, 1), label
    return None


def cuttable(entry) -> bool:
    """A plain 2-D TensorEntry (not a quantized safetensors layer) whose rows are whole bytes."""
    shape = getattr(entry, "shape", ())
    return hasattr(entry, "offset") and len(shape) == 2 and int(shape[0]) > 0 \
        and entry.nbytes % int(shape[0]) == 0


def layout(fused, parts):
    """[(first row, rows)] of q, k, v in the fused entry, or None when the shapes disagree."""
    if not cuttable(fused) or any(p is None for p in parts):
        return None
    columns = tuple(int(n) for n in fused.shape[1:])
    if any(tuple(int(n) for n in p.shape[1:]) != columns or len(p.shape) != 2 for p in parts):
        return None
    sizes = [int(p.shape[0]) for p in parts]
    if sum(sizes) != int(fused.shape[0]):
        return None
    starts = [0, sizes[0], sizes[0] + sizes[1]]
    return list(zip(starts, sizes))
