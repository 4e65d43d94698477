"""Block formats with a shared power-of-two or FP8 scale: OCP Microscaling v1.0 (MXFP8, MXFP6,
MXFP4, MXINT8) and NVIDIA's NVFP4."""

import numpy as np

from quantcalc.formats.float_grids import FLOAT_GRIDS
from quantcalc.formats.integer import QParams, round_in_place
from quantcalc.formats.schemes.protocol import Scheme, refuse_beyond_float32

E8M0_MIN, E8M0_MAX = -127, 127
MXINT8_MAX = 127 / 64  # int8 with 6 fraction bits


def e8m0_exponent(amax, emax_elem):
    """The OCP block scale's exponent: floor(log2 amax) - emax_elem, clamped to E8M0's range
    (E8M0_MIN for an all-zero block). floor(log2) exactly, from the binary exponent (np.log2
    rounds near powers of 2)."""
    amax = np.asarray(amax, np.float64)
    exponent = np.frexp(amax)[1] - 1 - emax_elem
    return np.clip(np.where(amax > 0, exponent, E8M0_MIN), E8M0_MIN, E8M0_MAX)


class MXScheme(Scheme):
    """OCP Microscaling: blocks of 32 share an E8M0 scale 2^(floor(log2 amax) - emax_elem)."""

    def __init__(self, config, fmt):
        super().__init__(config, fmt)
        self.element = FLOAT_GRIDS[fmt.grid] if fmt.grid else None  # None: MXINT8
        self.emax_elem = 0 if self.element is None else int(np.floor(np.log2(
            self.element.max_value)))
        if self.element is None:
            self.q_min, self.q_max = -127, 127
        self.grid_max = MXINT8_MAX if self.element is None else self.element.max_value

    def params(self, x, lo, hi, segmentation):
        amax = np.maximum(np.abs(lo), np.abs(hi))
        scale = np.ldexp(1.0, e8m0_exponent(amax, self.emax_elem))
        zeros = np.zeros(amax.shape, np.int64)
        return QParams(scale, zeros, -amax, amax, zeros.astype(bool), amax == 0)

    def quantize(self, original, p, rounding, rng):
        scaled = original / p["scale"]
        if self.element is None:
            codes = round_in_place(scaled * 64.0, rounding, rng)
            saturated = np.abs(codes) > 127
            np.clip(codes, -127, 127, out=codes)
            return codes, codes / 64.0 * p["scale"], saturated
        rounded, saturated = self.element.round(scaled, rounding, rng)
        return self.element.encode(rounded), rounded * p["scale"], saturated


MIN_E4M3 = 2.0 ** -9  # E4M3's smallest subnormal


class NVFP4Scheme(Scheme):
    """NVFP4: FP4 E2M1 in blocks of 16 with an FP8 E4M3 block scale times an FP32 tensor scale
    amax / (6 * 448)."""

    def __init__(self, config, fmt):
        super().__init__(config, fmt)
        self.fp4, self.e4m3 = FLOAT_GRIDS[fmt.grid], FLOAT_GRIDS["fp8_e4m3"]
        self.grid_max = self.fp4.max_value

    # the whole tensor's amax, when a scan feeds the tensor slab by slab (scan/streamed.py): the
    # tensor scale must come from all of it, not from the slab's blocks
    tensor_amax = None

    def params(self, x, lo, hi, segmentation):
        amax = np.maximum(np.abs(lo), np.abs(hi))
        refuse_beyond_float32(self.label, amax)
        amax32 = amax.astype(np.float32)  # NVFP4's scales are computed in float32
        top = np.float32(self.fp4.max_value)
        whole = amax32.max() if self.tensor_amax is None else self.tensor_amax
        tensor_scale = np.float32(whole) / (top * np.float32(self.e4m3.max_value))
        if tensor_scale == 0:
            block = np.zeros(amax.shape)
        else:
            block, _ = self.e4m3.round((amax32 / top) / tensor_scale)
            # a block far below the tensor's largest would round to a zero E4M3 scale and lose
            # all its values; NVIDIA ModelOpt clamps block scales to E4M3's smallest subnormal
            self.clamped = int(np.count_nonzero((block < MIN_E4M3) & (amax > 0)))
            block = np.where(amax > 0, np.maximum(block, MIN_E4M3), block)
        scale = block * np.float64(tensor_scale)  # exact: 4 x 24 significant bits
        zeros = np.zeros(amax.shape, np.int64)
        return QParams(scale, zeros, -amax, amax, zeros.astype(bool), scale == 0)

    def quantize(self, original, p, rounding, rng):
        scale = p["scale"]
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.where(scale > 0, original / np.where(scale > 0, scale, 1.0), 0.0)
        rounded, saturated = self.fp4.round(scaled, rounding, rng)
        return self.fp4.encode(rounded), rounded * scale, saturated
