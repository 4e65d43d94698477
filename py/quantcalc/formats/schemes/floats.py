"""Small floats (FP8, FP6, FP4) and NF4 (QLoRA), each scaled so the range's largest magnitude
lands on the grid's largest value (the grids are formats/float_grids.py)."""

import numpy as np

from quantcalc.formats.float_grids import FLOAT_GRIDS, nf4_round
from quantcalc.formats.integer import SCALE_FLOOR, QParams
from quantcalc.formats.schemes.protocol import Scheme


def _amax_params(lo, hi, top):
    """Symmetric scale mapping the larger magnitude of [lo, hi] onto `top`.

    A float or NF4 grid is scaled by amax / top for any positive amax, however small, as torchao
    and Transformer Engine do (flooring the scale at float32 eps, as the integer formats do,
    would leave a tensor with amax below eps * top, 6.8e-3 for E5M2, short of the grid's end).
    Only a range with no usable scale (all zeros) takes SCALE_FLOOR.
    """
    amax = np.maximum(np.abs(lo), np.abs(hi))
    raw = amax / top
    floored = ~(raw >= np.finfo(np.float64).tiny)
    scale = np.where(floored, SCALE_FLOOR, raw)
    zeros = np.zeros(amax.shape, np.int64)
    return QParams(scale, zeros, -amax, amax, zeros.astype(bool), floored)


class FloatScheme(Scheme):
    """FP8/FP6/FP4 elements, scaled per tensor, channel or group so amax lands on the max."""

    def __init__(self, config, fmt):
        super().__init__(config, fmt)
        self.grid = FLOAT_GRIDS[fmt.grid]
        self.grid_max = self.grid.max_value

    def params(self, x, lo, hi, segmentation):
        return _amax_params(lo, hi, self.grid.max_value)

    def quantize(self, original, p, rounding, rng):
        rounded, saturated = self.grid.round(original / p["scale"], rounding, rng)
        return self.grid.encode(rounded), rounded * p["scale"], saturated

    def fake_quantize(self, values, lo, hi):
        scale = _amax_params(lo, hi, self.grid.max_value).scale[:, None]
        return self.grid.round(values[None, :] / scale)[0] * scale


class NF4Scheme(Scheme):
    grid_max = 1.0
    q_min, q_max = 0, 15  # codes are indices into the 16 levels

    def params(self, x, lo, hi, segmentation):
        return _amax_params(lo, hi, 1.0)  # absmax per block (bitsandbytes)

    def quantize(self, original, p, rounding, rng):
        scaled = original / p["scale"]
        levels, index = nf4_round(scaled)
        return index, levels * p["scale"], np.abs(scaled) > 1.0
