"""Quantization schemes: how a format gets its scales and turns a chunk of values into codes.

Every scheme answers the same questions for the analysis pipeline (analysis.py):
  segmentation(shape, config)    which values share a scale (block formats fix their blocks)
  params(x, lo, hi, segmentation) per-segment scale and zero point (QParams, extra arrays allowed)
  quantize(x, p, rounding, rng)  codes, reconstruction and the clipped mask of one chunk (float64)
  fake_quantize(values, lo, hi)  round-to-nearest reconstruction for a candidate range (MSE search)
  bits_per_value(count, segments) storage cost including scales, from the registry row's facts
The facts of each format (element bits, block size, scale storage) come from its registry row
(registry.py); a scheme class implements one family of formats: affine integers (TensorRT /
ONNX Runtime conventions), small floats scaled by amax / max, NF4 (QLoRA), OCP Microscaling v1.0
(MXFP8/6/4, MXINT8), NVIDIA NVFP4, llama.cpp's Q8_0 and Q4_0 reference code (float32 arithmetic,
fp16 block scales).

Clipped, for every format: a value is clipped (saturated) when rounding it onto the format's grid,
without the grid's limits, would give a code beyond the grid's end, so it was clamped to that end
(the mask PyTorch's fake-quantize keeps). Formats that scale each block by its own largest
magnitude can still clip, e.g. MXFP4's power-of-two scale or Q4_0's opposite-sign values.
"""

import math

import numpy as np

from . import kquants, registry
from .core import SCALE_FLOOR, QParams, qparams, round_and_clamp, round_in_place
from .errors import QuantcalcError
from .formats import IntegerFormat
from .grids import FLOAT_GRIDS, nf4_round
from .segments import Segmentation


class Scheme:
    """The arithmetic of one registry row; subclasses implement params and quantize."""

    def __init__(self, config, fmt: registry.Format):
        self.config = config
        self.format = fmt
        self.name, self.label = fmt.name, fmt.label
        # a block format's blocks: its own size, or the user's where the format allows it
        self.block_size = (config.block_size if not fmt.block_size_fixed and config.block_size
                           else fmt.block_size) or 0

    # where the codes live: an integer range for integer elements, else None
    q_min = None
    q_max = None
    grid_max = None  # largest element value, for float and codebook elements

    def segmentation(self, shape, config):
        if self.block_size:
            return Segmentation(shape, "group", group_size=self.block_size)
        return Segmentation(shape, config.granularity, config.axis, config.group_size)

    @property
    def segment_kind(self) -> str:
        return "block" if self.block_size else self.config.granularity

    def gather(self, params: QParams, ids):
        """The parameters of each value of a chunk (ids: segment of each value, None for one)."""
        pick = (lambda a: a[0]) if ids is None else (lambda a: a[ids])
        out = {"scale": pick(params.scale),
               "zero_point": pick(params.zero_point.astype(np.float64))}
        out.update({k: pick(v) for k, v in params.extra.items()})
        return out

    def grid_ends(self, params: QParams):
        """The reals the first segment's grid ends stand for (values beyond are clipped)."""
        return float(params.real_min[0]), float(params.real_max[0])

    def element_bits(self) -> int:
        return self.format.element_bits

    def bits_per_value(self, count, segments):
        """Element bits plus each scale (and zero point) and any tensor scale, spread over the
        values: MXFP4 4 + 8/32 = 4.25, Q4_0 4 + 16/32 = 4.5, NVFP4 4 + 8/16 + 32/N."""
        per_segment = self.format.scale_bits + self.zero_point_bits()
        return (self.element_bits() + per_segment * segments / count
                + self.format.tensor_scale_bits / count)

    def zero_point_bits(self) -> int:
        return 0

    def uniform_noise_mse(self, params, sizes, count):
        return None  # the error of a non-uniform grid is not scale^2/12

    chunk_values = None      # a scheme that quantizes whole spans at once sets its span size
    has_zero_point = True    # integer codes around a zero point (reported with the scale)

    def quantize_span(self, start, original, p, rounding, rng):
        """Quantize the values at flat positions [start, start + len(original))."""
        return self.quantize(original, p, rounding, rng)


class IntegerScheme(Scheme):
    def __init__(self, config, fmt):
        super().__init__(config, fmt)
        self.fmt: IntegerFormat = config.number_format
        self.q_min, self.q_max = self.fmt.q_min, self.fmt.q_max
        self.label = f"INT{config.bits}" if config.mode == "symmetric" else f"UINT{config.bits}"

    def element_bits(self):
        return self.config.bits

    def zero_point_bits(self):
        return self.config.bits if self.config.mode == "asymmetric" else 0

    def params(self, x, lo, hi, segmentation):
        return qparams(lo, hi, self.fmt, self.config.mode)

    def quantize(self, original, p, rounding, rng):
        codes = original / p["scale"]
        clipped = round_and_clamp(codes, p["zero_point"], self.fmt.q_min, self.fmt.q_max,
                                  rounding, rng)
        if np.any(p["zero_point"]):
            dequantized = codes - p["zero_point"]
            dequantized *= p["scale"]
        else:
            dequantized = codes * p["scale"]
        return codes, dequantized, clipped

    def fake_quantize(self, values, lo, hi):
        params = qparams(lo, hi, self.fmt, self.config.mode)
        p = {"scale": params.scale[:, None], "zero_point": params.zero_point[:, None]}
        return self.quantize(values[None, :], p, "half-even", None)[1]

    def grid_ends(self, params):
        scale, zero_point = float(params.scale[0]), int(params.zero_point[0])
        return (self.q_min - zero_point) * scale, (self.q_max - zero_point) * scale

    def uniform_noise_mse(self, params, sizes, count):
        with np.errstate(over="ignore"):
            predicted = float(np.sum(sizes * params.scale ** 2) / 12.0 / count)
        return predicted if math.isfinite(predicted) else None  # beyond float64: no prediction


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


E8M0_MIN, E8M0_MAX = -127, 127
MXINT8_MAX = 127 / 64  # int8 with 6 fraction bits


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
        # floor(log2(amax)) exactly, from the binary exponent (np.log2 rounds near powers of 2)
        exponent = np.frexp(amax)[1] - 1 - self.emax_elem
        exponent = np.clip(np.where(amax > 0, exponent, E8M0_MIN), E8M0_MIN, E8M0_MAX)
        scale = np.ldexp(1.0, exponent)
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


class NVFP4Scheme(Scheme):
    """NVFP4: FP4 E2M1 in blocks of 16 with an FP8 E4M3 block scale times an FP32 tensor scale
    amax / (6 * 448)."""

    def __init__(self, config, fmt):
        super().__init__(config, fmt)
        self.fp4, self.e4m3 = FLOAT_GRIDS[fmt.grid], FLOAT_GRIDS["fp8_e4m3"]
        self.grid_max = self.fp4.max_value

    def params(self, x, lo, hi, segmentation):
        amax = np.maximum(np.abs(lo), np.abs(hi))
        amax32 = amax.astype(np.float32)  # NVFP4's scales are computed in float32
        top = np.float32(self.fp4.max_value)
        tensor_scale = np.float32(amax32.max()) / (top * np.float32(self.e4m3.max_value))
        if tensor_scale == 0:
            block = np.zeros(amax.shape)
        else:
            block, _ = self.e4m3.round((amax32 / top) / tensor_scale)
        scale = block * np.float64(tensor_scale)  # exact: 4 x 24 significant bits
        zeros = np.zeros(amax.shape, np.int64)
        return QParams(scale, zeros, -amax, amax, zeros.astype(bool), scale == 0)

    def quantize(self, original, p, rounding, rng):
        scale = p["scale"]
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.where(scale > 0, original / np.where(scale > 0, scale, 1.0), 0.0)
        rounded, saturated = self.fp4.round(scaled, rounding, rng)
        return self.fp4.encode(rounded), rounded * scale, saturated


class GGUFScheme(Scheme):
    """llama.cpp's Q8_0 and Q4_0, transcribed from quantize_row_q8_0_ref / q4_0_ref: float32
    arithmetic, the block scale d stored as fp16 and used as such to dequantize."""

    def __init__(self, config, fmt):
        super().__init__(config, fmt)
        self.bits = fmt.element_bits
        # Q8_0: codes -127..127 around 0; Q4_0: codes 0..15 around 8 (x = (q - 8) d)
        self.q_min, self.q_max = (-127, 127) if self.bits == 8 else (0, 15)
        self.offset = 0 if self.bits == 8 else 8

    def params(self, x, lo, hi, segmentation):
        lo32, hi32 = lo.astype(np.float32), hi.astype(np.float32)
        if self.bits == 8:
            d = np.maximum(np.abs(lo32), np.abs(hi32)) / np.float32(127)
        else:  # the first value of largest magnitude in the block, sign kept, over -8
            d = np.array([block[np.argmax(np.abs(block))] for block in
                          (b.astype(np.float32) for b in segmentation.each(x))],
                         np.float32) / np.float32(-8)
        with np.errstate(divide="ignore", over="ignore"):  # 1/d of a subnormal d: see below
            inverse = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), np.float32(0))
        with np.errstate(over="ignore"):
            stored = d.astype(np.float16).astype(np.float64)
        if not np.all(np.isfinite(stored)):
            largest = float(np.max(np.maximum(np.abs(lo), np.abs(hi))))
            raise QuantcalcError(
                f"{self.label} stores each block's scale as fp16 (at most 65504); a block whose "
                f"largest magnitude is {largest:.4g} needs {float(np.max(np.abs(d))):.4g}. Scale "
                f"the tensor down or choose another format", "format")
        # A d so small that fp16 stores 0 (below 6e-8) makes every value of its block
        # dequantize to 0; its float32 1/d can overflow to inf, where C's int8 cast of x * inf
        # is undefined. Such a block takes code 0 (Q8_0) / 8 (Q4_0): the same reconstruction.
        inverse = np.where(stored == 0, np.float32(0), inverse)
        amax = np.maximum(np.abs(lo), np.abs(hi))
        offsets = np.full(d.shape, self.offset, np.int64)
        return QParams(stored, offsets, -amax, amax, np.zeros(d.shape, bool), d == 0,
                       extra={"inverse": inverse.astype(np.float32)})

    def quantize(self, original, p, rounding, rng):
        scaled = original.astype(np.float32) * p["inverse"]  # float32 product, as in C
        if self.bits == 8:
            exact = scaled.astype(np.float64)  # roundf: half away from zero, no float32 sum
            codes = np.trunc(exact + np.copysign(0.5, exact))
            return codes, codes * p["scale"], np.abs(codes) > 127
        # (int8_t)(x0 + 8.5f): a float32 sum, truncated, then MIN(15, ...)
        unclamped = np.trunc(scaled + np.float32(8.5)).astype(np.float64)
        codes = np.minimum(15, unclamped)
        return codes, (codes - 8) * p["scale"], unclamped > 15

    def grid_ends(self, params):
        d = float(params.scale[0])
        return tuple(sorted(((self.q_min - self.offset) * d, (self.q_max - self.offset) * d)))


class KQuantScheme(Scheme):
    """llama.cpp's K-quants (kquants.py, bit-exact with ggml): the codes come out of a search
    over whole super-blocks, so a span of super-blocks is quantized at once and each
    sub-block's effective scale d·sc is filled in as it goes."""

    def __init__(self, config, fmt):
        super().__init__(config, fmt)
        self.q_min, self.q_max = 0, (1 << fmt.element_bits) - 1
        self.chunk_values = 1 << 18  # 1024 super-blocks: the search is vectorised across them
        self.importance = None
        self.scales = None

    has_zero_point = False

    def segmentation(self, shape, config):
        width = shape[-1] if shape else 1
        if width % self.format.super_block:
            raise QuantcalcError(
                f"{self.label} needs rows whose length is a multiple of "
                f"{self.format.super_block} (its super-blocks); these rows have {width} values. "
                f"llama.cpp quantizes such a tensor as {self.format.fallback.upper()} instead",
                "format")
        return super().segmentation(shape, config)

    def params(self, x, lo, hi, segmentation):
        self.scales = np.zeros(segmentation.count)  # filled by quantize_span
        self.row_length = segmentation.row_length
        zeros = np.zeros(segmentation.count, np.int64)
        return QParams(self.scales, zeros, lo, hi, zeros.astype(bool), zeros.astype(bool))

    def gather(self, params, ids):
        return None  # a span carries its own scales

    def quantize_span(self, start, original, p, rounding, rng):
        blocks = original.astype(np.float32).reshape(-1, kquants.QK_K)
        importance = None
        if self.importance is not None:
            columns = np.arange(start, start + original.size) % self.row_length
            importance = self.importance[columns]
        codes, recon, clipped, d_sub, _ = kquants.quantize_q45_k(
            blocks, self.q_max, importance)
        first = start // self.block_size
        self.scales[first:first + d_sub.size] = d_sub.reshape(-1)
        return (codes.reshape(-1).astype(np.float64), recon.reshape(-1).astype(np.float64),
                clipped.reshape(-1))


FAMILIES = {"int": IntegerScheme, "float": FloatScheme, "nf4": NF4Scheme, "mx": MXScheme,
            "nvfp4": NVFP4Scheme, "gguf": GGUFScheme, "kquant": KQuantScheme}


def scheme_for(config) -> Scheme:
    """The scheme of `config.format` (the Config has already checked the settings against it)."""
    fmt = config.format_row
    return FAMILIES[fmt.family](config, fmt)
