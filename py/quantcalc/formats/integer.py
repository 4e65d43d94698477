"""Integer grids: which codes exist, and the scale, zero point and rounding that map values onto
them.

The grid (`IntegerFormat`): signed or unsigned, 2 to 16 bits, optionally narrow range, giving
`q_min` and `q_max`. The other formats' grids are in `float_grids.py` and what each format is,
in `schema/registry.py`.

The symmetric scale is TensorRT's and ONNX Runtime's amax / q_max (PyTorch's observers divide by
(q_max - q_min) / 2 instead, which differs by half a code at 8 bits); the asymmetric one is the
usual affine mapping:
  symmetric:  scale = max(|real_min|, |real_max|) / q_max,       zero_point = 0
  asymmetric: scale = (real_max - real_min) / (q_max - q_min),
              zero_point = round(q_min - real_min / scale)
  q = clamp(round(x / scale + zero_point), q_min, q_max);        x_hat = (q - zero_point) * scale
All arithmetic is float64 so that what the calculator shows is the exact value of the formula.
"""

from dataclasses import field

import numpy as np

from quantcalc.errors import QuantcalcError
from quantcalc.records import record

MIN_BITS = 2
MAX_BITS = 16


@record(frozen=True)
class IntegerFormat:
    """Integers of `bits` bits, signed (two's complement) or unsigned.

    Args:
        bits: 2..16.
        signed: True for [-2^(b-1), 2^(b-1)-1], False for [0, 2^b-1].
        narrow_range: signed only; drop -2^(b-1) so the grid is symmetric (q_min = -q_max), as
            TensorRT and ONNX Runtime do for weights.
    """

    bits: int
    signed: bool = True
    narrow_range: bool = False

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, int):
            raise QuantcalcError(f"bit depth must be a whole number, got {self.bits!r}", "bits")
        if not MIN_BITS <= self.bits <= MAX_BITS:
            raise QuantcalcError(
                f"bit depth must be between {MIN_BITS} and {MAX_BITS}, got {self.bits}", "bits")
        if self.narrow_range and not self.signed:
            raise QuantcalcError("narrow range applies to symmetric (signed) mode only",
                                 "narrow_range")

    @property
    def q_min(self) -> int:
        if not self.signed:
            return 0
        full = -(1 << (self.bits - 1))
        return full + 1 if self.narrow_range else full

    @property
    def q_max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def levels(self) -> int:
        return self.q_max - self.q_min + 1

    @property
    def name(self) -> str:
        return f"int{self.bits}" if self.signed else f"uint{self.bits}"


# A zero-width range (all zeros) has no scale; it takes float32 eps, PyTorch's floor, so nothing
# divides by zero. Any positive range keeps its own scale amax / q_max however small, as ONNX
# Runtime and TensorRT compute it (PyTorch's observers floor every scale at eps: analysis notes
# where that would differ).
SCALE_FLOOR = float(np.finfo(np.float32).eps)


@record
class QParams:
    """Per-segment quantization parameters (float64 / int64 arrays of one length)."""

    scale: np.ndarray
    zero_point: np.ndarray
    real_min: np.ndarray   # the range the scale was computed from, after widening / symmetrising
    real_max: np.ndarray
    widened: np.ndarray    # asymmetric range had to be stretched to include 0
    floored: np.ndarray    # zero-width range: scale set to SCALE_FLOOR
    extra: dict = field(default_factory=dict)  # format-specific per-segment arrays


def qparams(lo, hi, fmt: IntegerFormat, mode: str) -> QParams:
    """Scale and zero point for each segment's range [lo, hi].

    Args:
        lo, hi: arrays of range ends, lo <= hi.
        fmt: the integer grid (gives q_min, q_max).
        mode: "symmetric" (zero point 0) or "asymmetric" (range widened to include 0 so that
            zero is exactly representable, zero point rounded half to even and clamped).
    """
    lo = np.asarray(lo, np.float64)
    hi = np.asarray(hi, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing range is refused later
        return _qparams(lo, hi, fmt, mode)


def _qparams(lo, hi, fmt, mode):
    if mode == "symmetric":
        amax = np.maximum(np.abs(lo), np.abs(hi))
        real_min, real_max = -amax, amax
        raw = amax / fmt.q_max
        widened = np.zeros(lo.shape, bool)
    else:
        real_min, real_max = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
        widened = (real_min != lo) | (real_max != hi)
        raw = (real_max - real_min) / (fmt.q_max - fmt.q_min)
    floored = ~(raw >= np.finfo(np.float64).tiny)  # zero width (or a subnormal step)
    scale = np.where(floored, SCALE_FLOOR, raw)
    if mode == "symmetric":
        zero_point = np.zeros(lo.shape, np.int64)
    else:
        # -real_min / scale divides by an already rounded scale: for [-1000, 1000] at 4 bits it
        # gives 7.4999999 where the formula's exact value is 7.5 (a tie that rounds to 8). Scaling
        # by the level count over the width rounds once, so a zero point that is exactly k + 0.5
        # stays a tie and rounds half to even like the formula says.
        levels = fmt.q_max - fmt.q_min
        offset = np.where(floored, -real_min / scale, -real_min * levels / (real_max - real_min))
        zero_point = np.clip(np.rint(fmt.q_min + offset), fmt.q_min, fmt.q_max).astype(np.int64)
    return QParams(scale, zero_point, real_min, real_max, widened, floored)


def round_in_place(scaled: np.ndarray, rounding: str, rng=None) -> np.ndarray:
    """Round float64 `scaled` in place to integers by the named rule; returns it.

    "stochastic" rounds up with probability equal to the fractional part, drawing from `rng`
    (a numpy Generator), so it is unbiased and reproducible for a given seed.
    """
    if rounding == "half-even":
        np.rint(scaled, out=scaled)
    elif rounding == "floor":
        np.floor(scaled, out=scaled)
    elif rounding == "ceil":
        np.ceil(scaled, out=scaled)
    elif rounding == "toward-zero":
        np.trunc(scaled, out=scaled)
    elif rounding == "half-away":
        whole = np.trunc(scaled)
        # |fraction| >= 0.5 steps away from zero; exact for every float (no +0.5 before floor).
        away = np.abs(scaled - whole) >= 0.5
        np.add(whole, np.copysign(away, scaled), out=scaled)
    elif rounding == "stochastic":
        down = np.floor(scaled)
        up = rng.random(scaled.shape) < (scaled - down)
        np.add(down, up, out=scaled)
    else:
        raise ValueError(f"unknown rounding {rounding!r}")
    return scaled


def round_and_clamp(scaled, zero_point, q_min, q_max, rounding="half-even", *, rng=None,
                    check=True):
    """Turn float64 `scaled` (x / scale, owned by the caller) into codes in place: add the zero
    point, round, clamp to [q_min, q_max]. Returns the clipped mask, or None when nothing was
    clipped (the common case, which then costs no mask at all).

    A value is clipped when its rounded code fell outside [q_min, q_max] so clamping moved it
    (the mask PyTorch's fake-quantize keeps for its gradient). check=False: the caller knows
    no code can leave the range (IntegerScheme.note_data_range), so the two passes that look are
    skipped.
    """
    if np.any(zero_point):  # symmetric mode: skip a pass that adds zeros
        scaled += zero_point
    round_in_place(scaled, rounding, rng)
    if not check or (scaled.min() >= q_min and scaled.max() <= q_max):
        return None
    clipped = (scaled < q_min) | (scaled > q_max)
    np.clip(scaled, q_min, q_max, out=scaled)
    return clipped


def quantize(x, scale, zero_point, fmt: IntegerFormat, rounding="half-even", rng=None):
    """Integer codes of `x` (as int64) and which values were clipped (see round_and_clamp)."""
    codes = np.array(np.asarray(x, np.float64) / scale, np.float64, ndmin=1)
    clipped = round_and_clamp(codes, zero_point, fmt.q_min, fmt.q_max, rounding, rng=rng)
    return codes.astype(np.int64), (np.zeros(codes.shape, bool) if clipped is None else clipped)

