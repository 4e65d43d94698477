"""torchao's float8 scaling (torchao.float8, the PyTorch convention for FP8 E4M3 / E5M2),
tensorwise per tensor and rowwise (axiswise) per channel:

  float8_utils.py tensor_to_amax:  amax = max |x| of the tensor, or of each row (AXISWISE: one
    amax per index of the other dims; a linear's weight (out, in) gets one per output row)
  amax_to_scale:  scale = float32(max / max(float64(amax), 1e-12))
    rowwise (round_scales_to_power_of_2=True in the "rowwise" recipe):
    _round_scale_down_to_power_of_2: scale = exp2(floor(log2(scale))) in float32
  float8_training_tensor.py _ToFloat8ConstrFunc: bits = to_fp8_saturated(float32(x) * scale)
    (clamp to ±max, then round to nearest even);  _FromFloat8ConstrFunc: x_hat = bits / scale
The scale reported is 1 / torchao's scale (the step a code stands for, as everywhere here).
quantcalc has no setting for the power-of-two rounding, so each granularity follows its torchao
recipe's default: tensorwise unrounded, rowwise rounded.
"""

import numpy as np

from quantcalc.formats.conventions.base import F32, HALF_EVEN, float32_params

EPS = 1e-12


def refusal(cfg):
    if cfg.rounding != HALF_EVEN:
        return "torchao's float8 cast rounds half to even only", "rounding"
    if cfg.calibration != "minmax":
        return ("torchao's float8 scaling takes each tensor's (or row's) amax (min-max); it has "
                f"no {cfg.calibration} calibration", "calibration")
    if cfg.granularity not in ("tensor", "channel"):
        # torchao does scale float8 in blocks (PerBlock granularity, the MX formats): say those
        # are not reproduced rather than that it has none
        return ("quantcalc reproduces torchao's float8 per tensor (tensorwise) or per row "
                f"(rowwise, per channel), not per {cfg.granularity}; its block scales (PerBlock, "
                "MX) are not reproduced here: choose per tensor or per channel, or the exact "
                "convention for groups", "granularity")
    return None


def rowwise(cfg):
    return cfg.granularity == "channel"


def round_down_to_power_of_2(scale):
    """torchao's exp2(floor(log2(scale))) on float32 scales. torch's float32 log2 is the
    correctly rounded one near every power of two (checked on all float32 within 2^18 ulps of
    one), so this takes float64 log2 rounded to float32: just below 2^k it rounds up to k and
    the scale becomes 2^k, as torch's does, and no libm's float32 log2 is trusted."""
    exponent = np.floor(np.log2(scale.astype(np.float64)).astype(F32))
    return np.ldexp(1.0, exponent.astype(np.int64)).astype(F32)


def qparams(lo, hi, top, power_of_2=False):
    amax = np.maximum(np.abs(np.asarray(lo).astype(F32)), np.abs(np.asarray(hi).astype(F32)))
    with np.errstate(divide="ignore", over="ignore"):
        inverse = (top / np.maximum(amax.astype(np.float64), EPS)).astype(F32)
        if power_of_2:
            inverse = round_down_to_power_of_2(inverse)
        scale = 1.0 / inverse.astype(np.float64)
    params = float32_params(inverse, np.zeros(amax.shape), -amax, amax, floored=amax < EPS,
                            inverse=inverse)
    params.scale = scale
    return params


def quantize(grid, original, p):
    inverse = p["inverse"].astype(F32)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = original.astype(F32) * inverse
    rounded, saturated = grid.round(scaled.astype(np.float64))
    dequantized = (rounded.astype(F32) / inverse).astype(np.float64)
    return grid.encode(rounded), dequantized, saturated


def rule(label, power_of_2=False):
    if power_of_2:
        return (f"PyTorch convention (torchao float8 rowwise): one scale per channel = {label}'s "
                f"max / amax in float32 (amax_to_scale), rounded down to a power of two as the "
                f"rowwise recipe does (round_scales_to_power_of_2; quantcalc has no setting to "
                f"turn it off), x · scale in float32 cast to {label} saturated, "
                f"x̂ = bits / scale")
    return (f"PyTorch convention (torchao float8): scale = {label}'s max / amax in float32 "
            f"(amax_to_scale), x · scale in float32 cast to {label} saturated, x̂ = bits / scale")
