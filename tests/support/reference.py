"""An independent reference: the affine quantization formulas in exact rational arithmetic (fractions).

No numpy in the arithmetic, no shared code with quantcalc: if both agree, the engine computes the
formulas, not just itself.
"""

from fractions import Fraction
import math


def _round(value: Fraction, rule: str) -> int:
    floor = math.floor(value)
    frac = value - floor
    if rule == "half-even":
        return round(value)  # Python rounds Fractions half to even
    if rule == "half-away":
        if frac == Fraction(1, 2):
            return floor + 1 if value > 0 else floor
        return round(value)
    if rule == "floor":
        return floor
    if rule == "ceil":
        return math.ceil(value)
    if rule == "toward-zero":
        return math.trunc(value)
    raise ValueError(rule)


# The documented scale of a zero-width range (PyTorch's floor, float32 eps); any positive range
# keeps its own scale.
SCALE_FLOOR = Fraction(2) ** -23


def _scale(value):
    return value if value > 0 else SCALE_FLOOR


def qparams(real_min, real_max, bits, mode, narrow_range=False):
    lo, hi = Fraction(real_min), Fraction(real_max)
    if mode == "symmetric":
        q_max = 2 ** (bits - 1) - 1
        q_min = -q_max if narrow_range else -(2 ** (bits - 1))
        scale = _scale(max(abs(lo), abs(hi)) / q_max)
        return scale, 0, q_min, q_max
    q_min, q_max = 0, 2 ** bits - 1
    lo, hi = min(lo, 0), max(hi, 0)
    scale = _scale((hi - lo) / (q_max - q_min))
    zero_point = min(max(round(q_min - lo / scale), q_min), q_max)
    return scale, zero_point, q_min, q_max


def quantize(values, real_min, real_max, bits=8, mode="symmetric", rounding="half-even",
             narrow_range=False):
    """Codes, reconstructions (Fractions) and clipped flags, per the formulas."""
    scale, zero_point, q_min, q_max = qparams(real_min, real_max, bits, mode, narrow_range)
    codes, recon, clipped = [], [], []
    for x in values:
        q = _round(Fraction(x) / scale + zero_point, rule=rounding)
        clipped.append(q < q_min or q > q_max)
        q = min(max(q, q_min), q_max)
        codes.append(q)
        recon.append((q - zero_point) * scale)
    return scale, zero_point, codes, recon, clipped


def metrics(values, recon):
    errors = [Fraction(x) - r for x, r in zip(values, recon)]
    n = len(errors)
    sum_sq = sum(e * e for e in errors)
    signal = sum(Fraction(x) ** 2 for x in values)
    mse = sum_sq / n
    return {
        "mse": float(mse),
        "rmse": math.sqrt(mse),
        "mae": float(sum(abs(e) for e in errors) / n),
        "max_abs_error": float(max(abs(e) for e in errors)),
        "sqnr_db": math.inf if sum_sq == 0 else 10 * math.log10(signal / sum_sq),
    }
