"""Affine integers (TensorRT / ONNX Runtime conventions): the `int` format at 2 to 16 bits,
symmetric or asymmetric, per tensor, channel or group (the grid and its arithmetic are
formats/integer.py)."""

import math

import numpy as np

from quantcalc.formats.integer import IntegerFormat, qparams, round_and_clamp, round_in_place
from quantcalc.formats.schemes.protocol import Scheme


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
        # a value far beyond a small custom range divides to inf, and is clamped like any
        # other clipped value; a grid end a rounding beyond float64 (1.7e308 at 4 bits)
        # reconstructs to inf, and the analysis refuses the error that gives
        with np.errstate(over="ignore"):
            codes = original / p["scale"]
            clipped = round_and_clamp(codes, p["zero_point"], self.fmt.q_min, self.fmt.q_max,
                                      rounding, rng=rng, check=check)
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
