"""Granularity: which values share one scale and zero point.

A tensor is cut into *segments*: the whole tensor (per tensor), every index along one axis (per
channel), or runs of `group_size` consecutive values along the last axis (per group; the last group
of a row may be shorter). The analysis walks the tensor in its own memory order, so it never needs a
transposed copy; this class maps a run of flat positions to segment numbers and reduces values per
segment.
"""

import numpy as np

from quantcalc.errors import QuantcalcError


class Segmentation:
    """How a tensor of `shape` is split into segments.

    Args:
        shape: the tensor's shape (C order).
        granularity: "tensor", "channel" or "group".
        axis: channel axis (negative counts from the end), for "channel".
        group_size: values per group along the last axis, for "group".
    """

    def __init__(self, shape, granularity="tensor", axis=0, group_size=32, tile=128):
        self.shape = tuple(int(n) for n in shape)
        self.size = int(np.prod(self.shape, dtype=np.int64))
        self.granularity = granularity
        ndim = max(len(self.shape), 1)
        if granularity == "channel":
            if len(self.shape) < 2:
                raise QuantcalcError(
                    "per-channel quantization needs a tensor of two or more dimensions; these "
                    f"values are 1-D ({self.size}). Paste nested brackets such as [[1, 2], [3, 4]] "
                    "or load a file", "granularity")
            if not -ndim <= axis < ndim:
                raise QuantcalcError(
                    f"channel axis {axis} does not exist for a tensor of shape "
                    f"{self.shape_text}", "axis")
            self.axis = axis % ndim
            dims = self.shape or (1,)
            self.channels = dims[self.axis]
            self.inner = int(np.prod(dims[self.axis + 1:], dtype=np.int64))
            self.count = self.channels
        elif granularity == "tile":
            # square tiles over the matrix of rows (all leading axes) by the last axis, as
            # DeepSeek-V3 scales its FP8 weights; the last tile of a row or column may be smaller
            self.row_length = self.shape[-1] if self.shape else 1
            self.rows = self.size // self.row_length if self.row_length else 0
            self.tile = tile
            self.tiles_per_row = -(-self.row_length // tile)
            self.count = -(-self.rows // tile) * self.tiles_per_row
        elif granularity == "group":
            self.row_length = self.shape[-1] if self.shape else 1
            self.group_size = group_size
            self.groups_per_row = -(-self.row_length // group_size)
            self.count = (self.size // self.row_length if self.row_length else 0) \
                * self.groups_per_row
        else:
            self.count = 1

    @property
    def shape_text(self) -> str:
        return "x".join(str(n) for n in self.shape) or "scalar"

    def ids(self, start: int, stop: int):
        """Segment number of each flat position in [start, stop), or None for one segment."""
        if self.granularity == "tensor":
            return None
        flat = np.arange(start, stop, dtype=np.int64)
        if self.granularity == "channel":
            return (flat // self.inner) % self.channels
        if self.granularity == "tile":
            row, col = np.divmod(flat, self.row_length)
            return (row // self.tile) * self.tiles_per_row + col // self.tile
        row, col = np.divmod(flat, self.row_length)
        return row * self.groups_per_row + col // self.group_size

    def run_length(self):
        """The length of every segment when each is one run of consecutive flat positions and
        all have that length (per channel along the first axis; groups that divide the rows),
        else None. Chunks of whole runs then quantize as a (segments, length) array whose scale
        broadcasts from one value per row, with no per-value segment ids."""
        if self.granularity == "channel" and self.axis == 0:
            return self.inner
        if self.granularity == "group" and self.row_length % self.group_size == 0:
            return self.group_size
        return None

    def sizes(self) -> np.ndarray:
        """Number of values in each segment."""
        if self.granularity == "tensor":
            return np.array([self.size], dtype=np.int64)
        if self.granularity == "channel":
            return np.full(self.channels, self.size // max(self.channels, 1), dtype=np.int64)
        if self.granularity == "tile":
            return np.outer(self._spans(self.rows), self._spans(self.row_length)).reshape(-1)
        per_row = np.full(self.groups_per_row, self.group_size, dtype=np.int64)
        per_row[-1] = self.row_length - self.group_size * (self.groups_per_row - 1)
        return np.tile(per_row, self.size // self.row_length)

    def _spans(self, length):
        """Lengths of the tiles along an axis of `length`."""
        spans = np.full(-(-length // self.tile), self.tile, dtype=np.int64)
        if spans.size:
            spans[-1] = length - self.tile * (spans.size - 1)
        return spans

    def starts(self) -> np.ndarray:
        """Flat offset of each segment's first value, for segments of consecutive values.

        As np.intp: reduceat wants the platform's index type, which is 32-bit in Pyodide.
        """
        sizes = self.sizes()
        return (np.cumsum(sizes) - sizes).astype(np.intp)

    def min_max(self, x: np.ndarray):
        """Per-segment minimum and maximum (float64 arrays), without copying `x`."""
        if self.granularity == "tensor":
            return np.array([x.min()], np.float64), np.array([x.max()], np.float64)
        if self.granularity == "channel":
            other = tuple(i for i in range(x.ndim) if i != self.axis)
            return (x.min(axis=other).astype(np.float64).reshape(-1),
                    x.max(axis=other).astype(np.float64).reshape(-1))
        if self.granularity == "tile":
            matrix = x.reshape(self.rows, self.row_length)
            cuts = [np.arange(0, n, self.tile, dtype=np.intp) for n in matrix.shape]
            return tuple(reduce.reduceat(reduce.reduceat(matrix, cuts[1], axis=1), cuts[0],
                                         axis=0).astype(np.float64).reshape(-1)
                         for reduce in (np.minimum, np.maximum))
        flat = x.reshape(-1)
        starts = self.starts()
        return (np.minimum.reduceat(flat, starts).astype(np.float64),
                np.maximum.reduceat(flat, starts).astype(np.float64))

    def equal_rows(self, x: np.ndarray):
        """All segments as rows of one 2-D array when they have equal length, else None."""
        if self.granularity == "tensor":
            return x.reshape(1, -1)
        if self.granularity == "channel":
            return np.moveaxis(x.reshape(self.shape or (1,)), self.axis, 0).reshape(self.count, -1)
        if self.granularity == "tile":
            return None
        if self.row_length % self.group_size == 0:
            return x.reshape(-1, self.group_size)
        return None

    def each(self, x: np.ndarray):
        """Yield every segment's values as a 1-D array (a view where possible)."""
        if self.granularity == "tile":
            matrix = x.reshape(self.rows, self.row_length)
            for top in range(0, self.rows, self.tile):
                for left in range(0, self.row_length, self.tile):
                    yield matrix[top:top + self.tile, left:left + self.tile].reshape(-1)
            return
        rows = self.equal_rows(x)
        if rows is not None:
            yield from rows
            return
        flat = x.reshape(-1)
        for start, n in zip(self.starts(), self.sizes()):
            yield flat[start:start + n]
