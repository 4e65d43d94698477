"""Blocks of consecutive values laid out for whole-row arithmetic.

numpy reduces a short last axis one row at a time: the maximum of every block of 32 in 4M
float32 values takes 8 ms, and multiplying each block by its own scale (a (blocks, 1) broadcast)
2 ms, against 0.4 ms for a plain pass. Laid out so that one row holds the same positions of
every block, a block's maximum is a handful of whole-row maxima and its scale broadcasts along
contiguous rows.

The layout moves four values at a time (one 16-byte element per four float32): row t holds
values 4t .. 4t+3 of every block, block b in columns 4b .. 4b+3. The copy then takes 1.8 ms for
4M values instead of 3.7 for a float32 transpose.
"""

import numpy as np

LANES = 4  # float32 values per 16-byte element of the copy
F32 = np.float32


class Columns:
    """rows (whole blocks per row) as blocks of `size` values, size a multiple of 4: `values`
    is the (size / 4, 4 · blocks) layout above, in `dtype` (float32 or float64)."""

    def __init__(self, rows, size, dtype=F32):
        self.blocks = np.ascontiguousarray(rows, dtype).reshape(-1, size)  # the rows' own layout
        self.count = self.blocks.shape[0]
        group = np.dtype((np.void, LANES * self.blocks.itemsize))  # four values as one element
        out = np.empty((size // LANES, self.count), group)
        np.copyto(out, self.blocks.view(group).T)
        self.values = out.view(dtype)

    def reduce(self, ufunc):
        """ufunc (np.maximum, np.minimum) over each block's values."""
        lanes = ufunc.reduce(self.values, axis=0).reshape(-1, LANES)
        return ufunc(ufunc(lanes[:, 0], lanes[:, 1]), ufunc(lanes[:, 2], lanes[:, 3]))

    @staticmethod
    def spread(per_block):
        """One number per block as a row that broadcasts over `values`."""
        return np.repeat(per_block, LANES)


def holding(dtype):
    """float32 for values float32 holds exactly (float32, float16), else float64."""
    return F32 if dtype in (np.float32, np.float16) else np.float64


def natural(values):
    """A (rows, 4 · blocks) array in this layout (any dtype, a part of one too) in the blocks'
    own order, flat."""
    rows, width = values.shape
    return values.reshape(rows, width // LANES, LANES).transpose(1, 0, 2).reshape(-1)
