"""The stored codes and scales a tool makes of a weight with a min-max rule, computed as the tool
computes them, so that the audit can say whether a file holds exactly that (audit/
reproduce_stored.py):

- compressed-tensors' min-max observer and quantizer (what llm-compressor's
  QuantizationModifier writes; compressed-tensors 0.20 `calculate_qparams`, `_quantize`,
  `round_to_quantized_type_args`): min and max of each block widened to include 0; symmetric
  scale = max(|min|, |max|) / (range / 2) (int4: / 7.5, FP8: / 448), asymmetric
  scale = (max - min) / range and zero point = round(clamp(q_min - min / scale)) as int8; a zero
  scale becomes the scale type's eps; codes = round(clamp(x / scale + zero_point, q_min, q_max))
  (round half to even) or for FP8 a cast to E4M3 of the clamped value;
- DeepSeek-V3's FP8 (inference/kernel.py `act_quant`, the rule its weight scales follow):
  s = amax / 448 per tile in float32, codes = E4M3(x / s), nothing clamped.

Every operation runs in the weight's float type as torch runs it: float32, or bf16 / f16 as a
float32 result rounded once to that type (exact for + - x / of bf16 and f16 operands, whose
float32 results are correctly rounded with 2p + 2 bits to spare).
"""

import numpy as np

from quantcalc.formats.float_grids import FLOAT_GRIDS
from quantcalc.formats.stored import blocks

E4M3 = FLOAT_GRIDS["fp8_e4m3"]
EPS = {"F32": float(np.finfo(np.float32).eps), "BF16": 2.0 ** -7, "F16": 2.0 ** -10}


def bf16(values):
    """float32 values rounded to bfloat16 (to nearest even, as torch casts), as float32."""
    bits = np.ascontiguousarray(values, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(values), np.float32(np.nan), out)


def rounder(dtype: str):
    """The rounding of a float32 result to the weight's type (`F32`, `BF16`, `F16`)."""
    if dtype == "BF16":
        return bf16
    if dtype == "F16":
        return lambda v: np.asarray(v, np.float32).astype(np.float16).astype(np.float32)
    return lambda v: np.asarray(v, np.float32)


def block_range(values, block):
    """(min, max) of each block, shape (block rows, block columns); a short last block's
    padding (zeros) changes neither, as compressed-tensors' observer widens every range to
    include 0."""
    tiled = blocks.tiles(blocks.padded(values, block)[0], block)
    return tiled.min(axis=(1, 3)), tiled.max(axis=(1, 3))


def spread(per_block, block, shape):
    """A per-block array laid over every value of a (rows, columns) weight."""
    height, width = block
    full = np.repeat(np.repeat(per_block, height, axis=0), width, axis=1)
    return full[:shape[0], :shape[1]]


def e4m3_bytes(values):
    """float32 values cast to FP8 E4M3FN bytes as torch and ml_dtypes cast them: to nearest
    even, |x| from 464 on and NaN to NaN (0x7F with the sign)."""
    values = np.asarray(values, np.float32)
    nan = np.isnan(values) | (np.abs(values) >= 464)
    with np.errstate(invalid="ignore"):
        rounded, _ = E4M3.round(np.where(nan, 0, values).astype(np.float64))
    codes = E4M3.encode(np.where(np.signbit(values), -np.abs(rounded), rounded))
    codes = np.where(nan, 0x7F | (np.signbit(values).astype(np.int64) << 7), codes)
    return codes.astype(np.uint8)


def minmax_qparams(low, high, args, dtype):
    """compressed-tensors' calculate_qparams: (scale, zero point or None) from each block's
    `low` and `high` (float32 arrays holding `dtype` values)."""
    r = rounder(dtype)
    low = np.minimum(low, np.float32(0)).astype(np.float32)
    high = np.maximum(high, np.float32(0)).astype(np.float32)
    q_min, q_max = code_range(args)
    span = np.float32(r(np.float32(q_max - q_min)))
    zero = None
    with np.errstate(divide="ignore", invalid="ignore"):
        if args.symmetric:
            scale = r(np.maximum(np.abs(low), np.abs(high)) / r(span / np.float32(2)))
        else:
            scale = r((r(high - low)) / span)
            zero = r(np.float32(q_min) - r(low / scale))
            zero = np.clip(zero, q_min, q_max)
            zero = np.rint(np.clip(np.nan_to_num(zero), -128, 127)).astype(np.int16)
    scale = np.where(scale == 0, np.float32(EPS.get(dtype, EPS["F32"])), scale)
    return scale.astype(np.float32), zero


def code_range(args):
    """(q_min, q_max) of compressed-tensors' _calculate_range for int or FP8 codes."""
    if args.type == "float":
        return -448.0, 448.0
    half = 2.0 ** args.num_bits / 2
    return -half, half - 1


def minmax_codes(values, scale, zero, block, args, dtype):
    """compressed-tensors' _quantize: the codes (int16 for int, E4M3 bytes for FP8) of `values`
    with one `scale` (and `zero`) per block."""
    r = rounder(dtype)
    scale_full = spread(scale, block, values.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = r(values / scale_full)
        if zero is not None:
            scaled = r(scaled + spread(zero, block, values.shape).astype(np.float32))
    q_min, q_max = code_range(args)
    clamped = np.clip(scaled, np.float32(q_min), np.float32(q_max))
    if args.type == "float":
        return e4m3_bytes(clamped)
    return np.rint(clamped).astype(np.int16)


def deepseek_fp8(values, block):
    """DeepSeek-V3's FP8 of `values` (float32, rows x columns): (E4M3 bytes, float32 scales
    amax / 448 per tile)."""
    low, high = block_range(values, block)
    scale = np.maximum(np.abs(low), np.abs(high)).astype(np.float32) / np.float32(448)
    with np.errstate(divide="ignore", invalid="ignore"):
        codes = e4m3_bytes(values / spread(scale, block, values.shape))
    return codes, scale
