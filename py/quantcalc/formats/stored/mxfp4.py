"""MXFP4 as gpt-oss stores its MoE experts: `W_blocks` (uint8, shape (..., rows, groups, 16):
32 FP4 E2M1 values per group, two per byte, the even column in the low nibble) and `W_scales`
(uint8 E8M0, shape (..., rows, groups): the group's scale is 2^(byte - 127)).

Decoded as transformers' `convert_moe_packed_tensors` (integrations/mxfp4.py, copied from the
gpt-oss repository) decodes it: the nibble indexes FP4_VALUES (+0, 0.5, 1, 1.5, 2, 3, 4, 6 and
their negatives), `ldexp` by the exponent, the (experts, rows, columns) result transposed to
(experts, columns, rows) — the layout of transformers' GptOssExperts parameters and of a BF16
gpt-oss checkpoint. A 2-D tensor is not transposed (the function's transpose(1, 2) needs 3).
Products of an E2M1 value and a power of two are exact in float32; transformers computes them
in bf16, which holds them exactly too unless the exponent leaves bf16's range.

`remake` is the OCP Microscaling v1.0 rule (as formats/schemes/microscaling.py): scale exponent
floor(log2 amax) - 2 (E2M1's largest exponent), clamped to E8M0's range, codes E2M1 rounded to
nearest even of x / scale, saturating at 6.
"""

import numpy as np

from quantcalc.formats.float_grids import FLOAT_GRIDS
from quantcalc.formats.schemes.microscaling import e8m0_exponent
from quantcalc.formats.stored import checks

E2M1 = FLOAT_GRIDS["fp4_e2m1"]
# the 16 codes' values: +0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives (-0 included)
FP4_VALUES = E2M1.decode(np.arange(16)).astype(np.float32)
E2M1_EMAX = 2  # E2M1's largest exponent: 6 = 1.5 x 2^2
GROUP = 32


def dequantize(blocks, scales, name: str = "weight"):
    """float32 values of gpt-oss MXFP4 `blocks` and `scales`: (..., rows, groups * 32), then
    for 3-D tensors (experts, groups * 32, rows) as transformers lays them out."""
    blocks_name, scales_name = f"{name}_blocks", f"{name}_scales"
    blocks = checks.dtype(checks.array(blocks, blocks_name), blocks_name, np.uint8,
                          "MXFP4 blocks")
    scales = checks.dtype(checks.array(scales, scales_name), scales_name, np.uint8,
                          "E8M0 scales")
    checks.ndim(blocks, blocks_name, (3, 4), "an MXFP4 weight (rows, groups, 16)")
    if blocks.shape[-1] != GROUP // 2:
        checks.refuse(f"{blocks_name} has {blocks.shape[-1]} bytes per group; MXFP4 packs 32 "
                      "values in 16")
    checks.shape(scales, scales_name, blocks.shape[:-1], "one E8M0 scale per group of 32")
    values = np.empty((*blocks.shape[:-1], GROUP), np.float32)
    values[..., 0::2] = FP4_VALUES[blocks & 0x0F]
    values[..., 1::2] = FP4_VALUES[blocks >> 4]
    with np.errstate(over="ignore"):  # byte 255 (E8M0's NaN): ldexp gives inf, as in torch
        values = np.ldexp(values, scales.astype(np.int32)[..., None] - 127).astype(np.float32)
    values = values.reshape(*blocks.shape[:-2], blocks.shape[-2] * GROUP)
    return np.ascontiguousarray(values.swapaxes(-1, -2)) if values.ndim == 3 else values


def stored_layout(values):
    """The inverse of dequantize's transpose: (experts, columns, rows) -> (experts, rows,
    columns), 2-D as it is."""
    values = np.asarray(values, np.float32)
    return np.ascontiguousarray(values.swapaxes(-1, -2)) if values.ndim == 3 else values


def remake(values):
    """The OCP rule's (blocks, scales, reconstruction) of float32 `values` in transformers'
    layout (dequantize's output shape)."""
    stored = stored_layout(values)
    if stored.shape[-1] % GROUP:
        checks.refuse(f"{stored.shape[-1]} columns are not whole groups of {GROUP}")
    groups = stored.reshape(*stored.shape[:-1], -1, GROUP)
    amax = np.abs(groups).max(axis=-1)
    exponent = e8m0_exponent(amax, E2M1_EMAX)
    rounded, _ = E2M1.round(groups.astype(np.float64) / np.ldexp(1.0, exponent)[..., None])
    codes = E2M1.encode(np.where(np.signbit(groups), -np.abs(rounded), rounded))
    codes = codes.astype(np.uint8)
    blocks = (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)
    scales = (exponent + 127).astype(np.uint8)
    return blocks, scales, dequantize(blocks, scales)


def same_as_stored(blocks, scales, tensors) -> bool:
    """Whether a slab's remade blocks and scales equal the stored `_blocks` and `_scales`."""
    return bool(np.array_equal(blocks, tensors["_blocks"])
                and np.array_equal(scales, tensors["_scales"]))
