"""Range selection (calibration): which real interval each segment's integer grid covers.

  minmax      the segment's smallest and largest value.
  percentile  symmetric: the P-th percentile of |x| (both ends); asymmetric: the (100-P)-th and
              P-th percentiles of x. Values beyond are clipped.
  mse         the clipping range, out of 200 evenly spaced candidates per end up to the min-max
              range, whose round-to-nearest quantization has the smallest mean squared error
              (evaluated on the values, or on a 4096-bin histogram when a segment has more values
              than that); asymmetric ranges search each end in turn.
  entropy     TensorRT's KL-divergence calibration: a 2048-bin histogram of |x|, the threshold
              whose 2^(bits-1)-level requantized distribution diverges least from the original.
  custom      the user's [range_min, range_max] for every segment.
Each function returns (lo, hi) float64 arrays, one entry per segment; the format's scheme then
makes the range symmetric or widens it to include 0 (formats/integer.py qparams for integers).
"""

import numpy as np

from quantcalc.engine.metrics import power_of_two_unit
from quantcalc.errors import QuantcalcError
from quantcalc.formats import conventions

MSE_CANDIDATES = 200
MSE_HISTOGRAM_BINS = 4096
ENTROPY_BINS = 2048
ENTROPY_MAX_SEGMENTS = 4096


def calibrate(x, segmentation, config, scheme, *, data_min, data_max, progress=None):
    """Per-segment (lo, hi) for `config.calibration`; see the module docstring.

    Args:
        data_min, data_max: each segment's data minimum and maximum (already computed by the
            caller), as float64 arrays.
        progress: called as progress(fraction) while a per-segment search runs (they can take
            minutes for a large tensor per channel).
    """
    method = config.calibration
    if config.convention != "exact" and method not in ("minmax", "custom"):
        # the framework's own calibrator (formats/conventions/), per segment
        convention = conventions.get(config.convention)
        return _unzip([convention.calibrate(seg, config)
                       for seg in _reporting(segmentation, x, progress)])
    if method == "custom":
        n = segmentation.count
        return np.full(n, config.range_min, np.float64), np.full(n, config.range_max, np.float64)
    if method == "minmax":
        return data_min, data_max
    if method == "percentile":
        return _percentile(x, segmentation, config)
    if method == "mse":
        pairs = [_mse_search(seg, scheme, config.mode)
                 for seg in _reporting(segmentation, x, progress)]
        return _unzip(pairs)
    if method == "entropy":
        if segmentation.count > ENTROPY_MAX_SEGMENTS:
            raise QuantcalcError(
                f"entropy calibration builds a 2048-bin histogram per segment and suits per "
                f"tensor or per channel; this setting has {segmentation.count} segments. Use "
                f"min-max, percentile or MSE for small groups.", "calibration")
        pairs = [_entropy_range(seg, config.bits)
                 for seg in _reporting(segmentation, x, progress)]
        return _unzip(pairs)
    raise QuantcalcError(f"unknown calibration {method!r}", "calibration")


def _reporting(segmentation, x, progress):
    """segmentation.each(x), calling progress(fraction done) about a hundred times."""
    every = max(1, segmentation.count // 100)
    for i, segment in enumerate(segmentation.each(x)):
        if progress is not None and i % every == 0:
            progress(i / segmentation.count)
        yield segment


def _unzip(pairs):
    lo, hi = zip(*pairs)
    return np.array(lo, np.float64), np.array(hi, np.float64)


def _percentile(x, segmentation, config):
    p = config.percentile
    rows = segmentation.equal_rows(x)
    groups = [rows] if rows is not None else [seg.reshape(1, -1) for seg in segmentation.each(x)]
    lo, hi = [], []
    for block in groups:
        if config.mode == "symmetric":
            # |x| in float64 (numpy interpolates in the input's precision: float32 data gave
            # 1.59033 for 1.5905), a copy that is ours to reorder inside percentile
            t = np.percentile(np.abs(block, dtype=np.float64), p, axis=1, overwrite_input=True)
            lo.append(-t)
            hi.append(t)
        else:
            ends = np.percentile(block.astype(np.float64), [100.0 - p, p], axis=1,
                                 overwrite_input=True)
            lo.append(ends[0])
            hi.append(ends[1])
    return np.concatenate(lo), np.concatenate(hi)


def _weighted_values(seg):
    """The segment itself, or a histogram (bin centres, counts) when it is large."""
    seg = np.asarray(seg).reshape(-1)
    if seg.size <= MSE_HISTOGRAM_BINS:
        return seg.astype(np.float64), None
    counts, edges = np.histogram(seg, bins=MSE_HISTOGRAM_BINS)
    keep = counts > 0
    centres = (edges[:-1] + edges[1:]) / 2
    return centres[keep], counts[keep].astype(np.float64)


def _candidate_mse(values, weights, los, his, scheme, unit=1.0):
    """Mean squared round-to-nearest error of `values` for each candidate range (los[i], his[i]),
    in units of `unit` (a power of two near the values' magnitude, where their squares would
    underflow or overflow float64: dividing by it is exact, and keeps every candidate's error
    comparable)."""
    error = values[None, :] - scheme.fake_quantize(values, los, his)
    if unit != 1.0:
        error /= unit
    squared = np.square(error, out=error)
    if weights is not None:
        squared *= weights
    return squared.sum(axis=1)  # pairwise sums: the same last digit with or without BLAS


def _best(mse):
    # On a tie keep the widest range (candidates ascend): it clips less for the same error.
    return len(mse) - 1 - int(np.argmin(mse[::-1]))


def _mse_search(seg, scheme, mode):
    """Symmetric: the best of 200 thresholds t = amax * k/200. Asymmetric: the ends are searched
    in turn (max with min fixed, then min with max fixed, twice), 200 candidates each. Min-max is
    always a candidate, so the result is never worse than min-max on the searched values."""
    values, weights = _weighted_values(seg)
    lo, hi = float(values.min()), float(values.max())
    if mode == "symmetric":
        amax = max(abs(lo), abs(hi))
        lo, hi = -amax, amax
    if hi - lo == 0:
        return lo, hi
    fractions = np.arange(1, MSE_CANDIDATES + 1) / MSE_CANDIDATES
    unit = power_of_two_unit(max(abs(lo), abs(hi)))  # 1.0 for all but extreme magnitudes
    if mode == "symmetric":
        best = fractions[_best(_candidate_mse(values, weights, lo * fractions, hi * fractions,
                                              scheme, unit))]
        return lo * best, hi * best
    full_lo, full_hi = lo, hi
    for _ in range(2):
        his = full_hi * fractions
        hi = his[_best(_candidate_mse(values, weights, np.full_like(his, lo), his, scheme,
                                      unit))]
        los = full_lo * fractions
        lo = los[_best(_candidate_mse(values, weights, los, np.full_like(los, hi), scheme,
                                      unit))]
    return lo, hi


def kl_divergence(p, q):
    """sum p log(p / q) over p > 0, both normalised first (scipy.stats.entropy's definition)."""
    p = p / p.sum()
    q = q / q.sum()
    mask = p > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def entropy_threshold(hist, edges, bits):
    """TensorRT's entropy calibration on a histogram of |x|; returns the clipping threshold.

    For each candidate i (number of leading bins kept, from 2^(bits-1) to all), the kept bins plus
    the clipped mass folded into the last one form the reference P; Q spreads each of 2^(bits-1)
    merged bins' counts evenly over its non-empty source bins. The threshold is the upper edge of
    the last i with the smallest KL(P || Q), as in NVIDIA's pytorch-quantization.
    """
    bins = hist.astype(np.float64).copy()
    # The zero bin is often huge (ReLU outputs, padding); TensorRT replaces it by its neighbour
    # so it doesn't dominate the divergence.
    if len(bins) > 1:
        bins[0] = bins[1]
    levels = 1 << (bits - 1)
    if levels >= len(bins):
        return float(edges[-1])
    best_i, best_kl = len(bins), np.inf
    for i in range(levels, len(bins) + 1):
        kept = bins[:i]
        # source bin k goes to merged bin floor(k * levels / i), i.e. np.digitize on linspace(0, i)
        merged = (np.arange(i) * levels) // i
        nonzero = kept > 0
        mass = np.bincount(merged, weights=kept, minlength=levels)
        support = np.bincount(merged, weights=nonzero, minlength=levels)
        q = np.where(nonzero, mass[merged] / np.maximum(support[merged], 1), 0.0)
        p = kept.copy()
        p[-1] += bins[i:].sum()
        if p.sum() == 0 or q.sum() == 0:
            continue
        kl = kl_divergence(p, q)
        if kl <= best_kl:  # "<=": the last minimum, like pytorch-quantization's reversed argmin
            best_i, best_kl = i, kl
    return float(edges[best_i])


def _entropy_range(seg, bits):
    seg = np.asarray(seg).reshape(-1)
    lo, hi = float(seg.min()), float(seg.max())
    amax = max(abs(lo), abs(hi))
    if amax == 0:
        return lo, hi
    hist, edges = np.histogram(np.abs(seg), bins=ENTROPY_BINS, range=(0.0, amax))
    t = entropy_threshold(hist, edges, bits)
    return max(lo, -t), min(hi, t)
