"""DeepSeek-V3's block-scaled FP8: E4M3 elements with one float32 scale per block of 128 along
a row, or per tile of 128 × 128."""

import numpy as np

from quantcalc.formats.float_grids import FLOAT_GRIDS
from quantcalc.formats.granularity import Segmentation
from quantcalc.formats.integer import QParams
from quantcalc.formats.schemes.protocol import Scheme, refuse_beyond_float32


class BlockFP8Scheme(Scheme):
    """FP8 E4M3 with a float32 scale amax / 448 per block of 128 or tile of 128 × 128, in
    float32 arithmetic as DeepSeek-V3's kernels compute it."""

    def __init__(self, config, fmt):
        super().__init__(config, fmt)
        self.grid = FLOAT_GRIDS[fmt.grid]
        self.grid_max = self.grid.max_value

    def segmentation(self, shape, config):
        if self.format.tile:
            return Segmentation(shape, "tile", tile=self.block_size)
        return super().segmentation(shape, config)

    @property
    def segment_kind(self):
        return "tile" if self.format.tile else "block"

    def params(self, x, lo, hi, segmentation):
        amax = np.maximum(np.abs(lo), np.abs(hi))
        refuse_beyond_float32(self.label, amax)
        scale = (amax.astype(np.float32) / np.float32(self.grid.max_value)).astype(np.float64)
        zeros = np.zeros(amax.shape, np.int64)
        return QParams(scale, zeros, -amax, amax, zeros.astype(bool), scale == 0)

    def quantize(self, original, p, rounding, rng):
        scale = np.asarray(p["scale"], np.float32)
        live = scale != 0  # an all-zero block: its values stay 0 (0 / 0 would be NaN)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.where(live, original.astype(np.float32) / np.where(live, scale, 1), 0)
        rounded, saturated = self.grid.round(scaled.astype(np.float64), rounding, rng)
        recon = (rounded.astype(np.float32) * scale).astype(np.float64)
        return self.grid.encode(rounded), recon, saturated
