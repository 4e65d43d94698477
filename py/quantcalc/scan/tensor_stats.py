"""The statistics that explain why a format hurts a tensor, gathered slab by slab.

  amax_over_std      largest magnitude over the standard deviation: how far the range a
                     per-tensor scale must cover reaches beyond the bulk of the values
  kurtosis           excess kurtosis (0 for a normal distribution): heavy tails
  beyond_6_sigma     share of values more than 6 standard deviations from the mean
  worst_channel      the row (output channel) or column (input channel) whose largest magnitude
                     is furthest above the median channel's, and that ratio

Moments are merged across slabs with Pébay's pairwise formulas (numerically stable for any
number of slabs, the same idea as Welford's running variance), each slab's own central moments
computed in float64 in pieces of CHUNK values.
"""

import math

import numpy as np

from quantcalc.engine.metrics import power_of_two_unit
from quantcalc.formats.elementwise import magnitude

CHUNK = 1 << 16  # 512 KiB of float64: the six passes per piece stay in cache
SIGMAS = 6.0


class Moments:
    """Count, mean and the 2nd to 4th central moment sums of everything added so far.

    Summed in units of a power of two (`unit`, 1.0 for all but extreme magnitudes, see
    engine/metrics.py power_of_two_unit): the squares and fourth powers of values near 1e-300
    or 1e200 neither underflow nor overflow, and dividing by a power of two is exact. `mean`
    and m2 to m4 are in the values' own units."""

    def __init__(self):
        self.n, self.unit = 0, 1.0
        self._sums = (0.0, 0.0, 0.0, 0.0)  # mean, m2, m3, m4 in units of `unit`

    mean = property(lambda self: self._sums[0] * self.unit)
    m2 = property(lambda self: self._sums[1] * self.unit ** 2)
    m3 = property(lambda self: self._sums[2] * self.unit ** 3)
    m4 = property(lambda self: self._sums[3] * self.unit ** 4)

    def add(self, values, bound=None):
        """Add `values`; `bound`: their largest magnitude, if known (a pass saved)."""
        if bound is None:
            bound = float(magnitude(values).max()) if values.size else 0.0
        unit = power_of_two_unit(bound)
        square = np.empty(min(CHUNK, values.size))
        power = np.empty_like(square)
        for start in range(0, values.size, CHUNK):
            d = values[start:start + CHUNK].astype(np.float64)
            if unit != 1.0:
                d /= unit
            n = d.size
            mean = float(d.mean())
            d -= mean
            d2 = np.square(d, out=square[:n])
            d3 = np.multiply(d2, d, out=power[:n])
            m3 = float(d3.sum())
            d4 = np.square(d2, out=power[:n])
            self.merge(n, (mean, float(d2.sum()), m3, float(d4.sum())), unit)

    def merge(self, nb, sums, unit=1.0):
        """Merge the (mean, m2, m3, m4) of nb more values, taken in units of `unit`."""
        na = self.n
        if na == 0:
            self.n, self._sums, self.unit = nb, sums, unit
            return
        if unit > self.unit:  # the sums so far in the larger unit (their tiniest parts may
            self._sums, self.unit = _in_unit(self._sums, self.unit / unit), unit  # underflow)
        elif unit < self.unit:
            sums = _in_unit(sums, unit / self.unit)
        mean_a, m2a, m3a, m4a = self._sums
        mean_b, m2b, m3b, m4b = sums
        n = na + nb
        delta = mean_b - mean_a
        self.n = n
        self._sums = (
            mean_a + delta * nb / n,
            m2a + m2b + delta * delta * na * nb / n,
            (m3a + m3b + delta ** 3 * na * nb * (na - nb) / n ** 2
             + 3 * delta * (na * m2b - nb * m2a) / n),
            (m4a + m4b + delta ** 4 * na * nb * (na * na - na * nb + nb * nb) / n ** 3
             + 6 * delta * delta * (na * na * m2b + nb * nb * m2a) / n ** 2
             + 4 * delta * (na * m3b - nb * m3a) / n))

    @property
    def std(self) -> float:
        return math.sqrt(self._sums[1] / self.n) * self.unit if self.n else 0.0

    @property
    def kurtosis(self):
        _, m2, _, m4 = self._sums
        if not self.n or m2 * m2 == 0 or not math.isfinite(m4 / (m2 * m2)):
            return None
        return self.n * m4 / (m2 * m2) - 3.0


def _in_unit(sums, r):
    """(mean, m2, m3, m4) rescaled by r = old unit / new unit (a power of two)."""
    mean, m2, m3, m4 = sums
    return mean * r, m2 * r * r, m3 * r * r * r, m4 * (r * r) ** 2


class TensorStats:
    """Statistics of a tensor fed as slabs of whole rows (axis 0), in order."""

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.moments = Moments()
        self.minimum, self.maximum = math.inf, -math.inf
        self.row_low, self.row_high = [], []  # per slab: each row's min and max
        self._rows = None                       # both joined, once all slabs are in
        self.column_low = self.column_high = None  # running min / max of each column
        self.beyond = 0

    def add(self, slab):
        if len(self.shape) < 2:
            low, high = float(slab.min()), float(slab.max())
            self.minimum, self.maximum = min(self.minimum, low), max(self.maximum, high)
            self._add_moments(slab, low, high)
            return
        # each row's and each column's min and max give their largest magnitude and the
        # tensor's range, without a copy of |x|
        rows = slab.reshape(slab.shape[0], -1)
        low, high = rows.min(axis=1), rows.max(axis=1)
        lowest, highest = float(low.min()), float(high.max())
        self.minimum = min(self.minimum, lowest)
        self.maximum = max(self.maximum, highest)
        self._add_moments(slab, lowest, highest)
        self.row_low.append(low)
        self.row_high.append(high)
        self._rows = None
        columns = slab.reshape(-1, self.shape[-1])
        low, high = columns.min(axis=0), columns.max(axis=0)
        if self.column_low is None:
            self.column_low, self.column_high = low, high
        else:
            np.minimum(self.column_low, low, out=self.column_low)
            np.maximum(self.column_high, high, out=self.column_high)

    def _add_moments(self, slab, low, high):
        """The slab's moments, in units fit for its magnitude; a slab with NaN or infinities
        is left out (the tensor is refused: refuse_non_finite)."""
        if math.isfinite(low) and math.isfinite(high):  # NaN reaches both
            self.moments.add(slab.reshape(-1), max(-low, high))

    def add_beyond(self, slab, first_row=0):
        """Count the slab's values beyond 6 sigma (needs the mean and std of the whole tensor:
        a second look at each slab, made while the formats read it). `first_row`: the slab's
        first row; only rows whose min or max reach beyond are looked at."""
        std = self.moments.std
        if std == 0:
            return
        below, above = self.moments.mean - SIGMAS * std, self.moments.mean + SIGMAS * std
        if self.row_low:
            # only rows and columns whose min or max reach beyond can hold such values; the
            # scarcer of the two is picked out first, so the copy is small (a model's outliers
            # sit in a few columns that reach into every row)
            rows = slab.reshape(slab.shape[0], -1)
            low, high = (every[first_row:first_row + rows.shape[0]]
                         for every in self.row_range())
            row_mask = (low < below) | (high > above)
            column_mask = (self.column_low < below) | (self.column_high > above)
            matrix = rows.reshape(-1, self.shape[-1])
            per_row = matrix.shape[0] // rows.shape[0]  # rows of the last axis in one row
            picked_rows = int(np.count_nonzero(row_mask)) * rows.shape[1]
            picked_columns = int(np.count_nonzero(column_mask)) * matrix.shape[0]
            if picked_columns < picked_rows:
                narrow = matrix[:, column_mask].reshape(rows.shape[0], per_row, -1)
                slab = narrow[row_mask]
            else:
                slab = rows[row_mask].reshape(-1, self.shape[-1])[:, column_mask]
        self.beyond += int(np.count_nonzero(slab > above)) + \
            int(np.count_nonzero(slab < below))

    @property
    def finite(self) -> bool:
        """No NaN or infinity so far (both reach the minimum or maximum)."""
        return math.isfinite(self.minimum) and math.isfinite(self.maximum)

    def segment_range(self, segmentation):
        """Each segment's (min, max) as float64 when the statistics already hold them (the
        whole tensor, or channels along the first axis), else None."""
        if segmentation.granularity == "tensor":
            return np.array([self.minimum]), np.array([self.maximum])
        if segmentation.granularity == "channel" and segmentation.axis == 0 and self.row_low:
            low, high = self.row_range()
            return low.astype(np.float64), high.astype(np.float64)
        return None

    def row_range(self):
        """Every row's (min, max) so far, joined once (each slab of the second pass asks)."""
        if self._rows is None:
            self._rows = (np.concatenate(self.row_low), np.concatenate(self.row_high))
        return self._rows

    @property
    def amax(self) -> float:
        return max(abs(self.minimum), abs(self.maximum))

    def finish(self) -> dict:
        m = self.moments
        std = m.std
        out = {"data_min": self.minimum, "data_max": self.maximum, "mean": m.mean, "std": std,
               "amax_over_std": self.amax / std if std > 0 else None,
               "kurtosis": m.kurtosis, "beyond_6_sigma": self.beyond / m.n if m.n else None,
               "worst_channel": None, "worst_channel_ratio": None}
        if self.row_low:
            low, high = self.row_range()
            rows = np.maximum(high, -low)
            columns = np.maximum(self.column_high, -self.column_low)
            for axis, amax in (("row", rows), ("column", columns)):
                median = _median(amax)
                if amax.size < 2 or median <= 0:
                    continue
                index = int(np.argmax(amax))
                ratio = float(amax[index]) / median
                if out["worst_channel_ratio"] is None or ratio > out["worst_channel_ratio"]:
                    out["worst_channel"], out["worst_channel_ratio"] = f"{axis} {index}", ratio
        return out


def _median(values) -> float:
    """np.median, which averages the two middle values of an even count: halved first where
    their sum would overflow (exact: halving a float64 beyond 1e300 loses nothing)."""
    if float(values.max()) < 8.9e307:
        return float(np.median(values))
    return 2.0 * float(np.median(values / 2))
