"""Error metrics, accumulated chunk by chunk in float64.

  mse = mean(e^2), rmse = sqrt(mse), mae = mean(|e|), max_abs_error = max |e|,
  sqnr_db = 10 log10(sum x^2 / sum e^2)  (inf when the error is zero),
  rel_rmse = rmse / rms(x) = sqrt(sum e^2 / sum x^2),
  clip_count / clip_rate: values whose code had to be clamped into [q_min, q_max].
"""

import math
import sys

import numpy as np

from quantcalc.errors import QuantcalcError
from quantcalc.formats import elementwise

NORMAL_MIN = sys.float_info.min  # 2.2e-308: float64's smallest number with all its digits


def power_of_two_unit(bound: float) -> float:
    """A power of two to divide values of magnitude <= `bound` by before squaring them.

    Squares of float64 values beyond ~1e154 overflow and below ~1e-154 underflow, which would
    turn SQNR into inf or 0 silently; dividing by a power of two is exact and keeps them in range.
    Returns 1.0 when no scaling is needed (the usual case: no extra work).
    """
    if bound == 0 or 1e-100 < bound < 1e100:
        return 1.0
    # 2^(e-1) <= bound < 2^e: dividing by 2^(e-1) leaves values below 2, and 2^(e-1) itself is
    # finite for every finite bound (2^e overflows for bound >= 2^1023 = 8.99e307)
    return math.ldexp(1.0, math.frexp(bound)[1] - 1)


class SumOfSquares:
    """sum v^2 kept as (ssq, unit) with the true value ssq * unit^2, safe from over/underflow.

    LAPACK's dnrm2 idea at chunk granularity: each chunk is squared in units of a power of two
    near its own maximum, so tiny or huge values (1e-300, 1e200) still give exact ratios.
    """

    def __init__(self):
        self.ssq = 0.0
        self.unit = 1.0

    def add(self, values: np.ndarray, max_abs: float):
        """Add sum(values^2); `values` (float64, owned by the caller) is overwritten."""
        unit = power_of_two_unit(max_abs)
        if unit != 1.0:
            values /= unit
        # square + numpy's pairwise sum, not np.dot: BLAS sums in a machine-dependent order, and
        # the page (Pyodide, no BLAS) must give the same last digit as the command line.
        self.add_part(float(np.add.reduce(np.square(values, out=values), axis=None)), unit)

    def add_part(self, part: float, unit: float):
        """Add a sum of squares taken in units of `unit` (a power of two)."""
        if self.ssq == 0.0:
            self.ssq, self.unit = part, unit
        elif unit > self.unit:
            self.ssq = self.ssq * (self.unit / unit) ** 2 + part
            self.unit = unit
        else:
            self.ssq += part * (unit / self.unit) ** 2

    def value(self) -> float:
        return self.ssq * self.unit * self.unit


class ErrorAccumulator:
    """Running sums over chunks of (original, error) pairs, accumulated in float64."""

    def __init__(self, signal_bound=1.0):
        """signal_bound: the largest |original| of all chunks, or None where each chunk
        brings its own (add's `bound`)."""
        self.signal_bound = signal_bound
        self.count = 0
        self.error_sq = SumOfSquares()
        self.signal_sq = SumOfSquares()
        self.sum_abs_error = 0.0
        self.max_abs_error = 0.0
        self.clip_count = 0

    def add(self, original: np.ndarray, error: np.ndarray, clipped=None, bound=None):
        """Add one chunk; `original` and `error` are float64 and are used up (overwritten);
        `clipped` is a bool mask or None; `bound` the chunk's largest |original| if known."""
        self.count += error.size
        magnitude = elementwise.magnitude(error, out=error)  # the caller is done with `error` except as |e|
        # the ufuncs' reduce: the same pairwise sum and maximum as .sum() and .max(), without
        # their Python wrapper, which costs microseconds on every part of a hot loop
        largest = float(np.maximum.reduce(magnitude, axis=None))
        self.max_abs_error = max(self.max_abs_error, largest)
        if largest * magnitude.size < 1e308:
            self.sum_abs_error += float(np.add.reduce(magnitude, axis=None))
        else:  # errors near float64's limit: the sum may overflow, and is refused then
            with np.errstate(over="ignore"):
                self.sum_abs_error += float(np.add.reduce(magnitude, axis=None))
        self.error_sq.add(magnitude, largest)
        if bound is None:
            bound = self.signal_bound
        if bound is None:
            bound = float(elementwise.magnitude(original).max())
        self.signal_sq.add(original, bound)
        if clipped is not None:
            self.clip_count += int(np.count_nonzero(clipped))

    def finish(self) -> dict:
        n = self.count
        error, signal = self.error_sq, self.signal_sq
        mse_in_units = error.ssq / n
        sqnr = sqnr_db(signal.ssq, error.ssq)
        if math.isfinite(sqnr):
            sqnr += 20.0 * log10_unit_ratio(signal.unit, error.unit)
        return {
            "count": n,
            "mse": mse_in_units * error.unit * error.unit,
            "rmse": math.sqrt(mse_in_units) * error.unit,
            "mae": self.sum_abs_error / n,
            "max_abs_error": self.max_abs_error,
            "sqnr_db": sqnr,
            "rel_rmse": relative_rmse(signal.ssq, error.ssq) * (error.unit / signal.unit),
            "clip_count": self.clip_count,
            "clip_rate": self.clip_count / n,
        }


def refuse_unmeasurable(metrics: dict, label: str, largest: float):
    """Refuse an error float64 cannot hold: its squares' mean (or its sum) overflows."""
    if not all(math.isfinite(metrics[k]) for k in ("mse", "mae", "max_abs_error")):
        raise QuantcalcError(f"{label}: the error of these values overflows float64 (largest "
                             f"magnitude {largest:.4g}); scale them down before quantizing",
                             "values")


def underflow_note(metrics: dict):
    """A note where the MSE is below float64's smallest normal number although the error is
    not zero (values near 1e-300, or an error far below an ordinary signal): float64 rounds
    the MSE to 0 or keeps few of its digits, while RMSE and SQNR, summed in units of a power
    of two, are exact. Say so rather than let MSE 0 read as no error."""
    if metrics["max_abs_error"] == 0 or metrics["mse"] >= NORMAL_MIN:
        return None
    return (f"MSE {metrics['mse']:.4g}: the squared error is below float64's smallest normal "
            f"number ({NORMAL_MIN:.4g}; the true MSE is about {_square_text(metrics['rmse'])}), "
            f"so it is rounded there; RMSE, max error and SQNR are exact")


def _square_text(rmse: float) -> str:
    """rmse^2 written out where float64 cannot hold it: mantissa and decimal exponent."""
    power = 2 * portable_log10(rmse)
    exponent = math.floor(power)
    mantissa = 10 ** (power - exponent)
    return f"{mantissa:.3g}e{exponent:+d}"


LOG10_2 = 0.30102999566398120
LOG10_E = 0.43429448190325182
SQRT_HALF = 0.70710678118654752


def portable_log10(x: float) -> float:
    """log10(x) for x > 0 from IEEE +, -, *, / only, so it is the same on every platform.

    The C library's log10 differs in the last bit between glibc (CPython on Linux) and musl
    (Pyodide), and the page must show exactly what the command line prints. x = m * 2^e with
    m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(z), z = (m-1)/(m+1), |z| < 0.172, whose odd power
    series reaches full double precision within 12 terms. Within 8 units in the last place of
    the C library (tests/engine/test_golden.py checks it over the whole float range).
    """
    m, e = math.frexp(x)
    if m < SQRT_HALF:
        m, e = m * 2.0, e - 1
    z = (m - 1.0) / (m + 1.0)
    z2 = z * z
    power, total = z, 0.0
    for k in range(1, 40, 2):
        total += power / k
        power *= z2
    return e * LOG10_2 + 2.0 * total * LOG10_E


def log10_unit_ratio(a: float, b: float) -> float:
    """log10(a / b) for powers of two a and b, from their exponents: a / b itself overflows when
    the error is subnormal (x = [1, 2e-313] gave a NaN SQNR). Equal to portable_log10(a / b)
    wherever that is finite (for 2^k it is k * LOG10_2 too)."""
    return (math.frexp(a)[1] - math.frexp(b)[1]) * LOG10_2


def sqnr_db(sum_sq_signal: float, sum_sq_error: float) -> float:
    if sum_sq_error == 0:
        return math.inf
    if sum_sq_signal == 0:
        return -math.inf
    return 10.0 * portable_log10(sum_sq_signal / sum_sq_error)


def relative_rmse(sum_sq_signal: float, sum_sq_error: float) -> float:
    if sum_sq_error == 0:
        return 0.0
    if sum_sq_signal == 0:
        return math.inf
    return math.sqrt(sum_sq_error / sum_sq_signal)


class WeightedAccumulator:
    """Importance-weighted sums: each value's squared error and squared size weighed by its
    column's importance a_j (llama.cpp's imatrix), the measure ggml's searches minimise. Summed
    as SumOfSquares are, so they agree with the plain metrics at any magnitude."""

    def __init__(self, importance, row_length):
        self.importance = np.asarray(importance, np.float64)
        self.row_length = row_length
        self.error_sq, self.signal_sq = SumOfSquares(), SumOfSquares()
        self.weight = 0.0

    def add(self, start, original, error):
        weights = self.importance[np.arange(start, start + error.size) % self.row_length]
        _add_weighted(self.error_sq, weights, error)
        _add_weighted(self.signal_sq, weights, original)
        self.weight += float(np.sum(weights))

    def finish(self, mse):
        """weighted_mse = sum a e^2 / sum a (the MSE when all weights are equal), its SQNR, and
        its ratio to the plain MSE."""
        if not self.weight:
            return {}
        error, signal = self.error_sq, self.signal_sq
        weighted = error.ssq / self.weight * error.unit * error.unit
        sqnr = sqnr_db(signal.ssq, error.ssq)
        if math.isfinite(sqnr):
            sqnr += 20.0 * log10_unit_ratio(signal.unit, error.unit)
        return {"weighted_mse": weighted, "weighted_sqnr_db": sqnr,
                "weighted_mse_ratio": weighted / mse if mse else None}


def _add_weighted(total: SumOfSquares, weights, values):
    """Add sum(w v^2) to `total`: as is where that sum is comfortably inside float64 (ordinary
    data: one pass, the same digits as ever), else once more in units of a power of two near
    max |v| (exact scaling; values near 1e-300 or 1e200 would square to 0 or inf)."""
    part = float(np.sum(weights * values * values))
    unit = 1.0
    if not 1e-250 < part < 1e250:
        unit = power_of_two_unit(float(np.abs(values).max()) if values.size else 0.0)
        if unit != 1.0:
            scaled = values / unit
            part = float(np.sum(weights * scaled * scaled))
    total.add_part(part, unit)
