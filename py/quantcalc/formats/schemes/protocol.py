"""What every scheme answers for the analysis pipeline (engine/analysis.py), and the defaults.

  segmentation(shape, config)    which values share a scale (block formats fix their blocks)
  params(x, lo, hi, segmentation) per-segment scale and zero point (QParams, extra arrays allowed)
  quantize(x, p, rounding, rng)  codes, reconstruction and the clipped mask of one chunk (float64)
  quantize_span(start, x, ...)   the same for the values at flat positions start..
  spans(start, values, ...)      a chunk in its own dtype -> Spans (float64 values, codes,
                                 reconstruction, clipped), one by default (span()); llama.cpp's
                                 types override it (their searches span whole rows, and the
                                 legacy types yield their slab in parts: see llama_cpp.py)
  fake_quantize(values, lo, hi)  round-to-nearest reconstruction for a candidate range (MSE search)
  bits_per_value(count, segments) storage cost including scales, from the registry row's facts

Clipped, for every format: a value is clipped (saturated) when rounding it onto the format's grid,
without the grid's limits, would give a code beyond the grid's end, so it was clamped to that end
(the mask PyTorch's fake-quantize keeps). Formats that scale each block by its own largest
magnitude can still clip, e.g. MXFP4's power-of-two scale or Q4_0's opposite-sign values.
"""

from typing import Callable, Optional

import numpy as np

from quantcalc.errors import QuantcalcError
from quantcalc.formats.granularity import Segmentation
from quantcalc.formats.integer import QParams
from quantcalc.records import record
from quantcalc.schema import registry


def _as_is(values):
    return values


FLOAT32_MAX = float(np.finfo(np.float32).max)


def refuse_beyond_float32(label, amax):
    """Refuse values a format's float32 scale arithmetic cannot hold (they would become inf)."""
    largest = float(np.max(amax)) if np.size(amax) else 0.0
    if largest > FLOAT32_MAX:
        raise QuantcalcError(
            f"{label} computes its scales in float32 (at most 3.4028e+38); these values reach "
            f"{largest:.4g}. Scale the tensor down or choose another format", "format")


@record
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

    importance = None        # llama.cpp's weights per column, if given (engine/analysis.py)
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
