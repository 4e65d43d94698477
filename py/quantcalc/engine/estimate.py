"""Estimating a tensor's error from a sample of its rows, with a 95 % confidence interval.

The error of every format quantcalc measures is a sum over independent units once the ranges
that set a scale are known: a block's error depends only on its own values (K-quants, MX,
groups), a per-channel row's only on that row, a per-tensor scale only on the tensor's amax
(computed exactly beforehand). So a tensor's rows (or groups of rows: a 128x128 tile's 128) are
a population of units, and the total squared error is estimated from a sample of them.

The sample is stratified (Cochran, *Sampling Techniques*, 3rd ed., ch. 5 and 6): the units are cut
into `STRATA` contiguous strata spread over the tensor (early and late layers of a fused tensor,
the top and bottom of an embedding), and each batch takes the same number of new units from
every stratum, in a seeded random order, so a run repeats exactly and a larger sample contains
the smaller one. The total error is a combined ratio estimate on the units' signal sum of
squares, which is known exactly for the whole tensor (quantization noise grows with a unit's
magnitude, so the ratio removes most of the spread between units):

    N_hat = R_hat * S,   R_hat = sum_h N_h mean_h(noise) / sum_h N_h mean_h(signal)
    Var(N_hat) ~ sum_h N_h^2 (1 - n_h / N_h) var_h(noise - R_hat * signal) / n_h

and SQNR = 10 log10(S / N_hat) with the half-width of its interval by the delta method,
1.96 * 10 / ln 10 * se(N_hat) / N_hat dB. With every unit measured the estimate is the exact sum
and the half-width 0.
"""

import math

import numpy as np

STRATA = 32        # contiguous strata per tensor (fewer when it has fewer units)
FIRST_PER_STRATUM = 2   # a stratum's variance needs two units; batches then double
Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
DB_PER_LOG = 10.0 / math.log(10.0)


class StratifiedSample:
    """Which units to measure next, and the sums measured so far.

    Args:
        units: the number of units (rows, or groups of rows) in the tensor.
        seed: the sample's seed; the same seed gives the same units in the same order.
    """

    def __init__(self, units: int, seed: int = 0, strata: int = STRATA):
        self.units = int(units)
        count = max(1, min(int(strata), self.units // (2 * FIRST_PER_STRATUM)))
        self.bounds = np.linspace(0, self.units, count + 1).astype(np.int64)
        rng = np.random.default_rng(seed)
        # each stratum's units in a random order: a batch takes the next ones of each
        self.orders = [lo + rng.permutation(hi - lo)
                       for lo, hi in zip(self.bounds[:-1], self.bounds[1:])]
        self.taken = 0          # units taken from each stratum so far (the same for all)
        self.sums = {}          # name -> list of per-unit arrays, batch by batch
        self.measured = []      # unit indices, batch by batch

    @property
    def strata(self) -> int:
        return len(self.orders)

    @property
    def complete(self) -> bool:
        return all(self.taken >= len(order) for order in self.orders)

    def measured_units(self) -> int:
        return sum(min(self.taken, len(order)) for order in self.orders)

    def next_batch(self, units: int = None) -> np.ndarray:
        """The next units to measure (sorted, for reading in file order): two from each
        stratum first; then about `units` more spread evenly over the strata (as many again as
        taken so far when not given: the sample doubles), at most all."""
        if self.taken == 0:
            step = FIRST_PER_STRATUM
        elif units is None:
            step = self.taken
        else:
            step = max(1, -(-int(units) // self.strata))
        new = [order[self.taken:self.taken + step] for order in self.orders]
        self.taken += step
        return np.sort(np.concatenate(new))

    def record(self, units: np.ndarray, **sums):
        """The measured sums of `units` (each keyword one array, one value per unit, in the
        order of `units`)."""
        self.measured.append(np.asarray(units, np.int64))
        for name, values in sums.items():
            self.sums.setdefault(name, []).append(np.asarray(values, np.float64))

    def _by_stratum(self, name):
        units = np.concatenate(self.measured)
        values = np.concatenate(self.sums[name])
        stratum = np.searchsorted(self.bounds, units, side="right") - 1
        return stratum, values

    def total(self, name: str, auxiliary: str = None, auxiliary_total: float = None):
        """(estimated total of `name` over all units, its standard error).

        With `auxiliary` (a measured sum whose total over all units is known exactly,
        `auxiliary_total`), the combined ratio estimate; else the stratified expansion estimate.
        """
        stratum, y = self._by_stratum(name)
        sizes = np.diff(self.bounds).astype(np.float64)
        taken = np.bincount(stratum, minlength=self.strata).astype(np.float64)
        weights = sizes[stratum] / taken[stratum]         # N_h / n_h per measured unit
        if auxiliary is None:
            residual, estimate = y, float(np.sum(weights * y))
        else:
            _, x = self._by_stratum(auxiliary)
            x_hat = float(np.sum(weights * x))
            ratio = float(np.sum(weights * y)) / x_hat if x_hat > 0 else 0.0
            residual, estimate = y - ratio * x, ratio * auxiliary_total
            # Var(R_hat * S) = S^2 Var(R_hat), Var(R_hat) ~ Var(sum of residuals) / X_hat^2
            scale = auxiliary_total / x_hat if x_hat > 0 else 1.0
            return estimate, scale * math.sqrt(
                _stratified_variance(residual, stratum, sizes, taken))
        return estimate, math.sqrt(_stratified_variance(residual, stratum, sizes, taken))


def _stratified_variance(residual, stratum, sizes, taken):
    """sum_h N_h^2 (1 - n_h/N_h) s_h^2 / n_h, s_h^2 the sample variance of the residual in
    stratum h (a stratum measured whole, or with one unit, adds nothing)."""
    count = np.maximum(taken, 1.0)
    mean = np.bincount(stratum, residual, minlength=len(sizes)) / count
    spread = np.bincount(stratum, (residual - mean[stratum]) ** 2, minlength=len(sizes))
    variance = np.where(taken > 1, spread / np.maximum(taken - 1, 1.0), 0.0)
    finite_population = np.clip(1.0 - taken / np.maximum(sizes, 1.0), 0.0, 1.0)
    return float(np.sum(sizes ** 2 * finite_population * variance / count))


def units_needed(measured: int, units: int, half_width: float, target: float) -> int:
    """How many units a sample needs for a half-width of `target`, from the half-width a pilot
    of `measured` units gave (Stein's two-stage rule: the size is decided from the pilot's
    spread, not by testing after every batch, whose early stops would favour samples that
    happen to look tight). The interval narrows as sqrt((1 - n/N) / n):
    target^2 = a (1/n - 1/N), a = half_width^2 n0 / (1 - n0/N)."""
    if half_width <= target:
        return measured
    spread = half_width ** 2 * measured / max(1.0 - measured / units, 1e-12)
    return min(units, math.ceil(1.0 / (target ** 2 / spread + 1.0 / units)))


def sqnr_half_width_db(noise_total: float, noise_se: float) -> float:
    """Half-width in dB of the 95 % interval of 10 log10(S / N) when N is estimated with
    standard error `noise_se` (the delta method; 0 when measured exactly)."""
    if noise_se == 0.0:
        return 0.0
    if noise_total <= 0.0:
        return math.inf
    return Z95 * DB_PER_LOG * noise_se / noise_total
