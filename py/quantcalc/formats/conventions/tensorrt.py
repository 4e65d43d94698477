"""TensorRT through NVIDIA ModelOpt (modelopt.torch.quantization, formerly pytorch-quantization):
symmetric integers, amax from its calibrators, codes round(x · (max_bound / amax)) in float32.

  tensor_quant.py _tensor_quant (the fake quantizer on CPU):
    max_bound = 2^(bits-1) - 1;  min_bound = -max_bound (narrow) or -max_bound - 1
    scale = max_bound / amax  (float32; an amax <= 2^-24 quantizes everything to 0)
    q = clamp(round(x * scale), min_bound, max_bound);  x_hat = q / scale      (float32)
  export_onnx.py export_int8: the QuantizeLinear scale TensorRT runs is amax / max_bound
    (float32, 1 where it is 0): the scale reported here.
  calib/max.py MaxCalibrator: amax = max |x| (per tensor or per channel).
  calib/histogram.py HistogramCalibrator (per tensor): torch.histc of |x| in 2048 bins on
    [0, max |x|]; percentile = the edge where the cumulative share reaches p; entropy =
    KL divergence of 2^(bits-1) merged bins for every candidate from bin 128 to 2048 (the last
    minimum); mse = the bin centre from bin 128 to 2047 whose fake-quantized centres, weighted by
    the counts, have the smallest mean squared error.
TensorRT's integers are symmetric (zero point 0), so asymmetric mode is refused.
"""

import numpy as np

from quantcalc.formats.conventions import histc
from quantcalc.formats.conventions.base import F32, Convention, clamp_codes, float32_params

BINS = 2048
START_BIN = 128
ZERO_AMAX = 1.0 / (1 << 24)


class TensorRT(Convention):
    name = "tensorrt"
    label = "TensorRT (ModelOpt)"
    reference = "nvidia-modelopt 0.47.0 (modelopt.torch.quantization tensor_quant, calib)"
    calibrations = ("minmax", "percentile", "entropy", "mse", "custom")
    granularities = ("tensor", "channel")
    block_quantizer = "ModelOpt's block_sizes quantizers, as in INT4 AWQ"
    floor_note = "amax at most 2^-24: ModelOpt quantizes every value to 0 (scale reported as 1)"
    calibrated_per_tensor_only = ("percentile", "entropy", "mse")
    per_tensor_source = ("HistogramCalibrator: \"Calibrator histogram collection only supports "
                         "per tensor scaling\"")

    def refuse_grid(self, cfg):
        if cfg.mode != "symmetric":
            return ("TensorRT quantizes integers symmetrically (zero point 0; ModelOpt's "
                    "unsigned option only suits non-negative values); choose symmetric mode",
                    "mode")
        return None

    def qparams(self, lo, hi, cfg):
        bound = F32((1 << cfg.bits - 1) - 1)
        amax = np.maximum(np.abs(np.asarray(lo).astype(F32)), np.abs(np.asarray(hi).astype(F32)))
        zero = amax <= ZERO_AMAX
        with np.errstate(divide="ignore", over="ignore"):
            inverse = np.where(zero, F32(1), bound / amax).astype(F32)
            scale = amax / bound
        scale = np.where(scale == 0, F32(1), scale).astype(F32)
        return float32_params(scale, np.zeros(amax.shape, np.int64), -amax, amax, floored=zero,
                              inverse=inverse, silent=zero)

    def quantize(self, original, p, q_min, q_max):
        x = original.astype(F32)
        inverse = p["inverse"].astype(F32)
        with np.errstate(over="ignore", invalid="ignore"):
            codes = np.rint(x * inverse).astype(np.float64)
        silent = p["silent"]
        if np.any(silent):  # amax <= 2^-24: scale 0, every value to 0
            codes = np.where(silent != 0, 0.0, codes)
        clipped = clamp_codes(codes, q_min, q_max)
        dequantized = (codes.astype(F32) / inverse).astype(np.float64)
        return codes, dequantized, clipped

    def calibrate(self, segment, cfg):
        magnitudes = np.abs(np.asarray(segment).astype(F32).reshape(-1))
        hist, edges = histc.histogram(magnitudes, BINS)
        if cfg.calibration == "percentile":
            amax = percentile_amax(hist, edges, cfg.percentile)
        elif cfg.calibration == "entropy":
            amax = entropy_amax(hist, edges, cfg.bits)
        else:
            amax = mse_amax(hist, edges, cfg.bits)
        return -float(amax), float(amax)

    def rule(self, cfg):
        bound = (1 << cfg.bits - 1) - 1
        return (f"TensorRT (ModelOpt) convention: codes = round(x · ({bound} / amax)) in float32 "
                f"as ModelOpt's fake quantizer does; the scale TensorRT runs is amax / {bound}")


def percentile_amax(hist, edges, percentile):
    """_compute_amax_percentile."""
    total = hist.sum()
    cdf = np.cumsum(hist / total)
    return edges[np.searchsorted(cdf, percentile / 100)]


def kl_divergence(p, q):
    """scipy.stats.entropy(p, q): both normalised, sum of rel_entr (NaN where a sum is 0, which
    the search's argmin then picks, as numpy's argmin does)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 1.0 * p / np.sum(p, axis=0, keepdims=True)
        q = 1.0 * q / np.sum(q, axis=0, keepdims=True)
        vec = np.where((p > 0) & (q > 0), p * np.log(p / q), np.where(p == 0, 0.0, np.inf))
        vec[np.isnan(p) | np.isnan(q)] = np.nan
    return np.sum(vec, axis=0)


def entropy_amax(hist, edges, bits, start_bin=START_BIN):
    """_compute_amax_entropy (stride 1): the last candidate with the least divergence."""
    bins = hist.astype(np.int64).copy()
    bins[0] = bins[1]
    levels = 1 << (bits - 1)
    divergences = []
    tail = np.concatenate([np.cumsum(bins[::-1])[::-1], [0]])  # tail[i] = sum(bins[i:])
    for i in range(start_bin, len(bins) + 1):
        kept = bins[:i]
        merged = (np.arange(i) * levels) // i  # digitize on linspace(0, i, levels + 1): exact
        nonzero = kept != 0
        mass = np.bincount(merged[nonzero], weights=kept[nonzero].astype(np.float64),
                           minlength=levels)
        support = np.bincount(merged[nonzero], minlength=levels)
        new_density = np.where(nonzero, mass[merged] / np.maximum(support[merged], 1), 0.0)
        reference = kept.copy()
        reference[-1] += tail[i]
        divergences.append(kl_divergence(reference.astype(np.float64), new_density))
    divergences = np.array(divergences)
    last = len(divergences) - 1 - int(np.argmin(divergences[::-1]))
    return edges[last + start_bin]


def mse_amax(hist, edges, bits, start_bin=START_BIN):
    """_compute_amax_mse as pytorch-quantization wrote it: candidates are bin centres, each
    scored by fake_tensor_quant(centers, amax, bits) (narrow range, its default); the first
    least mean squared error. ModelOpt 0.47 passes the bits where fake_tensor_quant now takes a
    bias (its signature gained one), so its own MSE search scores every candidate on a 0-bit
    grid; quantcalc follows the search as written, not that slip."""
    counts = hist.astype(F32)
    edges = edges.astype(F32)
    centers = (edges[1:] + edges[:-1]) / F32(2)
    bound = F32((1 << bits - 1) - 1)
    low = -bound
    amaxes = centers[start_bin:]
    if amaxes.size == 0:
        return centers[-1]
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        inverse = np.where(amaxes <= ZERO_AMAX, F32(0), bound / amaxes).astype(F32)
        codes = np.clip(np.rint(centers[None, :] * inverse[:, None]), low, bound)
        safe = np.where(inverse == 0, F32(1), inverse)[:, None]
        quantized = (codes / safe).astype(F32)
        # float32 as torch computes it (a huge histogram's squares overflow to inf there); the
        # sum is taken in float64 and rounded once, where torch sums float32 in its own order
        error = (quantized - centers[None, :]) ** 2 * counts
        mse = (error.sum(axis=1, dtype=np.float64).astype(F32) / F32(centers.size))
    return amaxes[int(np.argmin(mse))]


CONVENTION = TensorRT()
