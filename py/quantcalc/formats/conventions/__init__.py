"""Framework conventions: reproduce PyTorch, ONNX Runtime or TensorRT (ModelOpt) bit for bit.

`exact` (the default) is quantcalc's own float64 arithmetic, one rule per setting, and touches
nothing. Each framework is one module with its scale rule, its float32 arithmetic, its
calibrators and what it offers (a setting it does not offer is refused with the reason):
  pytorch      torch.ao.quantization observers + fake_quantize; torchao float8 (float8.py)
  onnxruntime  onnxruntime.quantization compute_scale_zp, quantize_nparray, calibrators
  tensorrt     ModelOpt's fake quantizer, MaxCalibrator and HistogramCalibrator
"""

import importlib

EXACT = "exact"
NAMES = (EXACT, "pytorch", "onnxruntime", "tensorrt")
LABELS = {"exact": "Exact (float64)", "pytorch": "PyTorch", "onnxruntime": "ONNX Runtime",
          "tensorrt": "TensorRT (ModelOpt)"}


def get(name):
    """The convention object of a framework (None for exact)."""
    if name == EXACT:
        return None
    return importlib.import_module(f"quantcalc.formats.conventions.{name}").CONVENTION


def refusal(cfg):
    """(reason, field) when cfg.convention does not offer cfg's settings, else None."""
    convention = get(cfg.convention)
    return None if convention is None else convention.refusal(cfg)
