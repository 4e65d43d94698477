"""Element grids of the non-integer formats: small floats (FP8/FP6/FP4) and the NF4 codebook.

A grid rounds values already divided by their scale ("format units") to representable values.
Floats: sign-magnitude with `exponent_bits` and `mantissa_bits`, subnormals included, rounding
on the grid (round to nearest even by default: the count of quanta has the parity of the mantissa's
last bit), saturating at the largest finite value instead of producing Inf/NaN.
"""

import numpy as np

from quantcalc.formats.integer import round_in_place
from quantcalc.records import record


@record(frozen=True)
class FloatGrid:
    name: str
    exponent_bits: int
    mantissa_bits: int
    bias: int
    max_value: float

    @property
    def bits(self) -> int:
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def min_exponent(self) -> int:
        """Exponent of the smallest normal number (subnormals share its quantum)."""
        return 1 - self.bias

    def round(self, values, rounding="half-even", rng=None):
        """Nearest representable values (float64) and which inputs saturated at +-max."""
        values = np.asarray(values, np.float64)
        _, exponent = np.frexp(np.abs(values))  # |v| = m 2^e, m in [0.5, 1): floor(log2|v|) = e-1
        quantum = np.ldexp(1.0, np.maximum(exponent - 1, self.min_exponent) - self.mantissa_bits)
        counts = round_in_place(np.array(values / quantum, np.float64, ndmin=1), rounding, rng)
        rounded = counts * quantum  # exact: a power-of-two scaling of an integer
        saturated = np.abs(rounded) > self.max_value
        np.clip(rounded, -self.max_value, self.max_value, out=rounded)
        return rounded.reshape(values.shape), saturated.reshape(values.shape)

    def encode(self, rounded):
        """Bit patterns (sign | biased exponent | mantissa) of representable values."""
        rounded = np.asarray(rounded, np.float64)
        magnitude = np.abs(rounded)
        _, exponent = np.frexp(magnitude)
        exponent = np.maximum(exponent - 1, self.min_exponent)
        normal = magnitude >= np.ldexp(1.0, self.min_exponent)
        quanta = magnitude / np.ldexp(1.0, exponent - self.mantissa_bits)
        mantissa = np.where(normal, quanta - (1 << self.mantissa_bits), quanta).astype(np.int64)
        biased = np.where(normal, exponent + self.bias, 0).astype(np.int64)
        sign = np.signbit(rounded).astype(np.int64)
        return (sign << (self.exponent_bits + self.mantissa_bits)) \
            | (biased << self.mantissa_bits) | mantissa

    def decode(self, codes):
        """Values (float64) of bit patterns, the inverse of `encode`, specials included: where
        the largest finite value leaves the all-ones exponent out (E5M2, as IEEE), that binade is
        +-Inf (mantissa 0) and NaN; elsewhere (E4M3FN) only patterns past max_value are NaN."""
        codes = np.asarray(codes).astype(np.int64)
        mantissa = codes & ((1 << self.mantissa_bits) - 1)
        biased = (codes >> self.mantissa_bits) & ((1 << self.exponent_bits) - 1)
        negative = ((codes >> (self.exponent_bits + self.mantissa_bits)) & 1).astype(bool)
        normal = biased > 0
        significand = np.where(normal, mantissa + (1 << self.mantissa_bits), mantissa)
        exponent = np.maximum(biased, 1) - self.bias - self.mantissa_bits
        values = np.ldexp(significand.astype(np.float64), exponent)
        top = (1 << self.exponent_bits) - 1
        if np.ldexp(1.0, top - self.bias) > self.max_value:
            values = np.where(biased == top, np.where(mantissa == 0, np.inf, np.nan), values)
        else:
            values = np.where(values > self.max_value, np.nan, values)
        return np.where(negative, -values, values)

    def representable(self) -> np.ndarray:
        """All non-negative finite values, ascending."""
        exponents = np.arange(self.min_exponent, self.min_exponent + (1 << self.exponent_bits))
        mantissas = np.arange(1 << self.mantissa_bits) / (1 << self.mantissa_bits)
        normal = (np.ldexp(1.0, exponents)[:, None] * (1 + mantissas[None, :])).reshape(-1)
        subnormal = np.ldexp(1.0, self.min_exponent) * mantissas
        values = np.unique(np.concatenate([subnormal, normal]))
        return values[values <= self.max_value]


FLOAT_GRIDS = {
    "fp8_e4m3": FloatGrid("fp8_e4m3", 4, 3, 7, 448.0),       # E4M3FN: no Inf, S.1111.111 is NaN
    "fp8_e5m2": FloatGrid("fp8_e5m2", 5, 2, 15, 57344.0),    # IEEE-like; we saturate instead of Inf
    "fp6_e2m3": FloatGrid("fp6_e2m3", 2, 3, 1, 7.5),
    "fp6_e3m2": FloatGrid("fp6_e3m2", 3, 2, 3, 28.0),
    "fp4_e2m1": FloatGrid("fp4_e2m1", 2, 1, 1, 6.0),
}

# QLoRA's NormalFloat4 levels, as bitsandbytes defines them (float32 values).
NF4_LEVELS = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0])
_NF4_MIDPOINTS = (NF4_LEVELS[1:] + NF4_LEVELS[:-1]) / 2


def nf4_round(values):
    """Nearest NF4 level of values in [-1, 1] and its index (a value exactly between two levels
    takes the lower one, as bitsandbytes' `x > midpoint` comparisons do)."""
    index = np.searchsorted(_NF4_MIDPOINTS, values, side="left")
    return NF4_LEVELS[index], index
