"""torch.ao.quantization.HistogramObserver in numpy: one forward(x) on the whole tensor, then
the range calculate_qparams() hands to _calculate_qparams (the same as MinMaxObserver's, in
pytorch.py). PyTorch's default static qconfig ("x86", "fbgemm") observes activations with it.

  forward        min_val, max_val = aminmax(x); histogram = torch.histc(x, 2048, min_val, max_val)
                 (counts in float32, histc.py's binning)
  _non_linear_param_search (caffe2's NormMinimization): cSum = cumsum(histogram) (float64
                 running sum, as torch's CPU cumsum); total = histogram.sum(); from the
                 quantiles alpha = 0, beta = 1, step 1e-5 (Python floats), move whichever end
                 crosses more bins (cSum[l] < alpha·total, cSum[r] > beta·total, the threshold
                 rounded to float32 as torch compares a float32 tensor with a Python number);
                 stop as soon as the L2 error of the new [start_bin, end_bin] exceeds the last
  _compute_quantization_error: the candidate spread over dst_nbins = 2^8 levels (256 for quint8
                 and qint8 whatever quant_min / quant_max or reduce_range say); bin_width and
                 dst_bin_width are Python doubles, every tensor op float32 with the double cast
                 to float32; floor division as c10::div_floor_floating; norm.sum() is torch's
                 cascade sum (SumKernel.cpp), whose order depends on the CPU's vector width
  new_min = min_val + bin_width · start_bin, new_max = min_val + bin_width · (end_bin + 1)
                 with bin_width = (max_val − min_val) / 2048, all float32
Bit-identical to torch 2.13 on x86 (AVX2 and AVX512 alike: torch.sum's float vectors are 8 wide
there). Not reproduced: a bin of more than 2^24 values (torch.histc counts in float32 per thread,
so it stops counting at 2^24 depending on how many threads share the tensor), and ARM builds,
whose torch.sum adds in another order.
"""

import bisect

import numpy as np

from quantcalc.errors import QuantcalcError
from quantcalc.formats.conventions.histc import histc

F32 = np.float32
BINS = 2048
DST_NBINS = 256        # 2 ** torch.iinfo(torch.quint8 or torch.qint8).bits
STEP = 1e-5
VECTOR_WIDTH = 8       # floats per torch.sum vector on x86: AVX2, AVX512 and default alike


def observe(x, *, bins=BINS, dst_nbins=DST_NBINS, vector_width=VECTOR_WIDTH):
    """(new_min, new_max) as float32: HistogramObserver's range for finite float32 values x."""
    x = np.asarray(x, F32).reshape(-1)
    min_val, max_val = F32(x.min()), F32(x.max())
    with np.errstate(over="ignore"):
        spread = (max_val - min_val) * F32(bins)
    if not np.isfinite(spread):
        # torch.histc's (x − min) · bins overflows: the bin index is an int64 cast of inf (or of
        # a NaN from linspace), undefined behaviour that lands wherever the pointer wraps
        raise QuantcalcError(
            f"PyTorch's HistogramObserver overflows float32 on this range ({float(min_val):.4g} "
            f"to {float(max_val):.4g}): torch.histc multiplies it by {bins} bins, beyond "
            f"3.4e38, and its bin indices are then undefined. Scale the values down, or use "
            f"min-max or the exact convention", "values")
    if min_val == max_val:
        # a constant: bin_width is 0, so every candidate's error is 0.0 and the search walks
        # all 10^5 quantile steps without a break; whichever bins it ends on, the range is
        # min_val + 0 · bin (a −0.0 minimum included, which becomes +0.0 either way)
        start_bin = end_bin = 0
    else:
        histogram = histc(x, bins, min_val, max_val).astype(F32)
        start_bin, end_bin = _search(histogram, min_val, max_val, bins, dst_nbins,
                                     vector_width)
    bin_width = (max_val - min_val) / F32(bins)
    with np.errstate(over="ignore", invalid="ignore"):
        new_min = min_val + bin_width * F32(start_bin)
        new_max = min_val + bin_width * F32(end_bin + 1)
    return F32(new_min), F32(new_max)


def _search(histogram, min_val, max_val, bins, dst_nbins, vector_width):
    """_non_linear_param_search's (start_bin, end_bin)."""
    total = float(cascade_sum(histogram, vector_width))
    c_list = cumulative(histogram).tolist()
    alpha, beta = 0.0, 1.0
    start_bin, end_bin = 0, bins - 1
    norm_min = float("inf")
    # bin_width in _compute_quantization_error is (max_val.item() - min_val.item()) / bins
    bin_width = (float(max_val) - float(min_val)) / bins
    while alpha < beta:
        next_alpha = alpha + STEP
        next_beta = beta - STEP
        # l: first bin from start_bin on (at most end_bin) with cSum[l] >= next_alpha * total;
        # r: last bin down to start_bin with cSum[r] <= next_beta * total (cSum ascends)
        low = float(F32(next_alpha * total))
        high = float(F32(next_beta * total))
        l = min(end_bin, max(start_bin, bisect.bisect_left(c_list, low)))
        r = max(start_bin, min(end_bin, bisect.bisect_right(c_list, high) - 1))
        next_start_bin, next_end_bin = start_bin, end_bin
        if (l - start_bin) > (end_bin - r):
            next_start_bin = l
            alpha = next_alpha
        else:
            next_end_bin = r
            beta = next_beta
        if next_start_bin == start_bin and next_end_bin == end_bin:
            continue
        norm = quantization_error(histogram, bin_width, next_start_bin, next_end_bin,
                                  dst_nbins, vector_width)
        if norm > norm_min:
            break
        norm_min = norm
        start_bin, end_bin = next_start_bin, next_end_bin
    return start_bin, end_bin


def cumulative(histogram):
    """torch.cumsum of a float32 vector on CPU: a float64 running sum, each rounded to float32
    (exact for counts below 2^24, torch's rounding beyond)."""
    return np.cumsum(np.asarray(histogram, np.float64)).astype(F32)


def _norm(delta_begin, delta_end, density):
    """_get_norm: density · (end³ − begin³) / 3 in float32."""
    return density * ((delta_end * delta_end * delta_end
                       - delta_begin * delta_begin * delta_begin) / F32(3))


def quantization_error(histogram, bin_width, start, end, dst_nbins, vector_width):
    """_compute_quantization_error(start, end) as a Python float (norm.sum().item())."""
    bins = histogram.size
    dst_bin_width = bin_width * (end - start + 1) / dst_nbins
    if dst_bin_width == 0.0:
        return 0.0
    width, dst_width = F32(bin_width), F32(dst_bin_width)
    half = F32(dst_bin_width / 2)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        src_begin = (np.arange(bins, dtype=np.int64) - start).astype(F32) * width
        src_end = src_begin + width
        top = F32(dst_nbins - 1)
        dst_of_begin = np.clip(np.floor_divide(src_begin, dst_width), F32(0), top)
        dst_of_begin_center = (dst_of_begin + F32(0.5)) * dst_width
        dst_of_end = np.clip(np.floor_divide(src_end, dst_width), F32(0), top)
        density = histogram / width

        norm = np.zeros(bins, F32)
        norm += _norm(src_begin - dst_of_begin_center, np.full(bins, half, F32), density)
        whole = _norm(F32(-half), half, density)
        norm += (dst_of_end - dst_of_begin - F32(1)) * whole
        dst_of_end_center = dst_of_end * dst_width + half
        norm += _norm(-half, src_end - dst_of_end_center, density)
        return float(cascade_sum(norm, vector_width))


def _ceil_log2(n):
    return 1 if n <= 2 else int(n - 1).bit_length()


def cascade_sum(values, vector_width=VECTOR_WIDTH):
    """torch.sum of a contiguous float32 vector on CPU (SumKernel.cpp cascade_sum), in the same
    order: vectorized_inner_sum row-sums vectors of `vector_width` floats, then adds the floats
    beyond the last whole vector and the lanes one by one; fewer values than a vector take
    scalar_inner_sum, the same row_sum over single floats."""
    v = np.asarray(values, F32).reshape(-1)
    n, w = v.size, vector_width
    if n < w:
        return F32(_row_sum(v.reshape(n, 1))[0])
    vec_size = n // w
    lanes = _row_sum(v[:vec_size * w].reshape(vec_size, w))
    final = F32(0)
    for value in v[vec_size * w:]:
        final = F32(final + value)
    for lane in lanes:
        final = F32(final + lane)
    return final


def _row_sum(elements):
    """row_sum over (m, lanes) float32 elements: four accumulators (rows of four elements) in
    multi_row_sum's four-level cascade, flushed every 2^level_power rows; the elements beyond
    the last row of four go to the first accumulator, then the other three are added to it."""
    m, w = elements.shape
    rows = m // 4
    level_power = max(4, _ceil_log2(rows) // 4)
    step = 1 << level_power
    mask = step - 1
    acc = np.zeros((4, 4, w), F32)  # [level][accumulator][lane]
    i = 0
    while i + step <= rows:
        block = elements[4 * i:4 * (i + step)].reshape(step, 4, w)
        for j in range(step):
            acc[0] += block[j]
        i += step
        for level in range(1, 4):
            acc[level] += acc[level - 1]
            acc[level - 1] = 0
            if i & (mask << (level * level_power)):
                break
    for j in range(i, rows):
        acc[0] += elements[4 * j:4 * j + 4]
    for level in range(1, 4):
        acc[0] += acc[level]
    partial = acc[0]
    for k in range(rows * 4, m):
        partial[0] += elements[k]
    for k in range(1, 4):
        partial[0] += partial[k]
    return partial[0]
