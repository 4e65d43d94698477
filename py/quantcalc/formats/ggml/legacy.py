"""llama.cpp's legacy types without an importance matrix (ggml-quants.c quantize_row_q8_0_ref,
quantize_row_q{4,5}_{0,1}_ref), bit-identical to ggml, on blocks laid out as columns.

No search here: each block's scale comes from its extremes and every value is one scaled
rounding. So the blocks of a slab are laid out once (block_columns.Columns), their parameters
computed for all of them at once, and the values quantized a part at a time (about 2^17 values,
whose dozen passes stay in cache), each part's arithmetic on whole rows. The analysis takes its
error sums part by part in that layout. The float32 steps are C's, in its order
(formats/ggml/search.py says how exactness is kept).
"""

from typing import Optional

import numpy as np

from quantcalc.formats.block_columns import LANES, Columns, holding, natural
from quantcalc.formats.ggml.search import F32, filled, fp16, inverse
from quantcalc.records import record

QK = 32               # values per block
SLAB_VALUES = 1 << 18  # values whose blocks' numbers are worked out at once (whole rows): its
#                        layout, 1 MiB, fits a core's second-level cache (2^19: Q4_1 +0.7 ms)
PART_BLOCKS = 4096    # blocks quantized at a time (2^17 values)


@record
class Part:
    """Some consecutive blocks quantized, as (8, 4 · blocks) arrays in the Columns layout."""

    first: int                      # the first block's number in the slab
    values: Optional[np.ndarray]    # float64, the values (None unless parts() keeps them)
    codes: np.ndarray               # the stored codes (int8, or float32 holding them)
    recon: np.ndarray               # float32, dequantize_row_*'s values
    clipped: Optional[np.ndarray]   # bool, or None where no block of the part can clip


def _signed_largest(blocks, low, high):
    """Each block's value of largest magnitude, the first one where +a and -a tie, as C's
    `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }` from amax = max = 0 finds it."""
    minus_low = -low
    top = np.where(minus_low > high, low, high)
    tied = minus_low == high
    if tied.any():  # rare: look for the first of +a and -a (and skip the all-zero blocks)
        ties = np.flatnonzero(tied & (high > 0))
        tied_blocks = blocks[ties]
        top[ties] = tied_blocks[np.arange(ties.size), np.argmax(np.abs(tied_blocks), axis=1)]
    top += F32(0)  # an all -0.0 block: C's max stays 0.0f
    return top


def _first_zero(blocks, extreme):
    """C's scans (`if (v < min) min = v;` from FLT_MAX, likewise max) keep the first of equal
    values, and +0.0 == -0.0: a block whose minimum or maximum is zero keeps the sign of its
    first zero (the stored fp16 min shows it). numpy's minimum may keep either. `extreme` is
    corrected in place and returned."""
    zero = extreme == 0
    if zero.any():  # rare: blocks of non-negative (or non-positive) values reaching zero
        at = np.flatnonzero(zero)
        extreme[at] = blocks[at, np.argmax(blocks[at] == 0, axis=1)]
    return extreme


class OffsetType:
    """Q4_0 / Q5_0 (x = (q - nmax) d, nmax 8 / 16) and Q4_1 / Q5_1 (affine: x = q d + m,
    nmax 15 / 31).

    The C code per value: q = MIN(top, (int8_t)(v*id + nmax + 0.5f)) or
    MIN(nmax, (int8_t)((v - min)*id + 0.5f)). Its argument lies in [0, 2 nmax + 1) here, so
    the cast truncates: numpy's own cast to int8 does it for Q4_0 / Q5_0, np.trunc for the
    affine types (whose reconstruction needs the codes as float32 anyway), and clamping before
    truncating clamps the same values."""

    def __init__(self, nmax, affine):
        self.nmax, self.affine = nmax, affine
        self.top = nmax if affine else 2 * nmax - 1
        self.add = F32(0.5) if affine else F32(nmax + 0.5)

    def blocks(self, layout, low, high):
        """Per block: the stored scale and min, and per value (spread): what the values need."""
        if self.affine:
            low, high = _first_zero(layout.blocks, low), _first_zero(layout.blocks, high)
            width = high - low  # C: min from FLT_MAX, max from -FLT_MAX
            d = width / F32(self.nmax)
            scale_inverse = inverse(d)
            most = width * scale_inverse + self.add
            dq, m = fp16(np.stack([d, low]))  # one call for both: these arrays are short
            spread = _spread(inverse=scale_inverse, dq=dq, low=low, m=m)
        else:
            d = _signed_largest(layout.blocks, low, high) / F32(-self.nmax)
            scale_inverse = inverse(d)
            most = np.maximum(high * scale_inverse + self.add, low * scale_inverse + self.add)
            dq, m = fp16(d), None
            spread = _spread(inverse=scale_inverse, dq=dq)
        # every step from a value to its scaled value is monotone (float32 rounding included),
        # so a block whose extremes stay below top + 1 clips no value
        return dq, m, most >= self.top + 1, spread

    def values(self, scaled, p, may_clip, buffer):
        """Quantize `scaled` (a part of the layout's values, overwritten); buffer(name, dtype)
        gives an array of scaled's shape for each result."""
        recon = buffer("recon", F32)
        if self.affine:
            scaled -= p["low"]
        scaled *= p["inverse"]
        scaled += self.add
        if self.affine:  # blocks that clip are rare here (rounding at the top only)
            clipped = None
            if may_clip:  # else no value reaches top + 1 and MIN(top, ...) changes nothing
                clipped = np.greater_equal(scaled, self.top + 1, out=buffer("clipped", bool))
                np.minimum(scaled, filled(scaled.shape, self.top), out=scaled)
            codes = np.trunc(scaled, out=scaled)
            np.multiply(codes, p["dq"], out=recon)
            recon += p["m"]  # x0*d + m: two float32 roundings, as dequantize_row_q{4,5}_1
            return codes, recon, clipped
        # C's own (int8_t) cast (the argument is below 2 nmax + 1): comparing and clamping
        # bytes costs a fifth of doing it to float32, and q - nmax stays exact
        codes = buffer("codes", np.int8)
        np.copyto(codes, scaled, casting="unsafe")
        clipped = None
        if may_clip:
            clipped = np.greater(codes, self.top, out=buffer("clipped", bool))
            np.minimum(codes, filled(codes.shape, self.top, np.int8), out=codes)
        offset = np.subtract(codes, np.int8(self.nmax), out=buffer("offset", np.int8))
        np.multiply(offset, p["dq"], out=recon)
        return codes, recon, clipped


class Q8_0:
    """Q8_0: d = amax / 127, q = roundf(v * id). roundf rounds halves away from zero, np.rint
    to even: they differ only where v * id is exactly n + 1/2 (r - v * id is exact in float32
    for |v * id| <= 127), fixed there."""

    def blocks(self, layout, low, high):
        amax = np.maximum(high, -low)
        amax += F32(0)  # MAX(amax, fabsf(v)) from 0.0f: never -0.0
        d = amax / F32(127)
        scale_inverse = inverse(d)
        may_clip = np.maximum(np.rint(high * scale_inverse), -np.rint(low * scale_inverse)) > 127
        dq = fp16(d)
        return dq, None, may_clip, _spread(inverse=scale_inverse, dq=dq)

    def values(self, scaled, p, may_clip, buffer):
        scaled *= p["inverse"]
        codes = np.rint(scaled, out=buffer("codes", F32))
        gap = np.subtract(codes, scaled, out=buffer("gap", F32))
        np.abs(gap, out=gap)
        halfway = np.equal(gap, F32(0.5), out=buffer("halfway", bool))
        if halfway.any():
            codes[halfway] = scaled[halfway] + np.copysign(F32(0.5), scaled[halfway])
        codes += F32(0)  # -0.0 -> 0: C stores the int 0, whose reconstruction is +0.0
        clipped = None
        if may_clip:
            clipped = np.greater(np.abs(codes, out=gap), 127, out=buffer("clipped", bool))
        return codes, np.multiply(codes, p["dq"], out=buffer("recon", F32)), clipped


def _spread(**per_block):
    """Each per-block array (float32) spread over the layout's columns, all in one call."""
    rows = Columns.spread(np.stack(list(per_block.values())))
    return dict(zip(per_block, rows))


TYPES = {"q8_0": Q8_0(), "q4_0": OffsetType(8, False), "q5_0": OffsetType(16, False),
         "q4_1": OffsetType(15, True), "q5_1": OffsetType(31, True)}


class Slab:
    """A slab of rows (float32, whole blocks per row) under legacy type `name`: every block's
    parameters at once, then its values a part at a time (parts())."""

    def __init__(self, name, rows):
        self.type = TYPES[name]
        self.layout = Columns(rows, QK)  # float32: what ggml quantizes
        low, high = self.layout.reduce(np.minimum), self.layout.reduce(np.maximum)
        self.scales, self.bases, self.may_clip, self._per_value = self.type.blocks(
            self.layout, low, high)
        # the values as given, where float32 rounds them (float64 typed or pasted values): the
        # error and the data range are the given values', as for every other format
        self.originals = None if holding(rows.dtype) == F32 else Columns(rows, QK, np.float64)
        self.low, self.high = (low, high) if self.originals is None else \
            (self.originals.reduce(np.minimum), self.originals.reduce(np.maximum))

    def parts(self, blocks=None, keep_values=True, buffers=None):
        """Yield each Part of up to `blocks` blocks; keep_values: with the values as float64
        (the analysis's error), taken before the part's values become its codes, into an
        array of `buffers` (a dict kept by the caller: the same memory part after part, hot in
        cache) where given."""
        blocks = blocks or PART_BLOCKS
        for first in range(0, self.layout.count, blocks):
            columns = slice(first * LANES, (first + blocks) * LANES)
            scaled = self.layout.values[:, columns]
            values = None
            if keep_values:
                values = scratch(buffers, "values", scaled.shape)
                np.copyto(values, scaled if self.originals is None
                          else self.originals.values[:, columns])
            p = {k: v[columns] for k, v in self._per_value.items()}
            codes, recon, clipped = self.type.values(
                scaled, p, bool(self.may_clip[first:first + blocks].any()),
                lambda name, dtype: scratch(buffers, name, scaled.shape, dtype))
            yield Part(first, values, codes, recon, clipped)


def scratch(buffers, name, shape, dtype=np.float64):
    """An array of `shape` from `buffers` (made there the first time), or a new one."""
    if buffers is None:
        return np.empty(shape, dtype)
    key = (name, shape, dtype)
    if key not in buffers:
        buffers[key] = np.empty(shape, dtype)
    return buffers[key]


def in_rows(name, rows):
    """Type `name` in the rows' own layout: (codes int64, recon float32, clipped bool, scales,
    bases), each per-value array shaped as (blocks, 32)."""
    slab = Slab(name, rows)
    codes, recon, clipped = [], [], []
    for part in slab.parts(keep_values=False):
        codes.append(natural(part.codes))
        recon.append(natural(part.recon))
        clipped.append(np.zeros(part.codes.size, bool) if part.clipped is None
                       else natural(part.clipped))
    return (np.concatenate(codes).astype(np.int64).reshape(-1, QK),
            np.concatenate(recon).reshape(-1, QK), np.concatenate(clipped).reshape(-1, QK),
            slab.scales, slab.bases)
