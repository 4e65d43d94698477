"""Quantization schemes: how a format gets its scales and turns a chunk of values into codes.

Every scheme answers the same questions for the analysis pipeline (engine/analysis.py):
  segmentation(shape, config)    which values share a scale (block formats fix their blocks)
  params(x, lo, hi, segmentation) per-segment scale and zero point (QParams, extra arrays allowed)
  quantize(x, p, rounding, rng)  codes, reconstruction and the clipped mask of one chunk (float64)
  quantize_span(start, x, ...)   the same for the values at flat positions start..
  spans(start, values, ...)      a chunk in its own dtype -> Spans (float64 values, codes,
                                 reconstruction, clipped), one by default (span()); llama.cpp's
                                 types override it (their searches span whole rows, and the
                                 legacy types yield their slab in parts: see GGMLScheme)
  fake_quantize(values, lo, hi)  round-to-nearest reconstruction for a candidate range (MSE search)
  bits_per_value(count, segments) storage cost including scales, from the registry row's facts
The facts of each format (element bits, block size, scale storage) come from its registry row
(schema/registry.py); a scheme class implements one family of formats: affine integers (TensorRT /
ONNX Runtime conventions), small floats scaled by amax / max, NF4 (QLoRA), OCP Microscaling v1.0
(MXFP8/6/4, MXINT8), NVIDIA NVFP4, DeepSeek-V3's block-scaled FP8, and llama.cpp's types through
formats/ggml/types.py (bit-identical to ggml).

Clipped, for every format: a value is clipped (saturated) when rounding it onto the format's grid,
without the grid's limits, would give a code beyond the grid's end, so it was clamped to that end
(the mask PyTorch's fake-quantize keeps). Formats that scale each block by its own largest
magnitude can still clip, e.g. MXFP4's power-of-two scale or Q4_0's opposite-sign values.
"""

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from quantcalc.formats import block_columns
from quantcalc.formats.ggml import legacy as ggml_legacy
from quantcalc.formats.ggml import search as ggml_search
from quantcalc.formats.ggml import types as ggml_types
from quantcalc.schema import registry
from quantcalc.formats.block_columns import Columns
from quantcalc.formats.integer import (SCALE_FLOOR, QParams, qparams, round_and_clamp, round_in_place)
from quantcalc.errors import QuantcalcError
from quantcalc.formats.integer import IntegerFormat
from quantcalc.formats.float_grids import FLOAT_GRIDS, nf4_round
from quantcalc.formats.granularity import Segmentation


def _as_is(values):
    return values


@dataclass
class Span:
    """One chunk quantized. Its arrays share one order, which need not be the tensor's:
    `natural` puts any of them back in flat C order (llama.cpp's legacy types work on blocks laid
    out as columns, and the error sums are taken in that order)."""

    original: np.ndarray            # float64
    codes: np.ndarray
    dequantized: np.ndarray         # float64, or float32 (exact in float64)
    clipped: Optional[np.ndarray]   # bool, or None where nothing can clip
    bound: Optional[float] = None   # the chunk's largest magnitude, where the scheme knows it
    natural: Callable = _as_is
    start: int = 0                  # the flat position of its first value
    scratch: Optional[np.ndarray] = None  # float64 of its shape the error may be written to


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

    importance = None        # llama.cpp's importance weights per column, if given (engine/analysis.py)
    clamped = 0              # block scales raised to the element grid's smallest (NVFP4)
    chunk_values = None      # a scheme that quantizes whole spans at once sets its span size
    per_value_params = True  # quantize() takes each value's scale (gather by segment ids)
    has_zero_point = True    # integer codes around a zero point (reported with the scale)

    measures_range = False   # span() fills params.real_min / real_max with each segment's
    #                          data range as it goes (callers skip segmentation.min_max)

    def quantize_span(self, start, original, p, rounding, rng):
        """Quantize the values at flat positions [start, start + len(original))."""
        return self.quantize(original, p, rounding, rng)

    def span(self, start, values, p, rounding, rng, run=None):
        """Quantize a chunk (flat, in the tensor's dtype) starting at flat position `start`;
        `run`: the chunk is whole segments of this many values, `p` one parameter per segment."""
        original = values.astype(np.float64)
        shaped = original if run is None else original.reshape(-1, run)
        codes, dequantized, clipped = (None if a is None else a.reshape(-1)
                                       for a in self.quantize_span(start, shaped, p, rounding, rng))
        return Span(original, codes, dequantized, clipped, start=start)

    def spans(self, start, values, p, rounding, rng, run=None):
        """The chunk as one or more Spans (consecutive values, in order): span() by default."""
        yield self.span(start, values, p, rounding, rng, run)

    def note_data_range(self, params, data_min, data_max, rounding):
        """Told each segment's data range once its parameters are set (a scheme may use it to
        skip work it can prove unnecessary)."""


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

    clip_free = False  # no value of any segment can round outside the grid (see below)

    def note_data_range(self, params, data_min, data_max, rounding):
        """Division by the scale, adding the zero point and every rounding rule are monotone,
        so each segment's smallest and largest value give its extreme codes (stochastic rounding
        lands on the floor or the ceiling). When no extreme leaves [q_min, q_max], no value
        can, and quantize skips looking (exactly the same codes and clip counts)."""
        zero = params.zero_point.astype(np.float64)
        with np.errstate(all="ignore"):
            low, high = data_min / params.scale, data_max / params.scale
        if np.any(zero):
            low, high = low + zero, high + zero
        if rounding == "stochastic":
            low, high = np.floor(low), np.ceil(high)
        else:
            low, high = round_in_place(low, rounding), round_in_place(high, rounding)
        self.clip_free = bool(np.all(low >= self.q_min) and np.all(high <= self.q_max))

    def quantize_span(self, start, original, p, rounding, rng):
        # only the analysis's own values are known to lie in their segments' data range; the
        # figures quantize other values (a transfer curve beyond the range) through quantize
        return self.quantize(original, p, rounding, rng, check=not self.clip_free)

    def quantize(self, original, p, rounding, rng, check=True):
        codes = original / p["scale"]
        clipped = round_and_clamp(codes, p["zero_point"], self.fmt.q_min, self.fmt.q_max,
                                  rounding, rng, check=check)
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


MIN_E4M3 = 2.0 ** -9  # E4M3's smallest subnormal


class NVFP4Scheme(Scheme):
    """NVFP4: FP4 E2M1 in blocks of 16 with an FP8 E4M3 block scale times an FP32 tensor scale
    amax / (6 * 448)."""

    def __init__(self, config, fmt):
        super().__init__(config, fmt)
        self.fp4, self.e4m3 = FLOAT_GRIDS[fmt.grid], FLOAT_GRIDS["fp8_e4m3"]
        self.grid_max = self.fp4.max_value

    # the whole tensor's amax, when a scan feeds the tensor slab by slab (scan/model_scan.py): the tensor
    # scale must come from all of it, not from the slab's blocks
    tensor_amax = None

    def params(self, x, lo, hi, segmentation):
        amax = np.maximum(np.abs(lo), np.abs(hi))
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


class GGMLScheme(Scheme):
    """llama.cpp's types (formats/ggml/types.py, bit-exact with ggml). Their codes come out of searches
    over whole blocks, super-blocks and (with an importance matrix) rows, so a span of whole
    rows is quantized at once, and each block's scale is filled in as it goes."""

    def __init__(self, config, fmt):
        super().__init__(config, fmt)
        top = (1 << fmt.element_bits) - 1
        # codes around 0 (Q8_0: -127..127, offset 0), else unsigned codes 0..2^bits - 1
        self.q_min, self.q_max = (-(top >> 1), top >> 1) if fmt.code_offset == 0 else (0, top)
        self.has_zero_point = fmt.code_offset is not None
        if fmt.element == "codebook":
            self.grid_max = float(-ggml_types.IQ4_VALUES[0])  # levels are -127 … 113 steps
        self.scales = None
        self._buffers = {}  # float64 work arrays reused part after part (ggml_legacy.scratch)

    def segmentation(self, shape, config):
        width = shape[-1] if shape else 1
        unit = self.format.super_block or self.block_size
        if width % unit:
            what = "its super-blocks" if self.format.super_block else "its blocks"
            fallback = self.format.fallback.upper()
            raise QuantcalcError(
                f"{self.label} needs rows whose length is a multiple of {unit} ({what}); these "
                f"rows have {width} values. llama.cpp quantizes such a tensor as {fallback} "
                f"instead", "format")
        self.row_length = width
        return super().segmentation(shape, config)

    def _as_columns(self):
        return self.format.name in ggml_legacy.TYPES and self.importance is None

    @property
    def chunk_values(self):
        """Whole rows per slab (a search with an importance matrix spans a row): about 2^18
        values (ggml_legacy.SLAB_VALUES for the legacy types, whose blocks' numbers are worked
        out for a whole slab at once and their values quantized in parts of 2^17)."""
        values = ggml_legacy.SLAB_VALUES if self._as_columns() else 1 << 18
        return self.row_length * max(1, values // self.row_length)

    measures_range = True  # each block's range comes out of its quantizer's own pass

    def params(self, x, lo, hi, segmentation):
        """Scales and bases are filled in by span(), and so are lo and hi (each block's data
        range: the caller passes empty arrays, see measures_range)."""
        self.scales = np.zeros(segmentation.count)
        self.bases = np.zeros(segmentation.count)
        self.lows, self.highs = lo, hi
        offsets = np.full(segmentation.count, self.format.code_offset or 0, np.int64)
        flags = np.zeros(segmentation.count, bool)
        return QParams(self.scales, offsets, lo, hi, flags, flags)

    per_value_params = False  # a span carries its own scales

    def gather(self, params, ids):
        return None

    def quantize(self, original, p, rounding, rng):
        """Values quantized with the first block's final scale and base, as its requantizing
        pass does (the figures' staircase and levels); the analysis itself uses spans."""
        d, base = float(self.scales[0]), float(self.bases[0])
        if self.format.element == "codebook":
            scaled = original / d if d else np.zeros_like(original)
            codes = ggml_types.best_index(scaled.astype(np.float32))
            return codes, d * ggml_types.IQ4_VALUES[codes].astype(np.float64), None
        offset = self.format.code_offset or 0
        wanted = np.rint((original - base) / d) + offset if d else np.full(original.shape, offset)
        codes = np.clip(wanted, self.q_min, self.q_max)
        return codes, d * (codes - offset) + base, (wanted < self.q_min) | (wanted > self.q_max)

    def grid_ends(self, params):
        d, offset = float(params.scale[0]), self.format.code_offset or 0
        lo = float(params.real_min[0]) if self.format.code_offset is None else \
            (self.q_min - offset) * d
        hi = float(params.real_max[0]) if self.format.code_offset is None else \
            (self.q_max - offset) * d
        return min(lo, hi), max(lo, hi)

    def spans(self, start, values, p, rounding, rng, run=None):
        rows = values.reshape(-1, self.row_length)
        first = start // self.block_size
        with np.errstate(over="ignore", invalid="ignore"):  # an fp16 overflow is refused below
            if self._as_columns():
                slab = ggml_legacy.Slab(self.format.name, rows)
                bound = self._keep_block_numbers(first, slab.scales, slab.bases,
                                                 slab.low, slab.high)
                for part in slab.parts(buffers=self._buffers):
                    # as ggml stores them: codes and float32 reconstructions (the error is
                    # taken in float64: float32 -> float64 is exact)
                    yield Span(part.values, part.codes, part.recon, part.clipped, bound,
                               block_columns.natural, start + part.first * self.block_size,
                               ggml_legacy.scratch(self._buffers, "error", part.values.shape))
                return
            out = ggml_types.quantize(self.format.name, rows, self.importance)
        blocks = Columns(rows, self.block_size, block_columns.holding(rows.dtype))  # as given
        bound = self._keep_block_numbers(first, out.scales, out.bases,
                                         blocks.reduce(np.minimum), blocks.reduce(np.maximum))
        yield Span(values.astype(np.float64), out.codes.reshape(-1), out.recon.reshape(-1),
                   out.clipped.reshape(-1), bound, start=start)

    def _keep_block_numbers(self, first, scales, bases, low, high):
        """Store the blocks' scales, bases and data ranges, refusing an fp16 overflow; returns
        the slab's largest magnitude."""
        largest = max(-float(low.min()), float(high.max()))
        # finite fp16 scales and bases give finite reconstructions (codes are at most 127). A
        # legacy type's scale and min are no larger than the block's largest magnitude, so
        # below fp16's overflow (65520) none of them can be infinite
        if (largest >= ggml_search.HALF_MAX_ROUNDED or not self._as_columns()) and not (
                np.all(np.isfinite(scales)) and (bases is None or np.all(np.isfinite(bases)))):
            raise QuantcalcError(
                f"{self.label} stores its scales as fp16 (at most 65504); a block here, whose "
                f"largest magnitude is {largest:.4g}, needs more. Scale the tensor down or "
                f"choose another format", "format")
        segments = slice(first, first + low.size)
        self.scales[segments] = scales
        if bases is not None:  # else they stay 0 (params)
            self.bases[segments] = bases.reshape(-1)
        self.lows[segments], self.highs[segments] = low, high
        return largest


class BlockFP8Scheme(Scheme):
    """FP8 E4M3 with a float32 scale amax / 448 per block of 128 or tile of 128 × 128, in
    float32 arithmetic as DeepSeek-V3's kernels compute it."""

    def __init__(self, config, fmt):
        super().__init__(config, fmt)
        self.grid = FLOAT_GRIDS[fmt.grid]
        self.grid_max = self.grid.max_value

    def segmentation(self, shape, config):
        if self.format.tile:
            return Segmentation(shape, "tile", tile=self.block_size)
        return super().segmentation(shape, config)

    @property
    def segment_kind(self):
        return "tile" if self.format.tile else "block"

    def params(self, x, lo, hi, segmentation):
        amax = np.maximum(np.abs(lo), np.abs(hi))
        scale = (amax.astype(np.float32) / np.float32(self.grid.max_value)).astype(np.float64)
        zeros = np.zeros(amax.shape, np.int64)
        return QParams(scale, zeros, -amax, amax, zeros.astype(bool), scale == 0)

    def quantize(self, original, p, rounding, rng):
        scale = np.asarray(p["scale"], np.float32)
        live = scale != 0  # an all-zero block: its values stay 0 (0 / 0 would be NaN)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.where(live, original.astype(np.float32) / np.where(live, scale, 1), 0)
        rounded, saturated = self.grid.round(scaled.astype(np.float64), rounding, rng)
        recon = (rounded.astype(np.float32) * scale).astype(np.float64)
        return self.grid.encode(rounded), recon, saturated


FAMILIES = {"int": IntegerScheme, "float": FloatScheme, "nf4": NF4Scheme, "mx": MXScheme,
            "nvfp4": NVFP4Scheme, "ggml": GGMLScheme, "blockfp8": BlockFP8Scheme}


def scheme_for(config) -> Scheme:
    """The scheme of `config.format` (the Config has already checked the settings against it)."""
    fmt = config.format_row
    return FAMILIES[fmt.family](config, fmt)
