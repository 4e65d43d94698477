"""llama.cpp's block bytes of a quantization made by formats/ggml/types.py: the bytes
ggml_quantize_chunk writes for the same rows (the layouts of ggml-common.h, packed as
ggml-quants.c's quantize_row_*_ref and *_impl pack them).

The audit (quantcalc audit) quantizes a tensor's original values the way llama-quantize would
and compares these bytes with the blocks a GGUF file stores: equal bytes mean the file was made
from these values by llama.cpp's own arithmetic with no importance matrix (or with the one
given). tests/formats/test_ggml_encode.py checks every type against ggml's bytes, with and
without an importance matrix.
"""

import numpy as np

QK, QK_K = 32, 256
TYPES = ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k",
         "iq4_nl", "iq4_xs")


def _half(values, count):
    """fp16 fields (float32 holding fp16 values) as their 2 bytes each, one row per block."""
    return np.asarray(values, np.float32).reshape(count).astype("<f2").view(np.uint8) \
        .reshape(count, 2)


def _nibbles(codes):
    """(blocks, 32) codes 0..15 -> 16 bytes: value j in the low nibble, j + 16 in the high."""
    c = codes.astype(np.uint8)
    return c[:, :16] | (c[:, 16:] << 4)


def _fifth_bits(codes):
    """Q5_0 / Q5_1 qh: bit j of a little-endian uint32 holds bit 4 of value j."""
    bits = (codes.astype(np.uint32) >> 4) & 1
    word = np.bitwise_or.reduce(bits << np.arange(32, dtype=np.uint32), axis=1)
    return word.astype("<u4").view(np.uint8).reshape(-1, 4)


def _legacy(name, q):
    codes = q.codes.reshape(-1, QK)
    count = codes.shape[0]
    parts = [_half(q.scales, count)]
    if name in ("q4_1", "q5_1"):
        parts.append(_half(q.bases, count))
    if name == "q8_0":
        parts.append(codes.astype(np.int8).view(np.uint8))
    else:
        if name in ("q5_0", "q5_1"):
            parts.append(_fifth_bits(codes))
        parts.append(_nibbles(codes & 0xF))
    return np.concatenate(parts, axis=1)


def _planes(codes, shift_bits):
    """Values l, l+32, l+64, l+96 of each 128 in one byte, `shift_bits` apart (Q2_K, Q3_K)."""
    c = codes.astype(np.uint8).reshape(codes.shape[0], -1, 4, 32)
    out = c[:, :, 0] | (c[:, :, 1] << shift_bits) | (c[:, :, 2] << 2 * shift_bits) \
        | (c[:, :, 3] << 3 * shift_bits)
    return out.reshape(codes.shape[0], -1)


def _q2_k(q, supers):
    f = q.fields
    scales = (f["ls"].astype(np.uint8) | (f["lm"].astype(np.uint8) << 4)).reshape(supers, 16)
    codes = q.codes.reshape(supers, QK_K)
    return np.concatenate([scales, _planes(codes, 2), _half(f["d"], supers),
                           _half(f["dmin"], supers)], axis=1)


def _q3_k(q, supers):
    f = q.fields
    ls = f["ls"].astype(np.uint8).reshape(supers, 16)
    scales = np.zeros((supers, 12), np.uint8)
    scales[:, :8] = ls[:, :8] & 0xF
    scales[:, :8] |= (ls[:, 8:] & 0xF) << 4
    high = ls >> 4
    for j in range(16):
        scales[:, 8 + j % 4] |= high[:, j] << (2 * (j // 4))
    codes = q.codes.reshape(supers, QK_K).astype(np.uint8)
    top = (codes > 3).reshape(supers, 8, 32)  # value 32 m + k -> bit m of hmask[k]
    hmask = np.bitwise_or.reduce(top.astype(np.uint8) << np.arange(8, dtype=np.uint8)[None, :,
                                                                                          None],
                                 axis=1)
    return np.concatenate([hmask, _planes(codes & 3, 2), scales, _half(f["d"], supers)], axis=1)


def _k_scales(ls, lm, supers):
    """Q4_K / Q5_K: eight 6-bit scales and mins in 12 bytes (get_scale_min_k4's layout)."""
    ls, lm = ls.astype(np.uint8).reshape(supers, 8), lm.astype(np.uint8).reshape(supers, 8)
    scales = np.zeros((supers, 12), np.uint8)
    scales[:, :4], scales[:, 4:8] = ls[:, :4], lm[:, :4]
    scales[:, 8:] = (ls[:, 4:] & 0xF) | ((lm[:, 4:] & 0xF) << 4)
    scales[:, :4] |= (ls[:, 4:] >> 4) << 6
    scales[:, 4:8] |= (lm[:, 4:] >> 4) << 6
    return scales


def _halves_of_64(codes):
    """Values l and l + 32 of each 64 in one byte (low, high nibble): 32 bytes per 64."""
    c = codes.astype(np.uint8).reshape(codes.shape[0], -1, 2, 32)
    return (c[:, :, 0] | (c[:, :, 1] << 4)).reshape(codes.shape[0], -1)


def _q4_k(q, supers):
    f = q.fields
    codes = q.codes.reshape(supers, QK_K)
    return np.concatenate([_half(f["d"], supers), _half(f["dmin"], supers),
                           _k_scales(f["ls"], f["lm"], supers), _halves_of_64(codes)], axis=1)


def _q5_k(q, supers):
    f = q.fields
    codes = q.codes.reshape(supers, QK_K).astype(np.uint8)
    high = (codes >> 4).reshape(supers, 8, 32)  # value 32 m + k -> bit m of qh[k]
    qh = np.bitwise_or.reduce(high << np.arange(8, dtype=np.uint8)[None, :, None], axis=1)
    return np.concatenate([_half(f["d"], supers), _half(f["dmin"], supers),
                           _k_scales(f["ls"], f["lm"], supers), qh,
                           _halves_of_64(codes & 0xF)], axis=1)


def _q6_k(q, supers):
    f = q.fields
    c = q.codes.reshape(supers, 2, 4, 32).astype(np.uint8)  # [half][quarter][l]
    low, high = c & 0xF, c >> 4
    ql = np.stack([low[:, :, 0] | (low[:, :, 2] << 4), low[:, :, 1] | (low[:, :, 3] << 4)],
                  axis=2).reshape(supers, 128)
    qh = (high[:, :, 0] | (high[:, :, 1] << 2) | (high[:, :, 2] << 4) | (high[:, :, 3] << 6)) \
        .reshape(supers, 64)
    scales = f["sc"].astype(np.int8).view(np.uint8).reshape(supers, 16)
    return np.concatenate([ql, qh, scales, _half(f["d"], supers)], axis=1)


def _iq4_nl(q, blocks):
    return np.concatenate([_half(q.fields["d"], blocks), _nibbles(q.codes.reshape(blocks, QK))],
                          axis=1)


def _iq4_xs(q, supers):
    ls = q.fields["ls"].astype(np.uint16).reshape(supers, 8)
    low = (ls & 0xF).astype(np.uint8)
    scales_l = low[:, 0::2] | (low[:, 1::2] << 4)
    scales_h = np.bitwise_or.reduce((ls >> 4) << (2 * np.arange(8, dtype=np.uint16)), axis=1)
    qs = _nibbles(q.codes.reshape(-1, QK)).reshape(supers, 128)
    return np.concatenate([_half(q.fields["d"], supers),
                           scales_h.astype("<u2").view(np.uint8).reshape(supers, 2), scales_l,
                           qs], axis=1)


_SUPER = {"q2_k": _q2_k, "q3_k": _q3_k, "q4_k": _q4_k, "q5_k": _q5_k, "q6_k": _q6_k,
          "iq4_xs": _iq4_xs}


def block_bytes(name: str, quantized) -> np.ndarray:
    """The bytes of every block of `quantized` (types.quantize(name, rows, ...)), flat, in the
    order ggml writes them (block after block, row after row)."""
    if name not in TYPES:
        raise ValueError(f"no block layout for {name}")
    values = quantized.codes.size
    if name in _SUPER:
        out = _SUPER[name](quantized, values // QK_K)
    elif name == "iq4_nl":
        out = _iq4_nl(quantized, values // QK)
    else:
        out = _legacy(name, quantized)
    return np.ascontiguousarray(out, np.uint8).reshape(-1)
