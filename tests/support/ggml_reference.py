"""ggml itself, through ctypes: the prebuilt libggml-base of the PyPI package libggml-python
(a test-only dependency). quantize(type, rows, imatrix) returns ggml's block bytes and their
reconstruction by the type's own to_float."""

import ctypes
from pathlib import Path

import numpy as np
import pytest

libggml = pytest.importorskip("libggml", reason="libggml-python is a test dependency")

TYPES = {"q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "q2_K": 10, "q3_K": 11,
         "q4_K": 12, "q5_K": 13, "q6_K": 14, "iq4_nl": 20, "iq4_xs": 23,
         # the types quantcalc only decodes (from a GGUF file), never makes; ggml aborts the
         # process when iq2_xxs, iq2_xs or iq1_s is quantized without an importance matrix
         "iq2_xxs": 16, "iq2_xs": 17, "iq3_xxs": 18, "iq1_s": 19, "iq3_s": 21, "iq2_s": 22,
         "iq1_m": 29, "tq1_0": 34, "tq2_0": 35, "mxfp4": 39, "nvfp4": 40}


class Traits(ctypes.Structure):
    _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                ("from_float_ref", ctypes.c_void_p)]


_lib = ctypes.CDLL(str(Path(libggml.__file__).parent / "lib64" / "libggml-base.so"))
_lib.ggml_get_type_traits.restype = ctypes.POINTER(Traits)
_lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
_lib.ggml_quantize_chunk.restype = ctypes.c_size_t
_lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                     ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                     ctypes.c_void_p]
_TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


def traits(name):
    return _lib.ggml_get_type_traits(TYPES[name]).contents


def quantize(name, rows, imatrix=None):
    """(block bytes, reconstruction float32 of the same shape) of ggml_quantize_chunk."""
    rows = np.ascontiguousarray(rows, np.float32)
    out = block_bytes(name, rows, imatrix)
    return out, dequantize(name, out).reshape(rows.shape)


def dequantize(name, blocks):
    """The type's own to_float of whole blocks (uint8 bytes): float32 values, flat."""
    info = traits(name)
    raw = np.ascontiguousarray(blocks, np.uint8).reshape(-1)
    back = np.empty(raw.size // info.type_size * info.blck_size, np.float32)  # all written
    _TO_FLOAT(info.to_float)(raw.ctypes.data, back.ctypes.data, back.size)
    return back


def block_bytes(name, rows, imatrix=None):
    """ggml_quantize_chunk's blocks of `rows` (float32, whole blocks per row) as bytes.

    The outputs are np.empty, not np.zeros: ggml writes every byte, and zero-filling 16 MB
    (calloc's memset once freed memory is kept, as the benchmark keeps it) would add 0.4 ms of
    numpy's work to what bench/ggml_speed.py reports as ggml's time."""
    x = np.ascontiguousarray(rows, np.float32)
    count, width = x.shape
    info = traits(name)
    out = np.empty(x.size // info.blck_size * info.type_size, np.uint8)
    weights = None if imatrix is None else np.ascontiguousarray(imatrix, np.float32)
    size = _lib.ggml_quantize_chunk(TYPES[name], x.ctypes.data, out.ctypes.data, 0, count, width,
                                    None if weights is None else weights.ctypes.data)
    assert size == out.size
    return out


def bits_per_value(name):
    info = traits(name)
    return info.type_size * 8 / info.blck_size


def _nibbles(qs):
    """16 bytes -> 32 codes: low nibbles are values 0..15, high nibbles 16..31."""
    return np.concatenate([qs & 0xF, qs >> 4], 1)


def _fifth_bits(qh):
    bits = qh.astype(np.uint32)
    word = bits[:, 0] | bits[:, 1] << 8 | bits[:, 2] << 16 | bits[:, 3] << 24
    return ((word[:, None] >> np.arange(32, dtype=np.uint32)) & 1).astype(np.uint8)


def _two_bit(qs):
    """K-quant 2-bit planes: per 128 values, 32 bytes hold values l, l+32, l+64, l+96."""
    out = []
    for half in range(qs.shape[1] // 32):
        q = qs[:, 32 * half:32 * (half + 1)]
        out += [(q >> shift) & 3 for shift in (0, 2, 4, 6)]
    return np.concatenate(out, 1)


def codes(name, blocks):
    """The per-value codes held in ggml's block bytes (the layouts of ggml-common.h)."""
    info = traits(name)
    b = blocks.reshape(-1, info.type_size)
    if name == "q8_0":
        return b[:, 2:].view(np.int8).astype(np.int64)
    if name in ("q4_0", "q4_1", "iq4_nl"):
        return _nibbles(b[:, -16:])
    if name == "iq4_xs":  # d, scales_h, scales_l[4], qs[128]: 16 bytes per 32 values
        return np.concatenate([_nibbles(b[:, 8 + 16 * i:24 + 16 * i]) for i in range(8)], 1)
    if name in ("q5_0", "q5_1"):
        qh = b[:, -20:-16]
        return _nibbles(b[:, -16:]) | (_fifth_bits(qh) << 4)
    if name == "q2_K":  # scales[16], qs[64], d, dmin
        return _two_bit(b[:, 16:80])
    if name == "q3_K":  # hmask[32], qs[64], scales[12], d
        high = ((b[:, :32][:, None, :] >> np.arange(8)[None, :, None]) & 1).reshape(-1, 256)
        return _two_bit(b[:, 32:96]) | (high << 2)
    if name == "q4_K":  # d, dmin (fp16), scales[12], qs[128]: 64 values per 32 bytes
        qs = b[:, 16:].reshape(-1, 4, 32)
        return np.concatenate([np.stack([qs[:, k] & 0xF, qs[:, k] >> 4], 1).reshape(-1, 64)
                               for k in range(4)], 1)
    if name == "q5_K":  # d, dmin, scales[12], qh[32], qs[128]
        qh, qs = b[:, 16:48], b[:, 48:].reshape(-1, 4, 32)
        out = []
        for k in range(4):
            low = (qs[:, k] & 0xF) | (((qh >> (2 * k)) & 1) << 4)
            high = (qs[:, k] >> 4) | (((qh >> (2 * k + 1)) & 1) << 4)
            out.append(np.concatenate([low, high], 1))
        return np.concatenate(out, 1)
    if name == "q6_K":  # ql[128], qh[64], scales[16], d
        out = []
        for half in range(2):
            ql, qh = b[:, 64 * half:64 * half + 64], b[:, 128 + 32 * half:128 + 32 * half + 32]
            out += [(ql[:, :32] & 0xF) | ((qh & 3) << 4), (ql[:, 32:] & 0xF) | (((qh >> 2) & 3) << 4),
                    (ql[:, :32] >> 4) | (((qh >> 4) & 3) << 4), (ql[:, 32:] >> 4) | (((qh >> 6) & 3) << 4)]
        return np.concatenate(out, 1)
    raise KeyError(name)
