"""Helpers of the stored-format decoder tests (tests/formats/stored): bit-level comparison and
torch <-> numpy conversion of the arrays a safetensors file would hold."""

import numpy as np


def same_values(ours, theirs):
    """Equal float32 bit patterns wherever a value is a number, and NaN (of the same sign) where
    it is not: NaN payloads differ between torch (0x7ff00000) and ml_dtypes (0x7fc00000)."""
    ours, theirs = np.asarray(ours, np.float32), np.asarray(theirs, np.float32)
    if ours.shape != theirs.shape:
        return False
    nan = np.isnan(ours)
    if not np.array_equal(nan, np.isnan(theirs)):
        return False
    if not np.array_equal(np.signbit(ours[nan]), np.signbit(theirs[nan])):
        return False
    return np.array_equal(ours[~nan].view(np.uint32), theirs[~nan].view(np.uint32))


def stored(tensor):
    """A torch tensor as a safetensors reader hands it over: F8 as uint8 bytes, BF16 widened to
    float32 (exactly), everything else as is."""
    import torch

    if tensor.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        return tensor.view(torch.uint8).numpy().copy()
    if tensor.dtype == torch.bfloat16:
        return tensor.float().numpy()
    return tensor.numpy().copy()


def rounded_like(values, tensor):
    """quantcalc's float32 `values` rounded once to `tensor`'s dtype, as torch rounds its own
    float32 products of bf16/f16 operands (the comparison for a library computing in bf16)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(values)).to(tensor.dtype)
