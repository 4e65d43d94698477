"""llama.cpp's types (Q8_0, Q4_0 … Q6_K, IQ4_NL, IQ4_XS) as a scheme, bit-exact with ggml.

The arithmetic lives in formats/ggml/ (legacy, search, types) and is imported the first time a
llama.cpp format is used, not when this module is: the calculator's other formats never load
ggml's searches and tables (python -X importtime: they were about 40 % of formats/' own import
time, and Pyodide pays for each module it imports at start-up).
"""

from functools import cache
from types import SimpleNamespace

import numpy as np

from quantcalc.errors import QuantcalcError
from quantcalc.formats.integer import QParams
from quantcalc.formats.schemes.protocol import Scheme, Span


# No llama.cpp type reaches 2^32 with finite fp16 scales: the widest, Q6_K (d·sc·(q − 32), sc
# down to -128) and IQ4_XS (d·level·value, levels to -32, values to -127), stop near 2.7e8. Blocks
# between a type's own reach and this are refused once ggml's scales come out infinite (below).
REACH = 2.0 ** 32


@cache
def _ggml():
    """formats/ggml/'s modules and the block-column layout its legacy types use, imported once,
    on first use (see the module docstring)."""
    from quantcalc.formats import block_columns
    from quantcalc.formats.ggml import legacy, search, types
    return SimpleNamespace(legacy=legacy, search=search, types=types, columns=block_columns)


def _instead(name, width) -> tuple:
    """What llama-quantize does with such rows, from its own fallback table (formats/ggml),
    and the settings that measure it here ({"format": "q5_0"}; None for F16 or no fallback)."""
    from quantcalc.formats.ggml import fallback
    found = fallback.for_row_length(name, width)
    if found is None or found.used is None:
        return f"llama-quantize stops on such a tensor: {name.upper()} has no fallback type", None
    settings = None if found.used == "F16" else {"format": found.used.lower()}
    return f"llama-quantize writes such a tensor as {found.used} instead", settings


class GGMLScheme(Scheme):
    """llama.cpp's types (formats/ggml/types.py, bit-exact with ggml). Their codes come out of
    searches over whole blocks, super-blocks and (with an importance matrix) rows, so a span of
    whole rows is quantized at once, and each block's scale is filled in as it goes."""

    def __init__(self, config, fmt):
        super().__init__(config, fmt)
        _ggml()  # the imports happen here, once, rather than in the middle of a quantization
        top = (1 << fmt.element_bits) - 1
        # codes around 0 (Q8_0: -127..127, offset 0), else unsigned codes 0..2^bits - 1
        self.q_min, self.q_max = (-(top >> 1), top >> 1) if fmt.code_offset == 0 else (0, top)
        self.has_zero_point = fmt.code_offset is not None
        if fmt.element == "codebook":
            self.grid_max = float(-_ggml().types.IQ4_VALUES[0])  # levels are -127 … 113 steps
        self.scales = None
        self._buffers = {}  # float64 work arrays reused part after part (legacy.scratch)

    def segmentation(self, shape, config):
        width = shape[-1] if shape else 1
        unit = self.format.super_block or self.block_size
        if width % unit:
            what = "its super-blocks" if self.format.super_block else "its blocks"
            instead, settings = _instead(self.format.name, width)
            raise QuantcalcError(
                f"{self.label} needs rows whose length is a multiple of {unit} ({what}); these "
                f"rows have {width} values. {instead}", "format", suggestion=settings)
        self.row_length = width
        return super().segmentation(shape, config)

    def _as_columns(self):
        return self.format.name in _ggml().legacy.TYPES and self.importance is None

    @property
    def chunk_values(self):
        """Whole rows per slab (a search with an importance matrix spans a row): about 2^18
        values (legacy.SLAB_VALUES for the legacy types, whose blocks' numbers are worked out
        for a whole slab at once and their values quantized in parts of 2^17)."""
        values = _ggml().legacy.SLAB_VALUES if self._as_columns() else 1 << 18
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
            types = _ggml().types
            scaled = original / d if d else np.zeros_like(original)
            codes = types.best_index(scaled.astype(np.float32))
            return codes, d * types.IQ4_VALUES[codes].astype(np.float64), None
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
        with np.errstate(over="ignore", invalid="ignore"):  # an fp16 overflow is refused below
            if self._as_columns():
                yield from self._legacy_spans(start, rows)
                return
            columns = _ggml().columns
            blocks = columns.Columns(rows, self.block_size, columns.holding(rows.dtype))
            low, high = blocks.reduce(np.minimum), blocks.reduce(np.maximum)  # as given
            self._refuse_beyond_reach(low, high)  # before ggml's searches overflow
            out = _ggml().types.quantize(self.format.name, rows, self.importance)
        bound = self._keep_block_numbers(start // self.block_size, out.scales, out.bases,
                                         low, high)
        yield Span(values.astype(np.float64), out.codes.reshape(-1), out.recon.reshape(-1),
                   out.clipped.reshape(-1), bound, start=start)

    def _legacy_spans(self, start, rows):
        """A legacy type without an importance matrix: the slab's blocks as columns, their
        numbers worked out at once, their values quantized (and yielded) a part at a time."""
        legacy = _ggml().legacy
        slab = legacy.Slab(self.format.name, rows)
        bound = self._keep_block_numbers(start // self.block_size, slab.scales, slab.bases,
                                         slab.low, slab.high)
        for part in slab.parts(buffers=self._buffers):
            # as ggml stores them: codes and float32 reconstructions (the error is taken in
            # float64: float32 -> float64 is exact)
            yield Span(part.values, part.codes, part.recon, part.clipped, bound,
                       _ggml().columns.natural, start + part.first * self.block_size,
                       legacy.scratch(self._buffers, "error", part.values.shape))

    def _refuse_beyond_reach(self, low, high):
        """Refuse blocks beyond what any fp16 scale reaches (REACH) before they are searched:
        ggml's float32 searches overflow on such values (their sums of x^2 and x^3), so where
        its fp16 scales would be infinite Q3_K, Q6_K and IQ4_XS store zero ones instead (every
        value 0: an SQNR of 0 dB, not a measurement) and IQ4_NL NaN ones."""
        largest = max(-float(low.min()), float(high.max()))
        if largest >= REACH:
            self._refuse_fp16(largest)
        return largest

    def _refuse_fp16(self, largest):
        """Refused in the same words for every llama.cpp type."""
        raise QuantcalcError(
            f"{self.label} stores its scales as fp16 (at most 65504); a block here, whose "
            f"largest magnitude is {largest:.4g}, needs more: ggml would store an infinite "
            f"scale (or, where its float32 search overflows, a zero one). Scale the tensor "
            f"down or choose another format", "format")

    def _keep_block_numbers(self, first, scales, bases, low, high):
        """Store the blocks' scales, bases and data ranges, refusing an fp16 overflow; returns
        the slab's largest magnitude."""
        largest = self._refuse_beyond_reach(low, high)
        # finite fp16 scales and bases give finite reconstructions (codes are at most 127). A
        # legacy type's scale and min are no larger than the block's largest magnitude, so
        # below fp16's overflow (65520) none of them can be infinite
        if (largest >= _ggml().search.HALF_MAX_ROUNDED or not self._as_columns()) and not (
                np.all(np.isfinite(scales)) and (bases is None or np.all(np.isfinite(bases)))):
            self._refuse_fp16(largest)
        segments = slice(first, first + low.size)
        self.scales[segments] = scales
        if bases is not None:  # else they stay 0 (params)
            self.bases[segments] = bases.reshape(-1)
        self.lows[segments], self.highs[segments] = low, high
        return largest
