"""A tensor's error under one format estimated from a sample of its rows (`scan --estimate DB`).

An exact scan of a 7B model takes about an hour here: a llama.cpp type searches each block 120 to
650 times, and ggml's own C costs as much. The error of every format is a sum over independent
rows once the ranges that set a scale are known, so a sample of rows estimates it without bias
(engine/estimate.py: stratified rows, a ratio estimate on the rows' signal, a 95 % interval).

What stays exact: the tensor's statistics and every range that spans rows (a per-tensor scale's
range, a column's min and max, NVFP4's tensor amax) come from the whole tensor, read once by
scan_tensor before any format runs. What is sampled: the quantizing, in units of one row (128
rows for a 128x128 tile format), growing the sample until the interval is within ±target dB.

A format is measured exactly instead (`measure` returns None) where a sample cannot stand for
the tensor or saves little: small tensors, 1-D ones, stochastic rounding (its random stream
follows the values' order), a calibration that needs all of a tensor-wide segment's values
(percentile, MSE, entropy), magnitudes whose squares need rescaling, and any sample that would
reach half the rows (so a tight target gives the exact digits, not an estimate of them).
"""

import math

import numpy as np

from quantcalc.engine import analysis
from quantcalc.engine.estimate import StratifiedSample, sqnr_half_width_db, units_needed
from quantcalc.engine.metrics import sqnr_db
from quantcalc.formats.elementwise import magnitude
from quantcalc.formats.schemes import scheme_for
from quantcalc.formats.schemes.protocol import FLOAT32_MAX
from quantcalc.records import record

@record(frozen=True)
class Target:
    """What an estimated scan asks of each tensor x format: the 95 % interval of its SQNR
    within ±db, from a sample drawn with `seed` (plain data: it crosses to worker processes)."""

    db: float = 0.1
    seed: int = 0


MIN_VALUES = 1 << 18     # a tensor of fewer values is measured exactly: a sample saves little
# nor one of fewer units: with a few hundred rows a sample must be a large share of them, and
# on real weights (MiniLM's 384- and 1536-row matrices) a row or two can carry much of the
# error, so the samples that miss them look tight and are biased (coverage fell to 70 %)
MIN_UNITS = 2048
LARGEST_SHARE = 0.5      # a sample reaching this share of the rows measures them all instead
STEPS = 2                # sample sizes worked out from the spread measured so far, at most
PIECE_VALUES = 1 << 22   # sampled rows are quantized in pieces of about this many values
TILE_ROWS = 128
SAFE_MAGNITUDES = (1e-100, 1e100)  # beyond, squares are summed in scaled units: measure exactly


def exact_reason(fmt, values, stats):
    """Why this format is measured exactly on these values (a sentence), or None to sample."""
    config = fmt.config
    if values.ndim < 2 or values.size < MIN_VALUES:
        return "small or 1-D"
    if config.rounding == "stochastic":
        return "stochastic rounding"
    amax = stats.amax
    if not SAFE_MAGNITUDES[0] < amax < SAFE_MAGNITUDES[1]:
        return "extreme magnitudes"
    if shared_scale(config, values.ndim) and config.calibration not in ("minmax", "custom"):
        return f"{config.calibration} calibration of a tensor-wide segment"
    return None


def shared_scale(config, ndim) -> bool:
    """Whether a scale segment spans rows (one per tensor, or per channel along a later axis):
    its range must then come from the whole tensor, not from the rows at hand."""
    kind = scheme_for(config).segment_kind
    return kind == "tensor" or (kind == "channel" and config.axis % ndim != 0)


def measure(fmt, values, stats, weights, *, target_db, seed):
    """(metrics, notes) of `fmt` on `values` (a whole tensor, rows first) estimated from a sample
    of its rows, or None where it is measured exactly instead (see exact_reason).

    Args:
        stats: the tensor's TensorStats, complete (ranges, amax, moments).
        weights: the importance matrix's weights for the tensor's columns, or None.
        target_db: stop when the 95 % interval of the SQNR is within ±target_db.
        seed: the sample's seed (the same seed, the same rows).
    """
    if exact_reason(fmt, values, stats) is not None:
        return None
    unit_rows = TILE_ROWS if fmt.config.format_row.tile else 1
    rows = values.shape[0]
    units = -(-rows // unit_rows)
    if units < MIN_UNITS:
        return None
    sample = StratifiedSample(units, seed)
    signal_total = _signal_total(stats)
    sampler = _Sampler(fmt, values, stats, weights, unit_rows)
    # a pilot of two rows per stratum, then the size its spread calls for (at most two more
    # steps, each sized from everything measured so far); most of the tensor: measure exactly
    wanted = 0
    for _ in range(1 + STEPS):
        batch = sample.next_batch(wanted - sample.measured_units())
        if sample.measured_units() > LARGEST_SHARE * units or batch.size == 0:
            return None
        sample.record(batch, **sampler.unit_sums_in_pieces(batch))
        noise, noise_se = sampler.noise_total(sample, signal_total)
        half_width = sqnr_half_width_db(noise, noise_se)
        if half_width <= target_db:
            return _metrics(fmt, sample, sampler, signal_total, values, half_width)
        wanted = units_needed(sample.measured_units(), units, half_width, target_db)
    return None


class RowsInFile:
    """A tensor too large to read whole, as `measure` sees values: its shape, and its rows read
    from the file on demand (SlabReader.rows), a sample's rows only."""

    def __init__(self, reader, shape):
        self.reader, self.shape = reader, tuple(shape)
        self.ndim = len(self.shape)
        self.size = int(np.prod(self.shape))

    def __getitem__(self, rows):
        return self.reader.rows(rows)


def _signal_total(stats) -> float:
    """sum x^2 over the whole tensor, from the statistics' moments (n mean^2 + m2)."""
    moments = stats.moments
    return moments.n * moments.mean ** 2 + moments.m2


class _Sampler:
    """Quantizes sampled units of rows with the tensor's own ranges and sums each unit's
    errors (what engine/estimate.StratifiedSample records)."""

    def __init__(self, fmt, values, stats, weights, unit_rows):
        self.format, self.config = fmt, fmt.config
        self.values, self.stats, self.unit_rows = values, stats, unit_rows
        self.weights = None if weights is None else np.asarray(weights, np.float64)
        self.max_error, self.measured_values = 0.0, 0
        self.scheme = None
        self.shared_scale = shared_scale(self.config, values.ndim)

    def noise_total(self, sample, signal_total):
        """(total squared error, its standard error). Where each row or block has its own scale
        the noise grows with the row's magnitude: a ratio estimate on the rows' signal, whose
        total is known, removes that spread. Where one scale serves many rows (per tensor, per
        column) every row gets about the same noise whatever its magnitude, and the ratio
        would add the signal's spread: the plain stratified estimate then."""
        if self.shared_scale:
            return sample.total("noise")
        return sample.total("noise", "signal", signal_total)

    def unit_sums_in_pieces(self, units) -> dict:
        """unit_sums of `units`, a piece of about PIECE_VALUES values at a time (a large
        sample of a large tensor would otherwise hold its per-value results all at once)."""
        per_unit = self.unit_rows * int(np.prod(self.values.shape[1:]))
        step = max(1, PIECE_VALUES // max(per_unit, 1))
        parts = [self.unit_sums(units[i:i + step]) for i in range(0, units.size, step)]
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}

    def _rows_of(self, units):
        first = units[:, None] * self.unit_rows + np.arange(self.unit_rows)
        return first[first < self.values.shape[0]]

    def _ranges(self, scheme, segmentation, slab):
        """Each segment's (min, max): the whole tensor's where a segment spans rows beyond the
        slab (per tensor, per column), the slab's own where its rows are the segments."""
        if segmentation.granularity == "tensor":
            return np.array([self.stats.minimum]), np.array([self.stats.maximum])
        if segmentation.granularity == "channel" and segmentation.axis % slab.ndim != 0:
            return (self.stats.column_low.astype(np.float64).reshape(-1),
                    self.stats.column_high.astype(np.float64).reshape(-1))
        return analysis.segment_ranges(scheme, segmentation, slab)

    def unit_sums(self, units) -> dict:
        rows = self._rows_of(units)
        slab = self.values[rows]
        scheme = scheme_for(self.config)
        if self.weights is not None:
            scheme.importance = analysis.checked_importance(self.weights, slab.shape, scheme)
        if scheme.format.family == "nvfp4":
            scheme.tensor_amax = np.float32(min(self.stats.amax, FLOAT32_MAX))
        segmentation = scheme.segmentation(slab.shape, self.config)
        done = analysis.quantize_every_value(slab, scheme, segmentation, self.config,
                                             self._ranges(scheme, segmentation, slab))
        self.scheme = scheme
        # per unit: rows of `unit_rows` (the last unit may be shorter: split at row counts)
        bounds = np.cumsum([0] + [min(self.unit_rows, self.values.shape[0] - u * self.unit_rows)
                                  for u in units]) * int(np.prod(slab.shape[1:]))
        starts = bounds[:-1]
        original = done.original.astype(np.float64)
        error = done.error
        sums = {"signal": np.add.reduceat(original * original, starts),
                "noise": np.add.reduceat(error * error, starts),
                "clipped": np.add.reduceat(done.clipped.astype(np.float64), starts)}
        if self.weights is not None:
            column = np.resize(self.weights, original.size)  # weights repeat along each row
            sums["weighted_noise"] = np.add.reduceat(column * error * error, starts)
            sums["weighted_signal"] = np.add.reduceat(column * original * original, starts)
        self.max_error = max(self.max_error, float(np.max(magnitude(error))))
        self.measured_values += original.size
        return sums


def _metrics(fmt, sample, sampler, signal_total, values, half_width):
    count = values.size
    noise, _ = sampler.noise_total(sample, signal_total)
    clipped, _ = sample.total("clipped")
    full = sampler.scheme.segmentation(values.shape, fmt.config)
    metrics = {
        "count": count, "mse": noise / count, "rmse": math.sqrt(noise / count),
        "sqnr_db": sqnr_db(signal_total, noise),  # portable: the page prints the CLI's digits
        "rel_rmse": math.sqrt(noise / signal_total) if signal_total > 0 else math.inf,
        "max_abs_error": sampler.max_error, "clip_count": round(clipped),
        "clip_rate": clipped / count,
        "bits_per_value": sampler.scheme.bits_per_value(count, full.count),
        "sqnr_ci_db": half_width, "sampled_fraction": sampler.measured_values / count}
    if sampler.weights is not None:
        weighted_noise, _ = sample.total("weighted_noise") if sampler.shared_scale else \
            sample.total("weighted_noise", "signal", signal_total)
        weighted_signal, _ = sample.total("weighted_signal", "signal", signal_total)
        weight = float(np.sum(sampler.weights)) * (count // sampler.weights.size)
        metrics.update({"weighted_mse": weighted_noise / weight,
                        "weighted_sqnr_db": sqnr_db(weighted_signal, weighted_noise)})
    rows = sample.measured_units() * sampler.unit_rows
    notes = [f"estimated from {min(rows, values.shape[0]):,} of {values.shape[0]:,} rows "
             f"({metrics['sampled_fraction']:.1%} of the values): SQNR ±{half_width:.2f} dB at "
             f"95 %; the max error is the largest in the sample"]
    return metrics, notes
