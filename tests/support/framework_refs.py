"""The frameworks themselves, as test-only references for formats/conventions/: each function
quantizes float32 values with a Config's settings through the framework's own code and returns
(codes, scale, zero_point, dequantized) as numpy arrays (one scale / zero point per segment).

torch 2.13.0 (torch.ao.quantization MinMaxObserver, PerChannelMinMaxObserver,
HistogramObserver, and fake_quantize), onnxruntime 1.31.1
(onnxruntime.quantization: MinMax via compute_data_quant_params, HistogramCollector for
percentile and entropy, quantize_nparray), nvidia-modelopt 0.47.0 (MaxCalibrator,
HistogramCalibrator, the CPU fake quantizer _tensor_quant, export_int8's scale) and torchao 0.18.0
(amax_to_scale, to_fp8_saturated; hp_tensor_to_float8_dynamic for rowwise). Each import skips
the test when the package is missing.
"""

import warnings

import numpy as np
import pytest


def _torch():
    return pytest.importorskip("torch")


def _channels_first(x, cfg):
    """(segments, values) rows, one per channel (or one row for the tensor)."""
    if cfg.granularity == "channel":
        return np.moveaxis(x, cfg.axis, 0).reshape(x.shape[cfg.axis], -1)
    return x.reshape(1, -1)


# ------------------------------------------------------------------------------ PyTorch
def pytorch(x, cfg):
    torch = _torch()
    from torch.ao.quantization import observer as obs

    fmt = cfg.number_format
    symmetric = cfg.mode == "symmetric"
    dtype = torch.qint8 if symmetric else torch.quint8
    if cfg.bits > 8:
        dtype = torch.qint32
    t = torch.from_numpy(np.ascontiguousarray(x))
    if cfg.calibration == "mse":
        # HistogramObserver, as get_default_qconfig("x86") puts it on activations; 7 bits
        # through torch's own reduce_range flag, fewer through quant_min / quant_max
        limits = ({"reduce_range": True} if cfg.bits == 7 else
                  {"quant_min": fmt.q_min, "quant_max": fmt.q_max})
        with warnings.catch_warnings():  # reduce_range's deprecation notice
            warnings.simplefilter("ignore")
            observer = obs.HistogramObserver(
                dtype=dtype, qscheme=torch.per_tensor_symmetric if symmetric
                else torch.per_tensor_affine, **limits)
        assert (observer.quant_min, observer.quant_max) == (fmt.q_min, fmt.q_max)
    elif cfg.granularity == "channel":
        observer = obs.PerChannelMinMaxObserver(
            ch_axis=cfg.axis % x.ndim, dtype=dtype,
            qscheme=torch.per_channel_symmetric if symmetric else torch.per_channel_affine,
            quant_min=fmt.q_min, quant_max=fmt.q_max)
    else:
        observer = obs.MinMaxObserver(
            dtype=dtype, qscheme=torch.per_tensor_symmetric if symmetric
            else torch.per_tensor_affine, quant_min=fmt.q_min, quant_max=fmt.q_max)
    if cfg.calibration == "custom":
        scale, zero_point = observer._calculate_qparams(
            torch.tensor([cfg.range_min], dtype=torch.float32),
            torch.tensor([cfg.range_max], dtype=torch.float32))
    else:
        observer(t)
        scale, zero_point = observer.calculate_qparams()
    if cfg.granularity == "channel":
        out = torch.fake_quantize_per_channel_affine(
            t, scale, zero_point.to(torch.int32), cfg.axis % x.ndim, fmt.q_min, fmt.q_max)
        shape = [1] * x.ndim
        shape[cfg.axis % x.ndim] = -1
        s, z = scale.numpy().reshape(shape), zero_point.numpy().reshape(shape)
    else:
        out = torch.fake_quantize_per_tensor_affine(t, float(scale), int(zero_point),
                                                    fmt.q_min, fmt.q_max)
        s, z = scale.numpy()[0], zero_point.numpy()[0]
    dequantized = out.numpy()
    codes = np.rint(dequantized.astype(np.float64) / s.astype(np.float64)) + z
    return (codes.astype(np.int64).reshape(-1), scale.numpy(), zero_point.numpy(),
            dequantized.reshape(-1))


# ------------------------------------------------------------------------------ ONNX Runtime
def onnxruntime(x, cfg):
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto
    from onnxruntime.quantization import quant_utils as qu
    from onnxruntime.quantization.calibrate import HistogramCollector

    symmetric = cfg.mode == "symmetric"
    qtype = {(4, True): TensorProto.INT4, (8, True): TensorProto.INT8,
             (16, True): TensorProto.INT16, (4, False): TensorProto.UINT4,
             (8, False): TensorProto.UINT8, (16, False): TensorProto.UINT16}[cfg.bits, symmetric]
    rows = _channels_first(x, cfg)
    scales, zero_points = [], []
    for row in rows:
        rmin = rmax = None
        if cfg.calibration in ("percentile", "entropy"):
            collector = HistogramCollector(
                cfg.calibration, symmetric, 2048 if cfg.calibration == "percentile" else 128,
                128, cfg.percentile, "same")
            with _quiet():
                collector.collect({"t": row.copy()})
                rmin, rmax = collector.compute_collection_result()["t"][:2]
        elif cfg.calibration == "custom":
            rmin, rmax = np.float32(cfg.range_min), np.float32(cfg.range_max)
        zero_point, scale = qu.compute_data_quant_params(
            row, qtype, symmetric, rmin_override=rmin, rmax_override=rmax)
        scales.append(scale)
        zero_points.append(zero_point)
    codes = np.concatenate([qu.quantize_nparray(qtype, row, s, z).astype(np.int64)
                            for row, s, z in zip(rows, scales, zero_points)])
    scale = np.array(scales, np.float32)
    zero_point = np.array(zero_points).astype(np.int64)
    dequantized = ((codes.reshape(rows.shape) - zero_point[:, None]).astype(np.float32)
                   * scale[:, None])  # DequantizeLinear: float(q - zp) * scale
    return (_back(codes.reshape(rows.shape), x, cfg), scale, zero_point,
            _back(dequantized, x, cfg))


def _back(rows, x, cfg):
    """Rows of _channels_first back in the tensor's flat C order."""
    if cfg.granularity != "channel":
        return rows.reshape(-1)
    moved = np.moveaxis(x, cfg.axis, 0).shape
    return np.moveaxis(rows.reshape(moved), 0, cfg.axis).reshape(-1)


class _quiet:
    """ONNX Runtime's calibrators print as they go."""

    def __enter__(self):
        import contextlib
        import io
        self._redirect = contextlib.redirect_stdout(io.StringIO())
        self._redirect.__enter__()

    def __exit__(self, *exc):
        self._redirect.__exit__(*exc)


# ------------------------------------------------------------------------------ ModelOpt
def _modelopt():
    _torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calib = pytest.importorskip("modelopt.torch.quantization.calib")
        from modelopt.torch.quantization import tensor_quant
    return calib, tensor_quant


def modelopt_amax(x, cfg):
    """ModelOpt's amax per segment (a torch tensor) for cfg's calibration."""
    torch = _torch()
    calib, tensor_quant = _modelopt()
    t = torch.from_numpy(np.ascontiguousarray(x))
    if cfg.calibration == "custom":
        return torch.tensor(max(abs(np.float32(cfg.range_min)), abs(np.float32(cfg.range_max))),
                            dtype=torch.float32)
    if cfg.calibration == "minmax":
        axis = cfg.axis % x.ndim if cfg.granularity == "channel" else None
        calibrator = calib.MaxCalibrator(num_bits=cfg.bits, axis=axis, unsigned=False)
        calibrator.collect(t)
        return calibrator.compute_amax()
    from modelopt.torch.quantization.calib import histogram
    calibrator = calib.HistogramCalibrator(num_bits=cfg.bits, unsigned=False)
    calibrator.collect(t)
    if cfg.calibration == "mse":
        # ModelOpt 0.47 calls fake_tensor_quant(centers, amax, num_bits, unsigned), which its
        # signature (inputs, amax, bias, num_bits, unsigned, narrow_range) now reads as bias =
        # num_bits; the reference is the search as pytorch-quantization wrote it
        original = histogram.fake_tensor_quant
        histogram.fake_tensor_quant = lambda inputs, amax, num_bits, unsigned: original(
            inputs, amax, None, num_bits, unsigned, True)
        try:
            return calibrator.compute_amax("mse")
        finally:
            histogram.fake_tensor_quant = original
    kwargs = {"percentile": cfg.percentile} if cfg.calibration == "percentile" else {}
    return calibrator.compute_amax(cfg.calibration, **kwargs)


def modelopt(x, cfg):
    torch = _torch()
    _, tensor_quant = _modelopt()
    amax = modelopt_amax(x, cfg).float()
    t = torch.from_numpy(np.ascontiguousarray(x))
    shaped = amax
    if cfg.granularity == "channel":
        shape = [1] * x.ndim
        shape[cfg.axis % x.ndim] = -1
        shaped = amax.reshape(shape)
    dequantized = tensor_quant._tensor_quant(t, shaped, cfg.bits, False, cfg.narrow_range)
    bound = torch.tensor(2.0 ** (cfg.bits - 1) - 1.0)
    inverse = bound / shaped
    inverse = torch.where(shaped <= 1.0 / (1 << 24), torch.zeros_like(inverse), inverse)
    codes = torch.clamp((t * inverse).round_(), -bound - (0 if cfg.narrow_range else 1), bound)
    scale = (amax / (2 ** (cfg.bits - 1) - 1)).reshape(-1)  # export_int8: amax / maxbound
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    return (codes.numpy().astype(np.int64).reshape(-1), scale.numpy(),
            np.zeros(scale.numel(), np.int64), dequantized.numpy().reshape(-1))


# ------------------------------------------------------------------------------ torchao
def torchao_float8(x, cfg):
    """torchao's own float8 cast: tensorwise per tensor; per channel its rowwise scaling
    (tensor_to_scale with ScalingGranularity.AXISWISE and round_scales_to_power_of_2=True, as
    Float8LinearConfig.from_recipe_name("rowwise") sets), reducing over the dim(s) other than
    the channel axis: the other dim of a matrix (dim 1 for a linear's (out, in) weight, one scale
    per output row), or the rows of the (channels, rest) view of a larger tensor."""
    torch = _torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        utils = pytest.importorskip("torchao.float8.float8_utils")
        from torchao.float8.config import Float8LinearConfig, ScalingGranularity
        from torchao.float8.float8_scaling_utils import hp_tensor_to_float8_dynamic
        from torchao.float8.float8_training_tensor import LinearMMConfig
    dtype = {"fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}[cfg.format]
    t = torch.from_numpy(np.ascontiguousarray(x))
    if cfg.granularity == "channel":
        recipe = Float8LinearConfig.from_recipe_name("rowwise")
        assert recipe.cast_config_weight.scaling_granularity is ScalingGranularity.AXISWISE
        axis = cfg.axis % x.ndim
        if x.ndim == 2:
            rows, dim = t, -1 if axis == 0 else 0  # the dim reduced over
        else:
            rows, dim = torch.from_numpy(_channels_first(x, cfg).copy()), -1
        fp8 = hp_tensor_to_float8_dynamic(
            rows, dtype, LinearMMConfig(), scaling_granularity=ScalingGranularity.AXISWISE,
            axiswise_dim=dim, round_scales_to_power_of_2=recipe.round_scales_to_power_of_2)
        scale, bits, dequantized = fp8._scale, fp8._data, fp8.to_original_precision()
        if x.ndim != 2:
            bits = torch.from_numpy(_back(bits.view(torch.uint8).numpy(), x, cfg)).view(dtype)
            dequantized = torch.from_numpy(_back(dequantized.numpy(), x, cfg))
    else:
        scale = utils.amax_to_scale(t.abs().max(), dtype)
        bits = utils.to_fp8_saturated(t.to(torch.float32) * scale, dtype)
        dequantized = bits.to(torch.float32) / scale
    scale = scale.to(torch.float64).reshape(-1)
    return (bits.view(torch.uint8).numpy().astype(np.int64).reshape(-1),
            (1.0 / scale).numpy(), np.zeros(scale.numel(), np.int64),
            dequantized.numpy().reshape(-1))
