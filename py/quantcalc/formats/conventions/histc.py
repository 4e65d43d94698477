"""torch.histc and torch.linspace on CPU, in numpy: the histogram ModelOpt's
HistogramCalibrator collects (torch.histc(x, bins, min=0, max=x.max()) and
torch.linspace(0, x.max(), bins + 1) for its edges), and PyTorch's HistogramObserver's
(torch.histc(x, bins, min=x.min(), max=x.max())).

  aten/src/ATen/native/cpu/HistogramKernel.cpp (histc: linear interpolation, no local search):
    pos = (int64)((x - leftmost) * bins / (rightmost - leftmost))  in float32; the last bin
    takes its right edge
  aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp (linspace): step = (end - start) / (steps - 1)
    in float32; index i < steps / 2: start + step * i, else end - step * (steps - 1 - i)
"""

import numpy as np

F32 = np.float32


def linspace(end, steps):
    """torch.linspace(0, end, steps) in float32."""
    end = F32(end)
    step = (end - F32(0)) / F32(steps - 1)
    index = np.arange(steps)
    halfway = steps // 2
    low = F32(0) + step * index[:halfway].astype(F32)
    # end - step * k in one rounding (torch computes it fused); the exact product of two
    # float32s and the difference fit a float64, so rounding that to float32 is the same
    high = end.astype(np.float64) - step.astype(np.float64) * (steps - 1 - index[halfway:])
    return np.concatenate([low, high]).astype(F32)


def histc(x, bins, low, high):
    """torch.histc(x, bins, min=low, max=high) of float32 values, counts as int64."""
    x = np.asarray(x, F32).reshape(-1)
    left, right = F32(low), F32(high)
    if left == right:  # histc widens an empty range by 1 each side, in float64
        left, right = F32(float(low) - 1), F32(float(high) + 1)
        if left == F32(low) or right == F32(high):
            # ±1 is lost in float32 (|low| ≥ 2^24): torch's bin is then an int64 cast of NaN
            # or of bins, which torch 2.13 put in bin 1024 for 1e30 but 682 for 2^24 (three
            # values); the middle bin stands in (HistogramObserver's range does not use it)
            return np.bincount(np.full(np.count_nonzero(x == F32(low)), bins // 2, np.int32),
                               minlength=bins)[:bins].astype(np.int64)
    inside = (x >= left) & (x <= right)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        position = ((x[inside] - left) * F32(bins) / (right - left)).astype(np.int64)
    position[position == bins] = bins - 1
    # int32: np.bincount casts only safely to the platform's index type, which is int32 in
    # Pyodide's wasm32 (int64 there raised TypeError); positions are at most `bins`
    return np.bincount(position.astype(np.int32), minlength=bins)[:bins].astype(np.int64)


def histogram(magnitudes, bins):
    """(counts as int64, edges as float32) of non-negative float32 values on [0, max]."""
    x = np.asarray(magnitudes, F32).reshape(-1)
    top = F32(x.max()) if x.size else F32(0)
    return histc(x, bins, F32(0), top), linspace(top, bins + 1)
