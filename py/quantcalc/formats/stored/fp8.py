"""FP8 weights with their scales, as safetensors checkpoints store them.

- Block scaling (DeepSeek-V3, Qwen3-FP8): `weight` F8_E4M3 and `weight_scale_inv` (float32),
  one scale per tile of config.json's `quantization_config.weight_block_size` (128 x 128), the
  last tiles of a row or column short when the shape is not a multiple. DeepSeek-V3's
  `inference/kernel.py` `weight_dequant` multiplies `x.to(float32) * s` tile by tile (masking
  the short tiles); transformers' FP8 loader and compressed-tensors' block strategy the same.
- Per-tensor or per-channel `weight_scale` (compressed-tensors float-quantized, vLLM FP8): one
  scale (shape () or (1,)) or one per output row ((rows, 1)), compressed-tensors' `_dequantize`
  computing `x_q.to(scale.dtype) * scale` (quantization/lifecycle/forward_helpers.py).

The bytes decode through formats/float_grids.py's E4M3FN and E5M2 grids (NaN and Inf patterns as
ml_dtypes casts them); the product is one multiplication in the scale's float type (float32 for
float32, bf16 or f16 scales: torch rounds a bf16 product once from that float32 value).
"""

import numpy as np

from quantcalc.formats.float_grids import FLOAT_GRIDS
from quantcalc.formats.stored import blocks, checks

# the names a config or a safetensors header uses -> the float grid
KINDS = {"e4m3": "fp8_e4m3", "f8_e4m3": "fp8_e4m3", "float8_e4m3fn": "fp8_e4m3",
         "e5m2": "fp8_e5m2", "f8_e5m2": "fp8_e5m2", "float8_e5m2": "fp8_e5m2"}
_TABLES = {}


def table(kind: str = "e4m3"):
    """The float32 value of each of the 256 bytes of FP8 `kind` (e4m3 or e5m2)."""
    grid = KINDS.get(str(kind).lower())
    if grid is None:
        checks.refuse(f"FP8 kind '{kind}' is not known: quantcalc reads E4M3 (F8_E4M3) and E5M2")
    if grid not in _TABLES:
        _TABLES[grid] = FLOAT_GRIDS[grid].decode(np.arange(256)).astype(np.float32)
    return _TABLES[grid]


def decode(codes, kind: str = "e4m3", name: str = "weight"):
    """The float32 values of FP8 bytes (a uint8 array, one byte per value)."""
    codes = checks.dtype(checks.array(codes, name), name, np.uint8,
                         f"FP8 {kind.upper()} values (one byte each)")
    return table(kind)[codes]


def block_size(value, name: str = "quantization_config.weight_block_size") -> tuple:
    """config.json's `weight_block_size` ([128, 128]) as (rows, columns) of positive ints."""
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value)
    if not ok:
        checks.refuse(f"{name} is {str(value)[:40]}; it must be two positive integers such as "
                      "[128, 128]")
    return int(value[0]), int(value[1])


def block_scaled(weight, weight_scale_inv, block=(128, 128), kind: str = "e4m3",
                 layer: str = ""):
    """`weight` (F8 bytes, (..., rows, columns)) times `weight_scale_inv`, one float scale per
    tile of `block` = (rows, columns): shape (..., ceil(rows / 128), ceil(columns / 128))."""
    block = block_size(block, checks.label(layer, "weight_block_size"))
    name, scale_name = checks.label(layer, "weight"), checks.label(layer, "weight_scale_inv")
    weight = checks.ndim(checks.array(weight, name), name, range(2, 6), "an FP8 weight matrix")
    scale = checks.kind(checks.array(weight_scale_inv, scale_name), scale_name, "f")
    expected = (*weight.shape[:-2], *blocks.grid(weight.shape, block))
    checks.shape(scale, scale_name, expected,
                 f"one scale per {block[0]}x{block[1]} tile of the {_dims(weight.shape)} weight")
    values = decode(weight, kind, name).astype(checks.working_dtype(scale))
    return blocks.apply(values, block, scale)


def scaled(weight, weight_scale, kind: str = "e4m3", layer: str = ""):
    """`weight` (F8 bytes, (..., rows, columns)) times `weight_scale`: one scale for the whole
    tensor (shape (), (1,) or (1, 1)) or one per output row ((..., rows, 1) or (..., rows))."""
    name, scale_name = checks.label(layer, "weight"), checks.label(layer, "weight_scale")
    weight = checks.ndim(checks.array(weight, name), name, range(2, 6), "an FP8 weight matrix")
    scale = checks.kind(checks.array(weight_scale, scale_name), scale_name, "f")
    block, scale = per_tensor_or_channel(scale, weight.shape, scale_name)
    values = decode(weight, kind, name).astype(checks.working_dtype(scale))
    return blocks.apply(values, block, scale)


def per_tensor_or_channel(scale, shape, name: str):
    """(block, scale as (..., block rows, block columns)) for a per-tensor or per-row scale of a
    weight of `shape`; any other shape is refused."""
    *lead, rows, cols = (int(n) for n in shape)
    if scale.size == 1 and scale.ndim <= 2:
        return (rows, cols), scale.reshape(1, 1)
    if lead and tuple(scale.shape) == (*lead, 1, 1):
        return (rows, cols), scale
    if tuple(scale.shape) in ((*lead, rows, 1), (*lead, rows)):
        return (1, cols), scale.reshape(*lead, rows, 1)
    per_row = checks.shape_text((*lead, rows, 1))
    checks.refuse(f"{name} has shape {checks.shape_text(scale.shape)}; a {_dims(shape)} weight "
                  f"takes one scale (shape (1,)) or one per row {per_row}")


def _dims(shape) -> str:
    return "x".join(str(int(n)) for n in shape)
