"""torchao's float8 tensorwise scaling (torchao.float8, the PyTorch convention for FP8 E4M3 /
E5M2):

  float8_utils.py amax_to_scale:  scale = float32(max / max(float64(amax), 1e-12))
  float8_training_tensor.py _ToFloat8ConstrFunc: bits = to_fp8_saturated(float32(x) * scale)
    (clamp to ±max, then round to nearest even);  _FromFloat8ConstrFunc: x_hat = bits / scale
The scale reported is 1 / torchao's scale (the step a code stands for, as everywhere here).
"""

import numpy as np

from quantcalc.formats.conventions.base import F32, HALF_EVEN, float32_params

EPS = 1e-12


def refusal(cfg):
    if cfg.rounding != HALF_EVEN:
        return "torchao's float8 cast rounds half to even only", "rounding"
    if cfg.calibration != "minmax":
        return ("torchao's float8 scaling takes each tensor's amax (min-max); it has no "
                f"{cfg.calibration} calibration", "calibration")
    if cfg.granularity != "tensor":
        return ("quantcalc follows torchao's tensorwise float8 scaling; choose per tensor",
                "granularity")
    return None


def qparams(lo, hi, top):
    amax = np.maximum(np.abs(np.asarray(lo).astype(F32)), np.abs(np.asarray(hi).astype(F32)))
    with np.errstate(divide="ignore", over="ignore"):
        inverse = (top / np.maximum(amax.astype(np.float64), EPS)).astype(F32)
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


def rule(label):
    return (f"PyTorch convention (torchao float8): scale = {label}'s max / amax in float32 "
            f"(amax_to_scale), x · scale in float32 cast to {label} saturated, x̂ = bits / scale")
