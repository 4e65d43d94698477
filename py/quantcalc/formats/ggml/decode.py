"""GGUF's stored types: their sizes, and the values of already-quantized tensors.

A model scan lists a GGUF's quantized tensors beside its float ones; their originals are gone, but
their dequantized values still say what the tensor looks like (range, outliers, kurtosis). The
block layouts and dequantization follow ggml (`dequantize_row_*` in ggml-quants.c) and
llama.cpp's numpy port (gguf-py `gguf/quants.py`, MIT licence), which the tests compare against.
The grid (IQ1/IQ2/IQ3), ternary (TQ1_0, TQ2_0) and FP4 (MXFP4, NVFP4) types are decoded in
iq_decode; types without a decoder (Q8_1, Q8_K, Q1_0) are listed with their size only.
"""

import numpy as np

from quantcalc.formats.ggml import iq_decode

QK_K = 256
# ggml type number: (name, values per block, bytes per block), as ggml's ggml-common.h sizes them
# (Q8_1 is 2 halves + 32 codes = 36 bytes there; gguf-py 0.19's table still says 40)
TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}
# types llama.cpp no longer reads from GGUF files (gguf.cpp refuses them): names for messages
REMOVED = {4: "Q4_2", 5: "Q4_3", 31: "Q4_0_4_4", 32: "Q4_0_4_8", 33: "Q4_0_8_8",
           36: "IQ4_NL_4_4", 37: "IQ4_NL_4_8", 38: "IQ4_NL_8_8"}
IQ4_VALUES = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113],
                      np.float32)


def type_name(ggml_type: int) -> str:
    """llama.cpp's name of the type (Q4_K), or "ggml type 99" for a number it does not name."""
    if ggml_type in TYPES:
        return TYPES[ggml_type][0]
    return REMOVED.get(ggml_type) or f"ggml type {ggml_type}"


def unreadable(ggml_type: int) -> str:
    """Why tensors stored as `ggml_type` (one without a decoder here) cannot be read, naming
    the type."""
    name = type_name(ggml_type)
    if ggml_type in REMOVED:
        return f"stored as {name} (ggml type {ggml_type}), a type llama.cpp no longer reads"
    if ggml_type not in TYPES:
        return f"stored as ggml type {ggml_type}, which quantcalc does not know"
    return f"stored as {name} (ggml type {ggml_type}), which quantcalc cannot decode"


def bits_per_value(ggml_type: int):
    if ggml_type not in TYPES:
        return None
    _, values, size = TYPES[ggml_type]
    return 8.0 * size / values


def nbytes(ggml_type: int, shape):
    """Bytes of a tensor of `shape` (numpy order) stored as `ggml_type`; None if unknown or the
    rows do not hold whole blocks."""
    if ggml_type not in TYPES:
        return None
    _, values, size = TYPES[ggml_type]
    count = 1
    for n in shape:
        count *= int(n)
    row = int(shape[-1]) if shape else 1
    if row % values:
        return None
    return count // values * size


def can_dequantize(ggml_type: int) -> bool:
    return type_name(ggml_type) in _DECODERS


def dequantize(raw: np.ndarray, ggml_type: int) -> np.ndarray:
    """float32 values of whole blocks of `ggml_type` stored in the uint8 array `raw`."""
    name, _, size = TYPES[ggml_type]
    blocks = np.ascontiguousarray(raw).reshape(-1, size)
    # damaged blocks (an fp16 scale of inf or NaN) decode to inf and NaN, without a warning:
    # the values are then refused as not finite, naming where
    with np.errstate(over="ignore", invalid="ignore"):
        return _DECODERS[name](blocks).reshape(-1)


def _f16(column_bytes):
    return column_bytes.copy().view(np.float16).astype(np.float32)


def _nibbles(qs, half):
    """Low nibbles then high nibbles of each run of `half` bytes: ggml's 4-bit packing."""
    n = qs.shape[0]
    low = qs.reshape(n, -1, 1, half) >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)
    return (low & np.uint8(0x0F)).reshape(n, -1)


def _bits(packed, count):
    """Bit i of a little-endian bit field, for i < count, per block."""
    return np.unpackbits(packed, axis=-1, bitorder="little")[:, :count]


def _q4_0(b):
    return _f16(b[:, :2]) * (_nibbles(b[:, 2:], 16).astype(np.float32) - 8)


def _q4_1(b):
    return _f16(b[:, :2]) * _nibbles(b[:, 4:], 16).astype(np.float32) + _f16(b[:, 2:4])


def _q5(b, offset):
    q = _nibbles(b[:, offset + 4:], 16) | (_bits(b[:, offset:offset + 4], 32) << np.uint8(4))
    return q.astype(np.float32)


def _q5_0(b):
    return _f16(b[:, :2]) * (_q5(b, 2) - 16)


def _q5_1(b):
    return _f16(b[:, :2]) * _q5(b, 4) + _f16(b[:, 2:4])


def _q8_0(b):
    return _f16(b[:, :2]) * b[:, 2:].view(np.int8).astype(np.float32)


def _q2_k(b):
    n = b.shape[0]
    scales, qs = b[:, :16], b[:, 16:80]
    d, dmin = _f16(b[:, 80:82]), _f16(b[:, 82:84])
    dl = (d * (scales & 0xF).astype(np.float32)).reshape(n, 16, 1)
    ml = (dmin * (scales >> 4).astype(np.float32)).reshape(n, 16, 1)
    q = (qs.reshape(n, -1, 1, 32) >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 4, 1)) & 3
    return dl * q.reshape(n, 16, 16).astype(np.float32) - ml


def _q3_k(b):
    n = b.shape[0]
    hmask, qs, packed, d = b[:, :32], b[:, 32:96], b[:, 96:108], _f16(b[:, 108:110])
    low = (packed[:, :8].reshape(n, 1, 8) >> np.array([0, 4], np.uint8).reshape(1, 2, 1))
    high = (packed[:, 8:].reshape(n, 1, 4) >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 4, 1))
    scales = (low.reshape(n, 16) & 0x0F) | ((high.reshape(n, 16) & 0x03) << np.uint8(4))
    dl = (d * (scales.astype(np.int8) - 32).astype(np.float32)).reshape(n, 16, 1)
    ql = (qs.reshape(n, -1, 1, 32) >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 4, 1)) & 3
    qh = (hmask.reshape(n, -1, 1, 32) >> np.arange(8, dtype=np.uint8).reshape(1, 1, 8, 1)) & 1
    # a set high bit means no offset; a clear one subtracts 4
    q = ql.reshape(n, 16, 16).astype(np.int8) - ((qh.reshape(n, 16, 16) ^ 1) << 2).astype(np.int8)
    return dl * q.astype(np.float32)


def _k_scales(packed):
    """Q4_K/Q5_K's eight 6-bit scales and mins packed in 12 bytes."""
    n = packed.shape[0]
    d, m, m_d = np.split(packed.reshape(n, 3, 4), 3, axis=-2)
    sc = np.concatenate([d & 0x3F, (m_d & 0x0F) | ((d >> 2) & 0x30)], axis=-1).reshape(n, 8)
    mins = np.concatenate([m & 0x3F, (m_d >> 4) | ((m >> 2) & 0x30)], axis=-1).reshape(n, 8)
    return sc.astype(np.float32), mins.astype(np.float32)


def _q4_k(b):
    n = b.shape[0]
    d, dmin = _f16(b[:, :2]), _f16(b[:, 2:4])
    sc, mins = _k_scales(b[:, 4:16])
    q = _nibbles(b[:, 16:], 32).reshape(n, 8, 32).astype(np.float32)
    return (d * sc).reshape(n, 8, 1) * q - (dmin * mins).reshape(n, 8, 1)


def _q5_k(b):
    n = b.shape[0]
    d, dmin = _f16(b[:, :2]), _f16(b[:, 2:4])
    sc, mins = _k_scales(b[:, 4:16])
    qh = (b[:, 16:48].reshape(n, -1, 1, 32) >> np.arange(8, dtype=np.uint8).reshape(1, 1, 8, 1))
    q = _nibbles(b[:, 48:], 32).reshape(n, 8, 32) | ((qh.reshape(n, 8, 32) & 1) << np.uint8(4))
    return (d * sc).reshape(n, 8, 1) * q.astype(np.float32) - (dmin * mins).reshape(n, 8, 1)


def _q6_k(b):
    n = b.shape[0]
    ql, qh, scales, d = b[:, :128], b[:, 128:192], b[:, 192:208], _f16(b[:, 208:210])
    dl = (d * scales.view(np.int8).astype(np.float32)).reshape(n, 16, 1)
    low = _nibbles(ql, 64).reshape(n, -1, 32)
    high = (qh.reshape(n, -1, 1, 32) >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 4, 1)) & 3
    q = (low | (high.reshape(n, -1, 32) << np.uint8(4))).astype(np.int8) - 32
    return dl * q.reshape(n, 16, 16).astype(np.float32)


def _iq4_nl(b):
    return _f16(b[:, :2]) * IQ4_VALUES[_nibbles(b[:, 2:], 16)]


def _iq4_xs(b):
    n = b.shape[0]
    d = _f16(b[:, :2])
    high = b[:, 2:4].copy().view(np.uint16).reshape(n, 1) >> (2 * np.arange(8, dtype=np.uint16))
    low = (b[:, 4:8].reshape(n, -1, 1) >> np.array([0, 4], np.uint8).reshape(1, 1, 2)) & 0x0F
    scales = (low.reshape(n, 8) | ((high.astype(np.uint8) & 3) << np.uint8(4))).astype(np.int8)
    dl = (d * (scales - 32).astype(np.float32)).reshape(n, 8, 1)
    return dl * IQ4_VALUES[_nibbles(b[:, 8:], 16).reshape(n, 8, 32)]


_DECODERS = {"Q4_0": _q4_0, "Q4_1": _q4_1, "Q5_0": _q5_0, "Q5_1": _q5_1, "Q8_0": _q8_0,
             "Q2_K": _q2_k, "Q3_K": _q3_k, "Q4_K": _q4_k, "Q5_K": _q5_k, "Q6_K": _q6_k,
             "IQ4_NL": _iq4_nl, "IQ4_XS": _iq4_xs, **iq_decode.DECODERS}
