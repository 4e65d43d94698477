"""Scales and zero points that each cover one block of a weight's last two axes: the whole
matrix (per tensor), a row (per channel), 1 x group_size (per group) or a 128 x 128 tile, the
last block of a row or a column possibly short (as compressed-tensors pads for block
quantization and DeepSeek-V3's `weight_dequant` masks)."""

import numpy as np


def count(size: int, block: int) -> int:
    """Blocks of `block` that cover `size` (the last one possibly short)."""
    return -(-int(size) // int(block))


def grid(shape, block) -> tuple:
    """(block rows, block columns) over the last two axes of `shape`."""
    return count(shape[-2], block[0]), count(shape[-1], block[1])


def padded(values, block, fill=0.0):
    """(values padded with `fill` to whole blocks over the last two axes, whether padding was
    needed); unpadded values come back contiguous, so that reshaping them into tiles is a
    view."""
    *lead, rows, cols = values.shape
    height, width = block
    block_rows, block_cols = grid(values.shape, block)
    if not (rows % height or cols % width):
        return np.ascontiguousarray(values), False
    out = np.full((*lead, block_rows * height, block_cols * width), fill, values.dtype)
    out[..., :rows, :cols] = values
    return out, True


def tiles(values, block):
    """Whole-block `values` (..., rows, columns) viewed as (..., block rows, height, block
    columns, width)."""
    *lead, rows, cols = values.shape
    height, width = block
    return values.reshape(*lead, rows // height, height, cols // width, width)


def apply(values, block, scale, zero=None):
    """(values - zero) * scale with one scale (and zero point) per block, in the dtype of
    `values` (float, shape (..., rows, columns), worked on in place: pass a fresh array);
    `scale` and `zero` have shape (..., block rows, block columns), checked by the caller."""
    *_, rows, cols = values.shape
    whole, ragged = padded(values, block)
    blocked = tiles(whole, block)
    if zero is not None:
        blocked -= np.asarray(zero).astype(values.dtype)[..., :, None, :, None]
    blocked *= np.asarray(scale).astype(values.dtype)[..., :, None, :, None]
    return np.ascontiguousarray(whole[..., :rows, :cols]) if ragged else whole
