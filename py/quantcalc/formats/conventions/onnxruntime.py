"""ONNX Runtime (onnxruntime.quantization, 1.x): compute_scale_zp in float64 rounded to float32,
quantize_nparray's float32 division, and its MinMax, Percentile and Entropy calibrators.

  quant_utils.py get_qmin_qmax_for_qType: symmetric INT8 / INT16 use the narrow grid [-127, 127]
    (ONNX_INT_TYPE_SYMMETRIC_RANGE); INT4 has no narrow grid, so symmetric INT4 is [-8, 7];
    asymmetric is UINT8 / UINT4 / UINT16.
  compute_scale_zp: rmin = min(rmin, 0), rmax = max(rmax, 0); symmetric -> [-absmax, absmax];
    scale = float32((float64(rmax) - float64(rmin)) / (qmax - qmin))  (amax / 127, amax / 7.5);
    zero_point = round((qmin + qmax) / 2) symmetric, round(qmin - rmin / scale) asymmetric
    (numpy's half to even, before the scale is rounded to float32); no floor: a range narrower
    than float32's smallest normal gives scale 1 and zero point 0.
  quantize_nparray: q = clip(round(float32(x) / scale) + zero_point) to the type's full range
    ([-128, 127] even when the scale came from [-127, 127]); DequantizeLinear (q - zp) * scale.
  calibrate.py HistogramCollector: percentile on a 2048-bin np.histogram of |x| (symmetric) or
    of x on [-amax, amax] (asymmetric, cutting (100 - p) / 2 % from each side), the threshold
    the edge where the cumulative share reaches p; entropy MXNet-style on 128 bins of x with 128
    quantized bins, smoothed. Both are clamped to the data's min and max.
"""

import numpy as np

from quantcalc.formats.conventions.base import F32, Convention, clamp_codes, float32_params

PERCENTILE_BINS = 2048          # create_calibrator's defaults (calibrate.py)
ENTROPY_BINS = 128
ENTROPY_QUANTIZED_BINS = 128


class OnnxRuntime(Convention):
    name = "onnxruntime"
    label = "ONNX Runtime"
    reference = "onnxruntime 1.31.1 (onnxruntime.quantization quant_utils, calibrate)"
    calibrations = ("minmax", "percentile", "entropy", "custom")
    granularities = ("tensor", "channel")
    block_quantizer = "the weight-only MatMulNBits quantizer"
    floor_note = ("scale below float32's smallest normal: ONNX Runtime's compute_scale_zp sets "
                  "it to 1 and the zero point to 0")
    calibrated_per_tensor_only = ("percentile", "entropy")
    per_tensor_source = "its histogram calibrators collect one histogram per tensor"

    def why_not_calibration(self, method):
        return ("its calibrators are MinMax, Percentile, Entropy and Distribution (float8); "
                "use the exact convention for an MSE search")

    def refuse_grid(self, cfg):
        bits, symmetric = cfg.bits, cfg.mode == "symmetric"
        if bits not in (4, 8, 16):
            return (f"ONNX Runtime quantizes to 4, 8 or 16 bits (INT4/UINT4, INT8/UINT8, "
                    f"INT16/UINT16), not {bits}", "bits")
        if symmetric and bits in (8, 16) and not cfg.narrow_range:
            return (f"ONNX Runtime's symmetric INT{bits} scale is always taken on the narrow grid "
                    f"[−{(1 << bits - 1) - 1}, {(1 << bits - 1) - 1}] (get_qmin_qmax_for_qType); "
                    f"tick narrow range", "narrow_range")
        if symmetric and bits == 4 and cfg.narrow_range:
            return ("ONNX Runtime has no narrow INT4: its symmetric INT4 grid is [−8, 7] "
                    "(scale amax / 7.5); untick narrow range", "narrow_range")
        return None

    def grid(self, cfg):
        bits = cfg.bits
        if cfg.mode == "symmetric":
            return -(1 << bits - 1), (1 << bits - 1) - 1  # the type's range, as quantize clips
        return 0, (1 << bits) - 1

    def qparams(self, lo, hi, cfg):
        fmt = cfg.number_format
        q_min, q_max = fmt.q_min, fmt.q_max
        rmin = np.minimum(np.asarray(lo).astype(F32), F32(0))
        rmax = np.maximum(np.asarray(hi).astype(F32), F32(0))
        widened = (rmin != np.asarray(lo).astype(F32)) | (rmax != np.asarray(hi).astype(F32))
        symmetric = cfg.mode == "symmetric"
        if symmetric:
            absmax = np.maximum(np.abs(rmin), np.abs(rmax))
            rmin, rmax = -absmax, absmax
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            scale = (rmax.astype(np.float64) - rmin.astype(np.float64)) / float(q_max - q_min)
            tiny = scale < np.finfo(F32).tiny
            if symmetric:
                zero_point = np.full(scale.shape, np.round((q_min + q_max) / 2.0))
            else:
                zero_point = np.round(q_min - rmin / np.where(tiny, 1.0, scale))
        zero_point = np.where(tiny, 0, zero_point).astype(np.int64)
        scale = np.where(tiny, 1.0, scale).astype(F32)
        return float32_params(scale, zero_point, rmin, rmax, floored=tiny, widened=widened)

    def quantize(self, original, p, q_min, q_max):
        x = original.astype(F32)
        with np.errstate(over="ignore", invalid="ignore"):
            codes = np.rint(x / p["scale"].astype(F32)).astype(np.float64)
        codes += p["zero_point"]
        clipped = clamp_codes(codes, q_min, q_max)
        dequantized = ((codes - p["zero_point"]) * p["scale"]).astype(F32).astype(np.float64)
        return codes, dequantized, clipped

    def calibrate(self, segment, cfg):
        x = np.asarray(segment).astype(F32).reshape(-1)
        if cfg.calibration == "percentile":
            return percentile_range(x, cfg.percentile, cfg.mode == "symmetric")
        return entropy_range(x)

    def rule(self, cfg):
        fmt = cfg.number_format
        if cfg.mode == "symmetric":
            how = f"scale = amax / {(fmt.q_max - fmt.q_min) / 2:g}"
        else:
            how = "scale = (max − min) / (q_max − q_min), zero point = round(q_min − min / scale)"
        q_min, q_max = self.grid(cfg)
        return (f"ONNX Runtime convention: {how} in float64 rounded to float32 "
                f"(compute_scale_zp); codes = round(x / scale) in float32, clipped to "
                f"[{q_min}, {q_max}]")


def _clamped(lo, hi, data_min, data_max):
    """The thresholds clamped to the data's range, as compute_percentile / entropy do."""
    return (data_min if lo < data_min else lo), (data_max if hi > data_max else hi)


def percentile_range(x, percentile, symmetric):
    """HistogramCollector.collect_absolute_value / collect_value + compute_percentile."""
    data_min, data_max = np.min(x), np.max(x)
    if symmetric:
        hist, edges = np.histogram(np.abs(x), bins=PERCENTILE_BINS)
        edges = edges.astype(x.dtype)
        cdf = np.cumsum(hist / hist.sum())
        t = edges[np.searchsorted(cdf, percentile / 100.0)]
        lo, hi = -t, t
    else:
        threshold = np.array(max(abs(data_min), abs(data_max)), dtype=x.dtype)
        hist, edges = np.histogram(x, PERCENTILE_BINS, range=(-threshold, threshold))
        cdf = np.cumsum(hist / hist.sum())
        cut = (100.0 - percentile) / 200.0
        lo, hi = edges[np.searchsorted(cdf, cut)], edges[np.searchsorted(cdf, 1.0 - cut)]
    lo, hi = _clamped(lo, hi, data_min, data_max)
    return float(lo), float(hi)


def _smooth(p, eps=0.0001):
    """quant_utils.smooth_distribution: zeros become eps, taken off the non-zero bins."""
    is_zeros = (p == 0).astype(F32)
    is_nonzeros = (p != 0).astype(F32)
    n_zeros = is_zeros.sum()
    n_nonzeros = p.size - n_zeros
    if not n_nonzeros:
        return None
    eps1 = eps * float(n_zeros) / float(n_nonzeros)
    hist = p.astype(F32)
    hist += eps * is_zeros + (-eps1) * is_nonzeros
    return hist


def _entropy(pk, qk):
    """calibrate.entropy (scipy.stats.entropy in float32, rel_entr in numpy)."""
    pk = pk.astype(F32)
    pk = 1.0 * pk / np.sum(pk, axis=0, keepdims=True)
    qk = qk.astype(F32)
    qk = 1.0 * qk / np.sum(qk, axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        vec = pk * np.log(pk / qk)
    vec[(pk == 0) & (qk >= 0)] = 0
    vec[~((pk > 0) & (qk > 0))] = np.inf
    return np.sum(vec, axis=0).astype(pk.dtype)


def entropy_range(x, num_bins=ENTROPY_BINS, num_quantized_bins=ENTROPY_QUANTIZED_BINS):
    """HistogramCollector.collect_value + get_entropy_threshold (MXNet's algorithm)."""
    data_min, data_max = np.min(x), np.max(x)
    threshold = np.array(max(abs(data_min), abs(data_max)), dtype=x.dtype)
    hist, edges = np.histogram(x, num_bins, range=(-threshold, threshold))
    zero_bin = num_bins // 2
    half = num_quantized_bins // 2
    best, best_div = None, None
    for i in range(half, zero_bin + 1):
        start, end = zero_bin - i, min(zero_bin + i + 1, num_bins)
        sliced = hist[start:end]
        p = sliced.copy()
        p[0] += hist[:start].sum()
        p[-1] += hist[end:].sum()
        nonzeros = (p != 0).astype(np.int64)
        merged = sliced.size // num_quantized_bins
        quantized = np.add.reduceat(sliced[:num_quantized_bins * merged],
                                    np.arange(0, num_quantized_bins * merged, merged))
        quantized[-1] += sliced[num_quantized_bins * merged:].sum()
        q = np.zeros(p.size, np.int64)
        for index in range(num_quantized_bins):
            norm = nonzeros[index * merged:(index + 1) * merged].sum()
            if norm != 0:
                q[index * merged:(index + 1) * merged] = quantized[index] / norm
        ps, qs = _smooth(p), _smooth(q)
        div = np.inf if ps is None or qs is None else float(_entropy(ps, qs))
        if best_div is None or div < best_div:  # np.argmin: the first minimum
            best, best_div = (edges[start], edges[end]), div
    return tuple(float(v) for v in _clamped(*best, data_min, data_max))


CONVENTION = OnnxRuntime()
