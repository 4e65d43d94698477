"""What every framework convention answers, and the checks they share.

A convention reproduces one framework's integer (or float8) quantization bit for bit: its scale
and zero point rule, its float32 arithmetic and its calibrators. It refuses, with the reason, a
setting the framework does not offer rather than computing something the framework never would.
"""

import numpy as np

from quantcalc.errors import QuantcalcError
from quantcalc.formats.integer import QParams

F32 = np.float32
FLOAT32_MAX = float(np.finfo(F32).max)
HALF_EVEN = "half-even"


def as_float32(values):
    """The values as the framework holds them: a float32 tensor (a float64 input is cast, as
    torch.tensor(x).float() or an ONNX float initializer would)."""
    return np.asarray(values).astype(F32, copy=False)


def refuse_beyond_float32(label, lo, hi):
    largest = max(float(np.max(np.abs(lo))), float(np.max(np.abs(hi)))) if np.size(lo) else 0.0
    if largest > FLOAT32_MAX:
        raise QuantcalcError(f"{label} quantizes float32 tensors (at most 3.4028e+38); these "
                             f"values reach {largest:.4g}. Scale them down or use the exact "
                             f"convention", "values")


def float32_params(scale, zero_point, real_min, real_max, floored, widened=None, **extra):
    """QParams holding float32 numbers in float64 arrays (the engine's type), exactly."""
    scale = np.asarray(scale, F32).astype(np.float64).reshape(-1)
    n = scale.size
    widened = np.zeros(n, bool) if widened is None else np.asarray(widened, bool).reshape(-1)
    return QParams(scale, np.asarray(zero_point).astype(np.int64).reshape(-1),
                   np.asarray(real_min, np.float64).reshape(-1),
                   np.asarray(real_max, np.float64).reshape(-1), widened,
                   np.asarray(floored, bool).reshape(-1),
                   {k: np.asarray(v, np.float64).reshape(-1) for k, v in extra.items()})


class Convention:
    """One framework's rules. Subclasses fill in the class attributes and the methods."""

    name = ""
    label = ""
    reference = ""         # the framework and version its rules were checked against
    calibrations = ()      # range sources it offers for integers
    granularities = ()
    calibrated_per_tensor_only = ()  # calibrations it offers per tensor only
    floor_note = ""        # what it does with a range too small for a scale

    # -- what it offers ---------------------------------------------------------------
    def refusal(self, cfg):
        """(reason, field) when the framework does not offer these settings, else None."""
        if cfg.format != "int":
            return self.refuse_format(cfg)
        if cfg.rounding != HALF_EVEN:
            return (f"{self.label} rounds half to even only; choose that rounding or the exact "
                    f"convention", "rounding")
        if cfg.calibration not in self.calibrations:
            offered = ", ".join(self.calibrations)
            return (f"{self.label} has no {cfg.calibration} calibration here (it offers "
                    f"{offered}); {self.why_not_calibration(cfg.calibration)}", "calibration")
        if cfg.granularity not in self.granularities:
            return (f"{self.label} scales per {' or per '.join(self.granularities)}, not per "
                    f"{cfg.granularity}{self.why_not_granularity(cfg.granularity)}",
                    "granularity")
        if cfg.granularity != "tensor" and cfg.calibration in self.calibrated_per_tensor_only:
            return (f"{self.label}'s {cfg.calibration} calibrator works per tensor only "
                    f"({self.per_tensor_source}); choose per tensor or min-max", "calibration")
        return self.refuse_grid(cfg)

    per_tensor_source = ""

    def why_not_calibration(self, method):
        return "use the exact convention for it"

    block_quantizer = ""  # the framework's own block (group) quantizer, if it has one

    def why_not_granularity(self, granularity):
        """What follows "not per group": where the framework does have block scales, that they
        exist and are not reproduced here (so the refusal does not claim it has none)."""
        if granularity != "group" or not self.block_quantizer:
            return ""
        return (f" in these calibrators; its block scales ({self.block_quantizer}) are not "
                f"reproduced here: use the exact convention for groups")

    def refuse_format(self, cfg):
        return (f"the {self.label} convention covers the integer format here; "
                f"{cfg.format_row.label} has none", "format")

    def refuse_grid(self, cfg):
        return None

    # -- its arithmetic ----------------------------------------------------------------
    def grid(self, cfg):
        """(q_min, q_max) its codes are clamped to."""
        fmt = cfg.number_format
        return fmt.q_min, fmt.q_max

    def qparams(self, lo, hi, cfg) -> QParams:
        raise NotImplementedError

    def quantize(self, original, p, q_min, q_max):
        """(codes, dequantized, clipped) of float64 `original` (values of the input dtype)
        with per-value (or broadcast) parameters p: codes and dequantized as float64 holding
        the framework's integers and float32 results."""
        raise NotImplementedError

    def calibrate(self, segment, cfg):
        """(lo, hi) of one segment's values for a histogram calibration."""
        raise NotImplementedError

    def rule(self, cfg) -> str:
        """One line on how it scales and rounds, for the result's notes."""
        return ""


def clamp_codes(rounded, q_min, q_max):
    """Clamp float codes in place; the clipped mask (None when nothing was clipped)."""
    if rounded.size == 0 or (rounded.min() >= q_min and rounded.max() <= q_max):
        return None
    clipped = (rounded < q_min) | (rounded > q_max)
    np.clip(rounded, q_min, q_max, out=rounded)
    return clipped
