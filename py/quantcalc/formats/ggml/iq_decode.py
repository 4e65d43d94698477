"""The values of stored GGUF blocks of the grid types (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S,
IQ3_XXS, IQ3_S), the ternary types (TQ1_0, TQ2_0) and the FP4 types (MXFP4, NVFP4).

One function per type, each over all blocks at once (blocks: uint8, one block to a row), each
following ggml-quants.c's `dequantize_row_<type>` and its numpy port in gguf-py (`gguf/quants.py`,
`<TYPE>.dequantize_blocks`, MIT licence). Every float32 product is taken in the order theirs
is, so the values are theirs bit for bit: -0.0, and the inf and NaN of a block whose fp16 scale
is damaged, included (decode.dequantize silences the warnings). The tests compare with both.

The grids, the sign table and the FP4 values come from iq_grids (generated from gguf-py); each is
unpacked into a numpy array the first time a block needs it, so importing costs no array work.
"""

import functools
from math import ceil, log2

import numpy as np

from quantcalc.formats.ggml import iq_grids

QK_K = 256  # values in a super-block: every type here but MXFP4 (32) and NVFP4 (64)
_EIGHT_BITS = np.arange(8, dtype=np.uint8)


@functools.cache
def grid(name: str) -> np.ndarray:
    """The grid `name` decodes with, float32 (rows, values per row): gguf-py's init_grid. Each
    grid value is an index into the type's levels, packed ceil(log2(levels)) bits wide from the
    least significant bits of each byte (IQ3's 3-bit indices take a nibble each)."""
    rows, width, levels, packed = iq_grids.GRIDS[name]
    bits = ceil(log2(len(levels)))
    shifts = np.arange(0, 8, 8 // (8 // bits), dtype=np.uint8)
    data = np.frombuffer(bytes.fromhex(packed), np.uint8).reshape(-1, 1)
    codes = (data >> shifts) & np.uint8((1 << bits) - 1)
    out = np.array(levels, np.float32)[codes].reshape(rows, width)
    out.setflags(write=False)  # one copy shared by every call
    return out


@functools.cache
def _ksigns() -> np.ndarray:
    return np.frombuffer(bytes.fromhex(iq_grids.KSIGNS_HEX), np.uint8)


@functools.cache
def _e2m1() -> np.ndarray:
    return np.array(iq_grids.E2M1_VALUES, np.float32)


@functools.cache
def _e8m0_half() -> np.ndarray:
    """MXFP4's scale byte -> half its power of two, float32: ggml_e8m0_to_fp32_half. Bytes 0 and 1
    are subnormal halves (2^-128, 2^-127) built from the mantissa; 255 is 2^127, not NaN."""
    x = np.arange(256, dtype=np.uint32)
    bits = np.where(x < 2, np.uint32(0x00200000) << x, (x - np.uint32(1)) << np.uint32(23))
    return bits.astype(np.uint32).view(np.float32)


@functools.cache
def _ue4m3_half() -> np.ndarray:
    """NVFP4's scale byte -> half its unsigned E4M3 value (bias 7), float32, as gguf-py's
    NVFP4.ue4m3_to_fp32: the top bit is ignored, 0x7F (E4M3's NaN) and 0 read as zero."""
    x = np.arange(256, dtype=np.uint32)
    exp, man = ((x >> 3) & 0xF).astype(np.int32), (x & 7).astype(np.float32)
    raw = np.where(exp == 0, np.ldexp(man, -9), np.ldexp(1 + man / 8, exp - 7)).astype(np.float32)
    return np.where((x == 0) | (x == 0x7F), np.float32(0), raw * np.float32(0.5))


def _f16(columns):
    """A little-endian fp16 field per block -> float32 (n, 1)."""
    return np.ascontiguousarray(columns).view("<f2").astype(np.float32)


def _words(columns, dtype):
    """Little-endian 16- or 32-bit words of each block (n, words)."""
    return np.ascontiguousarray(columns).view(dtype)


def _low_high(packed):
    """Each byte's low nibble then its high one: (n, k) -> (n, 2k), in byte order."""
    return ((packed[..., None] >> np.array([0, 4], np.uint8)) & np.uint8(0x0F)).reshape(
        packed.shape[0], -1)


def _signs(sign_bytes):
    """Bit j of each byte -> -1.0 if set else 1.0, float32 (..., 8): the sign of the byte's eight
    values (gguf-py's np.where, so the product's -0.0 is theirs)."""
    bits = (sign_bytes[..., None] >> _EIGHT_BITS) & np.uint8(1)
    return np.where(bits == 0, np.float32(1), np.float32(-1))


def _half_step_scales(d, scales, unit):
    """d * (0.5 + scale) * unit: the IQ2/IQ3_XXS sub-block scales (4-bit, odd halves of d)."""
    return d * (np.float32(0.5) + scales.astype(np.float32)) * np.float32(unit)


def _iq2_xxs(b):
    """66 bytes: fp16 d, then 8 groups of 32 values as two uint32 -- the first the 4 grid rows
    (one byte each, 8 values a row), the second four 7-bit sign indices into ksigns and a 4-bit
    scale on top (dequantize_row_iq2_xxs)."""
    n = b.shape[0]
    aux = _words(b[:, 2:], "<u4").reshape(n, 8, 2)
    db = _half_step_scales(_f16(b[:, :2]), aux[..., 1] >> 28, 0.25).reshape(n, 8, 1, 1)
    rows = grid("IQ2_XXS")[b[:, 2:].reshape(n, 8, 8)[..., :4]]
    sign_index = (aux[..., 1:] >> np.array([0, 7, 14, 21], np.uint32)) & np.uint32(0x7F)
    return (db * rows * _signs(_ksigns()[sign_index])).reshape(n, QK_K)


def _iq2_xs(b):
    """74 bytes: fp16 d, 32 uint16 (a 9-bit row of the 512-row grid, 7-bit sign index above),
    8 bytes of 4-bit scales, one per 16 values (dequantize_row_iq2_xs)."""
    n = b.shape[0]
    qs = _words(b[:, 2:66], "<u2")
    db = _half_step_scales(_f16(b[:, :2]), _low_high(b[:, 66:74]), 0.25).reshape(n, 16, 1, 1)
    rows = grid("IQ2_XS")[qs & np.uint16(511)].reshape(n, 16, 2, 8)
    signs = _signs(_ksigns()[qs >> 9]).reshape(n, 16, 2, 8)
    return (db * rows * signs).reshape(n, QK_K)


def _iq2_s(b):
    """82 bytes: fp16 d, 32 low bytes of 10-bit rows of the 1024-row grid, 32 bytes of plain
    sign bits, 8 bytes of the rows' top 2 bits, 8 bytes of 4-bit scales per 16 values
    (dequantize_row_iq2_s)."""
    n = b.shape[0]
    db = _half_step_scales(_f16(b[:, :2]), _low_high(b[:, 74:82]), 0.25).reshape(n, 16, 1, 1)
    high = (b[:, 66:74, None] >> np.array([0, 2, 4, 6], np.uint8)) & np.uint8(3)
    index = b[:, 2:34].astype(np.uint16) | (high.reshape(n, 32).astype(np.uint16) << 8)
    rows = grid("IQ2_S")[index].reshape(n, 16, 2, 8)
    return (db * rows * _signs(b[:, 34:66]).reshape(n, 16, 2, 8)).reshape(n, QK_K)


def _iq3_xxs(b):
    """98 bytes: fp16 d, 64 rows of the 256-row grid (4 values each), then one uint32 per 32
    values: four 7-bit sign indices into ksigns and a 4-bit scale on top
    (dequantize_row_iq3_xxs)."""
    n = b.shape[0]
    aux = _words(b[:, 66:98], "<u4")
    db = _half_step_scales(_f16(b[:, :2]), aux >> 28, 0.5).reshape(n, 8, 1, 1)
    rows = grid("IQ3_XXS")[b[:, 2:66]].reshape(n, 8, 4, 8)
    sign_index = (aux[..., None] >> np.array([0, 7, 14, 21], np.uint32)) & np.uint32(0x7F)
    return (db * rows * _signs(_ksigns()[sign_index])).reshape(n, QK_K)


def _iq3_s(b):
    """110 bytes: fp16 d, 64 low bytes of 9-bit rows of the 512-row grid (4 values each), 8
    bytes of their top bits, 32 bytes of sign bits, 4 bytes of 4-bit scales per 32 values:
    d * (1 + 2 * scale) (dequantize_row_iq3_s)."""
    n = b.shape[0]
    odd = (1 + 2 * _low_high(b[:, 106:110])).astype(np.float32)
    db = (_f16(b[:, :2]) * odd).reshape(n, 8, 1, 1)
    high = ((b[:, 66:74, None] >> _EIGHT_BITS) & np.uint8(1)).reshape(n, 64)
    index = b[:, 2:66].astype(np.uint16) | (high.astype(np.uint16) << 8)
    rows = grid("IQ3_S")[index].reshape(n, 8, 4, 8)
    return (db * rows * _signs(b[:, 74:106]).reshape(n, 8, 4, 8)).reshape(n, QK_K)


def _iq1_delta(flags):
    """IQ1's shift of a group's grid values: +delta where the flag is clear, -delta where set."""
    delta = np.float32(iq_grids.IQ1_DELTA)
    return np.where(flags == 0, delta, -delta)


def _iq1_s(b):
    """50 bytes: fp16 d, 32 low bytes of 11-bit rows of the 2048-row grid (values -1, 0, 1),
    then a uint16 per 32 values: the rows' top 3 bits (4 x 3), a 3-bit scale, the delta's
    sign. Value = d * (2 * scale + 1) * (grid + delta) (dequantize_row_iq1_s)."""
    n = b.shape[0]
    qh = _words(b[:, 34:50], "<u2")
    dl = (_f16(b[:, :2]) * (2 * ((qh >> 12) & np.uint16(7)) + 1)).reshape(n, 8, 1, 1)
    delta = _iq1_delta(qh & np.uint16(0x8000)).reshape(n, 8, 1, 1)
    high = (qh[..., None] >> np.array([0, 3, 6, 9], np.uint16)) & np.uint16(7)
    index = b[:, 2:34].astype(np.uint16) | (high.reshape(n, 32) << 8)
    rows = grid("IQ1_S")[index].reshape(n, 8, 4, 8)
    return (dl * (rows + delta)).reshape(n, QK_K)


def _iq1_m_scale(scales):
    """IQ1_M keeps no d field: its fp16 d is the top nibble of each of the 4 uint16 scale
    words, the first word's the lowest."""
    top = (scales & np.uint16(0xF000)) >> np.array([12, 8, 4, 0], np.uint16)
    d16 = top[:, 0] | top[:, 1] | top[:, 2] | top[:, 3]
    return d16.view("<f2").astype(np.float32).reshape(-1, 1)


def _iq1_m(b):
    """56 bytes: 32 low bytes of 11-bit rows of IQ1_S's grid, 16 bytes of a nibble per row (top
    3 bits, the delta's sign for its 8 values), 4 uint16 of four 3-bit scales per 16 values
    each, d in their top nibbles (dequantize_row_iq1_m)."""
    n = b.shape[0]
    scales = _words(b[:, 48:56], "<u2")
    three = (scales[..., None] >> np.array([0, 3, 6, 9], np.uint16)) & np.uint16(7)
    dl = (_iq1_m_scale(scales) * (2 * three.reshape(n, 16) + 1)).reshape(n, 8, 2, 1, 1)
    nibble = (b[:, 32:48, None] >> np.array([0, 4], np.uint8)).reshape(n, 32)
    index = b[:, :32].astype(np.uint16) | ((nibble & np.uint8(7)).astype(np.uint16) << 8)
    delta = _iq1_delta(nibble & np.uint8(8)).reshape(n, 8, 2, 2, 1)
    rows = grid("IQ1_S")[index].reshape(n, 8, 2, 2, 8)
    return (dl * (rows + delta)).reshape(n, QK_K)


def _trits(packed, count):
    """The `count` trits (0, 1, 2) of each byte, the first the most significant: TQ1_0 stores 5
    (or 4) trits as a fraction of 3^5 = 243 scaled to 256, so multiplying by 3^k (mod 256, uint8
    arithmetic as in ggml) brings trit k to the top, and (x * 3) >> 8 reads it."""
    powers = np.array([1, 3, 9, 27, 81][:count], np.uint8).reshape(count, 1)
    shifted = packed[:, None, :] * powers
    return ((shifted.astype(np.uint16) * 3) >> 8).reshape(packed.shape[0], -1)


def _tq1_0(b):
    """54 bytes: 48 bytes of 5 trits (32 bytes then 16, each run trit-major), 4 bytes of 4
    trits, fp16 d; value = d * (trit - 1) (dequantize_row_tq1_0)."""
    trits = np.concatenate([_trits(b[:, :32], 5), _trits(b[:, 32:48], 5), _trits(b[:, 48:52], 4)],
                           axis=1)
    return _f16(b[:, 52:54]) * (trits.astype(np.int8) - np.int8(1)).astype(np.float32)


def _tq2_0(b):
    """66 bytes: 64 bytes of 2-bit codes (4 runs of 32 values per 32 bytes, lowest bits first),
    fp16 d; value = d * (code - 1) (dequantize_row_tq2_0)."""
    n = b.shape[0]
    codes = (b[:, :64].reshape(n, 2, 1, 32) >> np.array([0, 2, 4, 6], np.uint8).reshape(4, 1))
    ternary = (codes & np.uint8(3)).reshape(n, QK_K).astype(np.int8) - np.int8(1)
    return _f16(b[:, 64:66]) * ternary.astype(np.float32)


def _mxfp4(b):
    """17 bytes: an E8M0 scale, 16 bytes of E2M1 codes (low nibbles the first 16 values). The
    values are kept doubled, so the scale is halved (dequantize_row_mxfp4)."""
    codes = _low_high_runs(b[:, 1:17])
    return _e8m0_half()[b[:, :1]] * _e2m1()[codes]


def _nvfp4(b):
    """36 bytes: 4 unsigned-E4M3 scales, one per 16 values, then 4 runs of 8 bytes of E2M1
    codes (low nibbles the first 8 values of the run); values doubled, scales halved
    (dequantize_row_nvfp4)."""
    n = b.shape[0]
    codes = _low_high_runs(b[:, 4:36].reshape(n * 4, 8)).reshape(n, 4, 16)
    return (_ue4m3_half()[b[:, :4]].reshape(n, 4, 1) * _e2m1()[codes]).reshape(n, 64)


def _low_high_runs(packed):
    """A run of bytes' low nibbles, then the same bytes' high nibbles (ggml's 4-bit packing)."""
    nibbles = packed[:, None, :] >> np.array([0, 4], np.uint8).reshape(2, 1)
    return (nibbles & np.uint8(0x0F)).reshape(packed.shape[0], -1)


DECODERS = {"IQ2_XXS": _iq2_xxs, "IQ2_XS": _iq2_xs, "IQ2_S": _iq2_s, "IQ3_XXS": _iq3_xxs,
            "IQ3_S": _iq3_s, "IQ1_S": _iq1_s, "IQ1_M": _iq1_m, "TQ1_0": _tq1_0, "TQ2_0": _tq2_0,
            "MXFP4": _mxfp4, "NVFP4": _nvfp4}
