"""Error metrics, accumulated chunk by chunk in float64.

  mse = mean(e^2), rmse = sqrt(mse), mae = mean(|e|), max_abs_error = max |e|,
  sqnr_db = 10 log10(sum x^2 / sum e^2)  (inf when the error is zero),
  rel_rmse = rmse / rms(x) = sqrt(sum e^2 / sum x^2),
  clip_count / clip_rate: values whose code had to be clamped into [q_min, q_max].
"""

import math

import numpy as np


class ErrorAccumulator:
    """Running sums over chunks of (original, error) pairs."""

    def __init__(self):
        self.count = 0
        self.sum_sq_error = 0.0
        self.sum_abs_error = 0.0
        self.max_abs_error = 0.0
        self.sum_sq_signal = 0.0
        self.clip_count = 0

    def add(self, original: np.ndarray, error: np.ndarray, clipped=None):
        """Add one chunk; `original` and `error` are float64, `clipped` a bool mask or None."""
        self.count += error.size
        self.sum_sq_error += float(np.dot(error, error))
        self.sum_sq_signal += float(np.dot(original, original))
        magnitude = np.abs(error, out=error)  # the caller is done with `error` except as |e|
        self.sum_abs_error += float(magnitude.sum())
        self.max_abs_error = max(self.max_abs_error, float(magnitude.max()))
        if clipped is not None:
            self.clip_count += int(np.count_nonzero(clipped))

    def finish(self) -> dict:
        n = self.count
        mse = self.sum_sq_error / n
        return {
            "count": n,
            "mse": mse,
            "rmse": math.sqrt(mse),
            "mae": self.sum_abs_error / n,
            "max_abs_error": self.max_abs_error,
            "sqnr_db": sqnr_db(self.sum_sq_signal, self.sum_sq_error),
            "rel_rmse": relative_rmse(self.sum_sq_signal, self.sum_sq_error),
            "clip_count": self.clip_count,
            "clip_rate": self.clip_count / n,
        }


def sqnr_db(sum_sq_signal: float, sum_sq_error: float) -> float:
    if sum_sq_error == 0:
        return math.inf
    if sum_sq_signal == 0:
        return -math.inf
    return 10.0 * math.log10(sum_sq_signal / sum_sq_error)


def relative_rmse(sum_sq_signal: float, sum_sq_error: float) -> float:
    if sum_sq_error == 0:
        return 0.0
    if sum_sq_signal == 0:
        return math.inf
    return math.sqrt(sum_sq_error / sum_sq_signal)
