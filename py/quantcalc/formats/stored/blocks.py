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


def apply(values, block, scale, zero=None):
    """(values - zero) * scale with one scale (and zero point) per block, in the dtype of
    `values` (float, shape (..., rows, columns), worked on in place: pass a fresh array);
    `scale` and `zero` have shape (..., block rows, block columns), checked by the caller."""
    *lead, rows, cols = values.shape
    height, width = block
    block_rows, block_cols = grid(values.shape, block)
    ragged = rows % height or cols % width
    if ragged:
        padded = np.zeros((*lead, block_rows * height, block_cols * width), values.dtype)
        padded[..., :rows, :cols] = values
    else:
        padded = np.ascontiguousarray(values)  # so that the reshape below is a view
    tiles = padded.reshape(*lead, block_rows, height, block_cols, width)
    if zero is not None:
        tiles -= np.asarray(zero).astype(values.dtype)[..., :, None, :, None]
    tiles *= np.asarray(scale).astype(values.dtype)[..., :, None, :, None]
    return np.ascontiguousarray(padded[..., :rows, :cols]) if ragged else padded
