"""Quantization schemes: how a format gets its scales and turns a chunk of values into codes.

Every scheme answers the same questions for the analysis pipeline (analysis.py):
  segmentation(shape)            which values share a scale (block formats fix their blocks)
  params(x, segmentation, ...)   per-segment scale and zero point (QParams, extra arrays allowed)
  quantize(x, p, rounding, rng)  codes, reconstruction and saturation of one chunk (float64)
  fake_quantize(values, lo, hi)  round-to-nearest reconstruction for a candidate range (MSE search)
  bits_per_value(count, segments) storage cost including scales
The integer scheme is the brief's affine quantization; the others follow their specifications:
small floats scaled by amax / max; NF4 (QLoRA); OCP Microscaling v1.0 (MXFP8/6/4, MXINT8);
NVIDIA NVFP4; llama.cpp's Q8_0 and Q4_0 reference code (float32 arithmetic, fp16 block scales).
"""

from dataclasses import dataclass, field

import numpy as np

from .core import SCALE_FLOOR, QParams, qparams, round_and_clamp, round_in_place
from .errors import QuantcalcError
from .formats import IntegerFormat
from .grids import FLOAT_GRIDS, FloatGrid, nf4_round
from .segments import Segmentation

SCALE_BITS = 32  # a float32 scale (and zero point) per segment for int / float formats


@dataclass
class Scheme:
    name: str
    label: str
    symmetric_only: bool = True
    block_size: int = 0           # > 0: fixed blocks along the last axis
    calibrations: tuple = ("minmax", "percentile", "mse", "custom")
    q_min: float = 0
    q_max: float = 0
    config: object = field(default=None, repr=False)

    def segmentation(self, shape, config):
        if self.block_size:
            return Segmentation(shape, "group", group_size=self.block_size)
        return Segmentation(shape, config.granularity, config.axis, config.group_size)

    def check(self, config):
        if config.calibration not in self.calibrations:
            if self.block_size:
                raise QuantcalcError(
                    f"{self.label} sets each block's scale from the block's largest magnitude; "
                    f"choose min-max as the range source", "calibration")
            raise QuantcalcError(f"{config.calibration} calibration is not available for "
                                 f"{self.label}", "calibration")
        if self.symmetric_only and config.mode != "symmetric":
            raise QuantcalcError(f"{self.label} is symmetric (sign and magnitude); choose "
                                 f"symmetric mode", "mode")

    def gather(self, params: QParams, ids):
        """The parameters of each value of a chunk (ids: segment of each value, None for one)."""
        pick = (lambda a: a[0]) if ids is None else (lambda a: a[ids])
        out = {"scale": pick(params.scale),
               "zero_point": pick(params.zero_point.astype(np.float64))}
        out.update({k: pick(v) for k, v in params.extra.items()})
        return out

    def uniform_noise_mse(self, params, sizes, count):
        return None  # the error of a non-uniform grid is not scale^2/12


class IntegerScheme(Scheme):
    def __init__(self, config):
        fmt = config.number_format
        super().__init__("int", f"INT{config.bits}", symmetric_only=False,
                         calibrations=("minmax", "percentile", "mse", "entropy", "custom"),
                         q_min=fmt.q_min, q_max=fmt.q_max, config=config)
        self.fmt: IntegerFormat = fmt

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

    def bits_per_value(self, count, segments):
        per_segment = SCALE_BITS + (self.config.bits if self.config.mode == "asymmetric" else 0)
        return self.config.bits + per_segment * segments / count

    def uniform_noise_mse(self, params, sizes, count):
        return float(np.sum(sizes * params.scale ** 2) / 12.0 / count)


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

    def __init__(self, config, grid: FloatGrid):
        super().__init__(grid.name, grid.name.upper().replace("_", " "), q_min=-grid.max_value,
                         q_max=grid.max_value, config=config)
        self.grid = grid

    def params(self, x, lo, hi, segmentation):
        return _amax_params(lo, hi, self.grid.max_value)

    def quantize(self, original, p, rounding, rng):
        rounded, saturated = self.grid.round(original / p["scale"], rounding, rng)
        return self.grid.encode(rounded), rounded * p["scale"], saturated

    def fake_quantize(self, values, lo, hi):
        scale = _amax_params(lo, hi, self.grid.max_value).scale[:, None]
        return self.grid.round(values[None, :] / scale)[0] * scale

    def bits_per_value(self, count, segments):
        return self.grid.bits + SCALE_BITS * segments / count


class BlockScheme(Scheme):
    """Formats with fixed blocks along the last axis whose scale comes from the block's amax."""

    def __init__(self, name, label, config, block_size, q_min, q_max):
        super().__init__(name, label, block_size=block_size, calibrations=("minmax",),
                         q_min=q_min, q_max=q_max, config=config)

    def fake_quantize(self, values, lo, hi):  # block formats have no range search
        raise NotImplementedError


class NF4Scheme(BlockScheme):
    def __init__(self, config, block_size):
        super().__init__("nf4", "NF4", config, block_size, -1.0, 1.0)

    def params(self, x, lo, hi, segmentation):
        return _amax_params(lo, hi, 1.0)  # absmax per block (bitsandbytes)

    def quantize(self, original, p, rounding, rng):
        levels, index = nf4_round(original / p["scale"])
        return index, levels * p["scale"], None

    def bits_per_value(self, count, segments):
        return 4 + SCALE_BITS * segments / count


E8M0_MIN, E8M0_MAX = -127, 127


class MXScheme(BlockScheme):
    """OCP Microscaling: blocks of 32 share an E8M0 scale 2^(floor(log2 amax) - emax_elem)."""

    def __init__(self, config, name, element):
        self.element = element  # a FloatGrid, or None for MXINT8
        emax = 0 if element is None else int(np.floor(np.log2(element.max_value)))
        self.emax_elem = emax
        top = 127 / 64 if element is None else element.max_value
        super().__init__(name, name.upper().replace("_", " "), config, 32, -top, top)

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
        if self.element is None:  # MXINT8: int8 with 6 fraction bits, clamped to +-127/64
            codes = round_in_place(scaled * 64.0, rounding, rng)
            saturated = np.abs(codes) > 127
            np.clip(codes, -127, 127, out=codes)
            return codes, codes / 64.0 * p["scale"], saturated
        rounded, saturated = self.element.round(scaled, rounding, rng)
        return self.element.encode(rounded), rounded * p["scale"], saturated

    def bits_per_value(self, count, segments):
        bits = 8 if self.element is None else self.element.bits
        return bits + 8 * segments / count


class NVFP4Scheme(BlockScheme):
    """NVFP4: FP4 E2M1 in blocks of 16 with an FP8 E4M3 block scale times an FP32 tensor scale
    amax / (6 * 448)."""

    def __init__(self, config):
        super().__init__("nvfp4", "NVFP4", config, 16, -6.0, 6.0)
        self.fp4, self.e4m3 = FLOAT_GRIDS["fp4_e2m1"], FLOAT_GRIDS["fp8_e4m3"]

    def params(self, x, lo, hi, segmentation):
        amax = np.maximum(np.abs(lo), np.abs(hi))
        amax32 = amax.astype(np.float32)  # NVFP4's scales are computed in float32
        tensor_scale = np.float32(amax32.max()) / np.float32(6 * 448)
        if tensor_scale == 0:
            block = np.zeros(amax.shape)
        else:
            block, _ = self.e4m3.round((amax32 / np.float32(6)) / tensor_scale)
        scale = block * np.float64(tensor_scale)  # exact: 4 x 24 significant bits
        zeros = np.zeros(amax.shape, np.int64)
        return QParams(scale, zeros, -amax, amax, zeros.astype(bool), scale == 0)

    def quantize(self, original, p, rounding, rng):
        scale = p["scale"]
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.where(scale > 0, original / np.where(scale > 0, scale, 1.0), 0.0)
        rounded, saturated = self.fp4.round(scaled, rounding, rng)
        return self.fp4.encode(rounded), rounded * scale, saturated

    def bits_per_value(self, count, segments):
        return 4 + 8 * segments / count + 32 / count


class GGUFScheme(BlockScheme):
    """llama.cpp's Q8_0 and Q4_0, transcribed from quantize_row_q8_0_ref / q4_0_ref: float32
    arithmetic, the block scale d stored as fp16 and used as such to dequantize."""

    def __init__(self, config, name):
        bits = 8 if name == "q8_0" else 4
        super().__init__(name, name.upper(), config, 32, -127 if bits == 8 else 0,
                         127 if bits == 8 else 15)
        self.bits = bits

    def params(self, x, lo, hi, segmentation):
        lo32, hi32 = lo.astype(np.float32), hi.astype(np.float32)
        if self.bits == 8:
            d = np.maximum(np.abs(lo32), np.abs(hi32)) / np.float32(127)
        else:  # the first value of largest magnitude in the block, sign kept, over -8
            d = np.array([block[np.argmax(np.abs(block))] for block in
                          (b.astype(np.float32) for b in segmentation.each(x))],
                         np.float32) / np.float32(-8)
        with np.errstate(divide="ignore"):
            inverse = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), np.float32(0))
        stored = d.astype(np.float16).astype(np.float64)
        amax = np.maximum(np.abs(lo), np.abs(hi))
        zeros = np.zeros(d.shape, np.int64)
        return QParams(stored, zeros, -amax, amax, zeros.astype(bool), d == 0,
                       extra={"inverse": inverse.astype(np.float32)})

    def quantize(self, original, p, rounding, rng):
        scaled = original.astype(np.float32) * p["inverse"]  # float32 product, as in C
        if self.bits == 8:
            exact = scaled.astype(np.float64)  # roundf: half away from zero, no float32 sum
            codes = np.trunc(exact + np.copysign(0.5, exact))
            return codes, codes * p["scale"], None
        # (int8_t)(x0 + 8.5f): a float32 sum, truncated
        codes = np.minimum(15, np.trunc(scaled + np.float32(8.5))).astype(np.float64)
        return codes, (codes - 8) * p["scale"], None

    def bits_per_value(self, count, segments):
        return self.bits + 16 * segments / count


FORMATS = ("int", "fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1", "nf4",
           "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4", "mxint8", "nvfp4",
           "q8_0", "q4_0")
DEFAULT_BLOCK = {"nf4": 64}


def scheme_for(config) -> Scheme:
    """The scheme of `config.format`, checked against the rest of the configuration."""
    name = config.format
    if name == "int":
        scheme = IntegerScheme(config)
    elif name in FLOAT_GRIDS:
        scheme = FloatScheme(config, FLOAT_GRIDS[name])
    elif name == "nf4":
        scheme = NF4Scheme(config, config.block_size or DEFAULT_BLOCK["nf4"])
    elif name.startswith("mx"):
        element = None if name == "mxint8" else FLOAT_GRIDS[
            "fp4_e2m1" if name == "mxfp4" else name[2:]]
        scheme = MXScheme(config, name, element)
    elif name == "nvfp4":
        scheme = NVFP4Scheme(config)
    elif name in ("q8_0", "q4_0"):
        scheme = GGUFScheme(config, name)
    else:
        raise QuantcalcError(f"format must be one of {', '.join(FORMATS)}; got {name!r}",
                             "format")
    if config.block_size is not None and scheme.block_size != config.block_size:
        if name != "nf4":
            fixed = f"{scheme.label} blocks are {scheme.block_size} values by definition" \
                if scheme.block_size else f"{scheme.label} has no blocks (use granularity)"
            raise QuantcalcError(fixed, "block_size")
    scheme.check(config)
    return scheme
