"""PyTorch (torch.ao.quantization, torch 2.x): its observers' scale and zero point in float32,
and fake-quantize's rounding of x · (1.0f / scale) in float32.

  observer.py UniformQuantizationObserverBase._calculate_qparams:
    symmetric   scale = max(-min_neg, max_pos) / ((quant_max - quant_min) / 2)    (float32)
                -> amax / 127.5 for int8 [-128, 127], amax / 127 with quant_min = -127
    affine      scale = (max_pos - min_neg) / (quant_max - quant_min)             (float32)
                zero_point = clamp(quant_min - round(min_neg / scale), quant_min, quant_max)
    both        scale = max(scale, torch.finfo(torch.float32).eps)   (the floor)
  FakeQuantize (fake_quantize_per_tensor_affine / _per_channel_affine, CPU kernel):
    inv_scale = 1.0f / scale;  q = zero_point + nearbyint(x * inv_scale) (float32);
    clamp to [quant_min, quant_max];  x_hat = (q - zero_point) * scale, stored as float32
The observers: min-max is MinMaxObserver / PerChannelMinMaxObserver; MSE is HistogramObserver
(histogram_observer.py), the L2 search over a 2048-bin histogram that PyTorch's default static
qconfig ("x86", "fbgemm") puts on activations, per tensor, 8-bit dtypes (quint8 / qint8, with
quant_min / quant_max for fewer bits: reduce_range is 7 bits). PyTorch has no percentile or
entropy observer, so those are refused. torchao's float8 scaling (tensorwise, and rowwise
per channel) is float8.py.
"""

import numpy as np

from quantcalc.formats.conventions.base import (F32, Convention, as_float32, clamp_codes,
                                                float32_params)

EPS = np.finfo(F32).eps


class PyTorch(Convention):
    name = "pytorch"
    label = "PyTorch"
    reference = "torch 2.13.0 (torch.ao.quantization observers, fake_quantize)"
    calibrations = ("minmax", "mse", "custom")
    granularities = ("tensor", "channel")
    calibrated_per_tensor_only = ("mse",)
    per_tensor_source = ("HistogramObserver supports per_tensor_affine and "
                         "per_tensor_symmetric only")
    floor_note = "scale below float32 eps raised to eps (1.19e-07), as PyTorch's observers do"

    def why_not_calibration(self, method):
        return (f"PyTorch has no {method} observer: MinMaxObserver and "
                "PerChannelMinMaxObserver are min-max, HistogramObserver's L2 search is MSE; "
                "use the exact convention for it")

    def refuse_grid(self, cfg):
        if cfg.calibration == "mse" and cfg.bits > 8:
            return ("PyTorch's HistogramObserver searches over the 256 levels of quint8 / qint8 "
                    f"(fewer bits through quant_min / quant_max); {cfg.bits} bits has no "
                    "HistogramObserver here. Choose 2 to 8 bits, or min-max", "bits")
        return None

    def refuse_format(self, cfg):
        if cfg.format in ("fp8_e4m3", "fp8_e5m2"):
            from quantcalc.formats.conventions.float8 import refusal
            return refusal(cfg)
        return ("PyTorch's convention covers integers and torchao's float8 (FP8 E4M3, E5M2) "
                f"here; {cfg.format_row.label} has none", "format")

    def qparams(self, lo, hi, cfg):
        fmt = cfg.number_format
        q_min, q_max = fmt.q_min, fmt.q_max
        lo32, hi32 = np.asarray(lo).astype(F32), np.asarray(hi).astype(F32)
        min_neg = np.minimum(lo32, F32(0))
        max_pos = np.maximum(hi32, F32(0))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if cfg.mode == "symmetric":
                amax = np.maximum(-min_neg, max_pos)
                raw = amax / F32((q_max - q_min) / 2)
                scale = np.maximum(raw, EPS)
                zero_point = np.zeros(scale.shape, np.int64)
                real_min, real_max = -amax, amax
            else:
                raw = (max_pos - min_neg) / F32(q_max - q_min)
                scale = np.maximum(raw, EPS)
                zero_point = q_min - np.rint(min_neg / scale).astype(np.int64)
                zero_point = np.clip(zero_point, q_min, q_max)
                real_min, real_max = min_neg, max_pos
        return float32_params(scale, zero_point, real_min, real_max, floored=raw < EPS,
                              widened=(min_neg != lo32) | (max_pos != hi32),
                              inverse=F32(1) / scale)

    def quantize(self, original, p, q_min, q_max):
        x = original.astype(F32)
        with np.errstate(over="ignore", invalid="ignore"):
            codes = np.rint(x * p["inverse"].astype(F32)).astype(np.float64)
        codes += p["zero_point"]
        clipped = clamp_codes(codes, q_min, q_max)
        dequantized = ((codes - p["zero_point"]) * p["scale"]).astype(F32).astype(np.float64)
        return codes, dequantized, clipped

    def calibrate(self, segment, cfg):
        from quantcalc.formats.conventions import histogram_observer
        lo, hi = histogram_observer.observe(as_float32(segment))
        return float(lo), float(hi)

    def rule(self, cfg):
        if cfg.mode == "symmetric":
            fmt = cfg.number_format
            half = (fmt.q_max - fmt.q_min) / 2
            how = f"scale = amax / {half:g} (observer: amax / ((q_max − q_min) / 2))"
        else:
            how = "scale = (max − min) / (q_max − q_min), zero point = q_min − round(min / scale)"
        observer = ("HistogramObserver (L2 search over a 2048-bin histogram) chose the range; "
                    if cfg.calibration == "mse" else "")
        return (f"PyTorch convention: {observer}{how} in float32, at least float32 eps; "
                f"codes = nearbyint(x · (1.0f / scale)) in float32 as fake_quantize does")


CONVENTION = PyTorch()
