"""torch.histc and torch.linspace on CPU, in numpy: the histogram ModelOpt's
HistogramCalibrator collects (torch.histc(x, bins, min=0, max=x.max()) and
torch.linspace(0, x.max(), bins + 1) for its edges).

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


def histogram(magnitudes, bins):
    """(counts as int64, edges as float32) of non-negative float32 values on [0, max]."""
    x = np.asarray(magnitudes, F32).reshape(-1)
    top = F32(x.max()) if x.size else F32(0)
    left, right = F32(0), top
    if left == right:  # histc widens an empty range by 1 each side
        left, right = left - F32(1), right + F32(1)
    inside = (x >= left) & (x <= right)
    # int32, not int64: np.bincount takes the platform's intp and only casts to it safely, and
    # in Pyodide (wasm32) intp is int32; positions are at most `bins`, and only values inside
    # [left, right] (never NaN) are cast
    position = ((x[inside] - left) * F32(bins) / (right - left)).astype(np.int32)
    position[position == bins] = bins - 1
    counts = np.bincount(position, minlength=bins)[:bins]
    return counts.astype(np.int64), linspace(top, bins + 1)
