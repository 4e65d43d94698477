"""llama.cpp's quantization types, bit-identical to ggml's own (ggml-quants.c).

quantize(name, rows, importance) takes float32 rows (rows, n_per_row) and, as ggml_quantize_chunk
does, runs the type's reference function (quantize_row_*_ref) without an importance matrix and
its importance-weighted search (quantize_row_*_impl) with one. It returns a Quantized: the code
of every value, its float32 reconstruction as the type's dequantize_row_* gives it, which values
were clipped, and each block's effective scale. See formats/ggml/search.py for how exactness is
kept.
"""


import numpy as np

from quantcalc.formats.elementwise import above_to, below_or_nan_to, magnitude
from quantcalc.formats.ggml.legacy import TYPES as LEGACY_TYPES, in_rows
from quantcalc.formats.ggml.search import (F32, _first_largest, _where, fp16, inverse,
                                           make_q3_quants, make_qkx_quants, make_qp_quants,
                                           make_qx_quants, nearest_int, seq_sum)
from quantcalc.records import record

QK = 32      # values per block of the legacy types
QK_K = 256   # values per super-block of the K-quants
# the search of every quantize_row_*_impl that fits a scale and a min (make_qkx3_quants)
IMPL_SEARCH = dict(rmin=-0.9, rdelta=0.05, nstep=36, use_mad=False)


@record
class Quantized:
    codes: np.ndarray     # int, one per value
    recon: np.ndarray     # float32, one per value
    clipped: np.ndarray   # bool, one per value
    scales: np.ndarray    # float32, one per (sub-)block: the step between adjacent codes
    bases: np.ndarray = None  # float32 per (sub-)block: x̂ = scale·(q − offset) + base (a min)
    # what the blocks store besides the codes, where `scales` and `bases` do not say it: the
    # fp16 super-block scales and the integer sub-block scales (formats/ggml/encode.py)
    fields: dict = None


def _blocks(rows, size):
    return rows.reshape(-1, size)


def _clipped_beyond(wanted, low, high):
    return (wanted < low) | (wanted > high)


def _sigma2_per_value(rows, n, factor):
    """factor * sum(x^2) / n over each row (legacy impl) or super-block (K impl), sequentially."""
    groups = rows.reshape(-1, n)
    # (factor * sum) / n, left to right as in C; a factor of 1 multiplies exactly
    return np.repeat(F32(factor) * seq_sum(groups * groups) / F32(n), n)


# ------------------------------------------------------------------------------- legacy types
# Without an importance matrix quantize() takes them from formats/ggml/legacy.py (no search
# there); Q8_0 has no importance-weighted variant (quantize_q8_0 ignores the matrix).
def q8_0(rows, importance=None):
    return _reference("q8_0", rows)


def _reference(name, rows):
    """quantize_row_*_ref of a legacy type (formats/ggml/legacy.py), in the rows' own layout."""
    return Quantized(*in_rows(name, rows))


def _symmetric_legacy(rows, importance, nmax):
    """quantize_row_q{4,5}_0_impl: Q4_0 (nmax 8) and Q5_0 (nmax 16), x = (q - nmax) d, with an
    importance matrix."""
    x = _blocks(rows, QK)
    top = 2 * nmax - 1
    sigma2 = _sigma2_per_value(rows, rows.shape[1], 1).reshape(-1, QK)
    weights = np.asarray(importance, F32).reshape(-1, QK) * np.sqrt(sigma2 + x * x)
    d, codes = make_qx_quants(x, nmax, weights)
    dq = fp16(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        wanted = nearest_int(np.where(dq[:, None] != 0, x / np.where(dq != 0, dq, F32(1))[:, None],
                                      F32(0))) + nmax
    clipped = (dq[:, None] != 0) & _clipped_beyond(wanted, 0, top)
    return Quantized(codes, (codes - nmax).astype(F32) * dq[:, None], clipped, dq)


def _affine_legacy(rows, importance, nmax):
    """quantize_row_q{4,5}_1_impl: Q4_1 (nmax 15) and Q5_1 (nmax 31), x = q d + m, with an
    importance matrix."""
    x = _blocks(rows, QK)
    sigma2 = _sigma2_per_value(rows, rows.shape[1], 1).reshape(-1, QK)
    weights = np.asarray(importance, F32).reshape(-1, QK) * np.sqrt(sigma2 + x * x)
    d, the_min, codes = make_qkx_quants(x, weights, nmax, **IMPL_SEARCH, zero_when_equal=False)
    m = fp16(-the_min)
    clipped = np.zeros(x.shape, bool)  # the search's codes are its own clamp-free choice
    dq = fp16(d)
    return Quantized(codes, codes.astype(F32) * dq[:, None] + m[:, None], clipped, dq, m)


def q4_0(rows, importance):
    return _symmetric_legacy(rows, importance, 8)


def q5_0(rows, importance):
    return _symmetric_legacy(rows, importance, 16)


def q4_1(rows, importance):
    return _affine_legacy(rows, importance, 15)


def q5_1(rows, importance):
    return _affine_legacy(rows, importance, 31)


# ------------------------------------------------------------------------------- K-quants
def _requantize(x, d_sub, m_sub, L, *, nmax, offset=0):
    """The final pass of every K-quant: each sub-block with d != 0 takes
    clamp(nearest_int((x + m) / d) + offset); a sub-block with d == 0 keeps the search's codes
    ("if (!d) continue")."""
    live = d_sub != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        if m_sub is None:
            ratio = x / np.where(live, d_sub, F32(1))[:, None]
        else:
            ratio = (x + m_sub[:, None]) / np.where(live, d_sub, F32(1))[:, None]
    wanted = nearest_int(np.where(live[:, None], ratio, F32(0))) + offset
    clipped = live[:, None] & _clipped_beyond(wanted, 0, nmax)
    return np.where(live[:, None], np.clip(wanted, 0, nmax), L), clipped


def _max_over(values):
    """The largest of each row, as the C loops `if (v > best) best = v` from 0 find it."""
    best = np.zeros(values.shape[0], F32)
    for j in range(values.shape[1]):
        best = _where(values[:, j] > best, values[:, j], best)
    return best


def _scale_min_k(rows, importance, *, nmax, sub, ref_search, scale_levels):
    """Q2_K, Q4_K, Q5_K: sub-blocks of `sub` values with codes 0..nmax and a scale and a min,
    both quantized to `scale_levels` against fp16 super-block scales d and dmin;
    x = d sc q - dmin m. ref_search(x): the weights and settings of the reference search."""
    x = _blocks(rows, sub)
    per_super = QK_K // sub
    supers = x.shape[0] // per_super
    if importance is None:  # quantize_row_q*_K_ref
        weights, search = ref_search(x)
        scales, mins, L = make_qkx_quants(x, weights, nmax, **search, zero_when_equal=True)
        scales, mins = scales.reshape(supers, per_super), mins.reshape(supers, per_super)
        max_scale, max_min = _max_over(scales), _max_over(mins)
        with np.errstate(divide="ignore"):
            inv_scale = _where(max_scale > 0, F32(scale_levels) / max_scale, F32(0))
            inv_min = _where(max_min > 0, F32(scale_levels) / max_min, F32(0))
        ls = np.minimum(scale_levels, nearest_int(inv_scale[:, None] * scales) & 0xFF)
        lm = np.minimum(scale_levels, nearest_int(inv_min[:, None] * mins) & 0xFF)
        d, dmin = fp16(max_scale / F32(scale_levels)), fp16(max_min / F32(scale_levels))
    else:  # quantize_row_q*_K_impl
        factor = 1 if nmax == 3 else 2  # Q2_K: sigma2 = mean(x^2); Q4_K / Q5_K: 2 mean(x^2)
        sigma2 = _sigma2_per_value(rows, QK_K, factor).reshape(-1, sub)
        weights = np.asarray(importance, F32).reshape(-1, sub) * np.sqrt(sigma2 + x * x)
        sw = seq_sum(weights).reshape(supers, per_super)
        scales, mins, L = make_qkx_quants(x, weights, nmax, **IMPL_SEARCH,
                                          zero_when_equal=False)
        d_block, ls = make_qp_quants(scales.reshape(supers, per_super), scale_levels, sw)
        m_block, lm = make_qp_quants(mins.reshape(supers, per_super), scale_levels, sw)
        ls, lm = np.minimum(scale_levels, ls), np.minimum(scale_levels, lm)
        d, dmin = fp16(d_block), fp16(m_block)
    d_sub = (d[:, None] * ls.astype(F32)).reshape(-1)
    m_sub = (dmin[:, None] * lm.astype(F32)).reshape(-1)
    codes, clipped = _requantize(x, d_sub, m_sub, L, nmax=nmax)
    recon = d_sub[:, None] * codes.astype(F32) - m_sub[:, None]
    return Quantized(codes, recon, clipped, d_sub, -m_sub, dict(d=d, dmin=dmin, ls=ls, lm=lm))


def _q2_k_ref_search(x):
    return magnitude(x), dict(rmin=-0.5, rdelta=0.1, nstep=15, use_mad=True)


def _q4_k_ref_search(x):
    av_x = np.sqrt(seq_sum(x * x) / F32(32))
    return av_x[:, None] + magnitude(x), dict(rmin=-1.0, rdelta=0.1, nstep=20, use_mad=False)


def _q5_k_ref_search(x):
    av_x = np.sqrt(seq_sum(x * x) / F32(32))
    return av_x[:, None] + magnitude(x), dict(rmin=-0.5, rdelta=0.1, nstep=15, use_mad=False)


def q2_k(rows, importance=None):
    return _scale_min_k(rows, importance, nmax=3, sub=16, ref_search=_q2_k_ref_search,
                        scale_levels=15)


def q4_k(rows, importance=None):
    return _scale_min_k(rows, importance, nmax=15, sub=32, ref_search=_q4_k_ref_search,
                        scale_levels=63)


def q5_k(rows, importance=None):
    return _scale_min_k(rows, importance, nmax=31, sub=32, ref_search=_q5_k_ref_search,
                        scale_levels=63)


def q3_k(rows, importance=None):
    """Q3_K: sub-blocks of 16 with signed 6-bit scales against an fp16 d;
    x = d (sc - 32) (q - 4)."""
    x = _blocks(rows, 16)
    supers = x.shape[0] // 16
    if importance is None:  # quantize_row_q3_K_ref
        scales, L = make_q3_quants(x, 4)
        scales = scales.reshape(supers, 16)
        _, max_scale = _first_largest(scales)
        live = max_scale != 0
        with np.errstate(divide="ignore"):
            iscale = _where(live, F32(-32) / np.where(live, max_scale, F32(1)), F32(0))
            ls = np.clip(nearest_int(iscale[:, None] * scales), -32, 31) + 32
            d = fp16(_where(live, F32(1) / np.where(live, iscale, F32(1)), F32(0)))
        ls = np.where(live[:, None], ls, 0)
    else:  # quantize_row_q3_K_impl
        sigma2 = _sigma2_per_value(rows, QK_K, 2).reshape(-1, 16)
        weights = np.asarray(importance, F32).reshape(-1, 16) * np.sqrt(sigma2 + x * x)
        sw = seq_sum(weights).reshape(supers, 16)
        scales, L = make_qx_quants(x, 4, weights)
        d_block, ls = make_qx_quants(scales.reshape(supers, 16), 32, sw)
        d = fp16(d_block)
    d_sub = (d[:, None] * (ls - 32).astype(F32)).reshape(-1)
    codes, clipped = _requantize(x, d_sub, None, L, nmax=7, offset=4)
    recon = d_sub[:, None] * (codes - 4).astype(F32)
    return Quantized(codes, recon, clipped, d_sub, fields=dict(d=d, ls=ls))


def q6_k(rows, importance=None):
    """Q6_K: sub-blocks of 16 with int8 scales against an fp16 d; x = d sc (q - 32)."""
    x = _blocks(rows, 16)
    supers = x.shape[0] // 16
    weights = None if importance is None else np.asarray(importance, F32).reshape(-1, 16)
    scales, L = make_qx_quants(x, 32, weights)
    scales = scales.reshape(supers, 16)
    max_abs, max_scale = _first_largest(scales)
    zero = max_abs < F32(1e-15)  # the whole super-block is stored as zeros
    with np.errstate(divide="ignore"):
        iscale = F32(-128) / np.where(zero, F32(1), max_scale)
    d = fp16(_where(zero, F32(0), F32(1) / iscale))
    sc = np.where(zero[:, None], 0, np.minimum(127, nearest_int(iscale[:, None] * scales)))
    d_sub = (d[:, None] * sc.astype(F32)).reshape(-1)
    L = np.where(np.repeat(zero, 16)[:, None], 0, L)
    codes, clipped = _requantize(x, d_sub, None, L, nmax=63, offset=32)
    recon = d_sub[:, None] * (codes - 32).astype(F32)
    return Quantized(codes, recon, clipped, d_sub, fields=dict(d=d, sc=sc))


# ------------------------------------------------------------------------------- IQ4 (non-linear)
IQ4_VALUES = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113],
                      F32)  # kvalues_iq4nl
IQ4_TRIES = 7  # quantize_iq4_nl / quantize_iq4_xs pass ntry = 7


def _level_tables():
    """For each integer t in [-127, 113]: the index of the first level above t (at least 1, at
    most 15) and the two levels around it. The levels are integers, so every x in [t, t + 1)
    has the same levels at or below it as t: floor(x) finds x's place among them."""
    floors = np.arange(int(IQ4_VALUES[0]), int(IQ4_VALUES[15]) + 1).astype(F32)
    upper = np.clip(np.searchsorted(IQ4_VALUES, floors, side="right"), 1, 15).astype(np.intp)
    return upper, IQ4_VALUES[upper - 1], IQ4_VALUES[upper]


LEVEL_ABOVE, LEVEL_BELOW_VALUE, LEVEL_ABOVE_VALUE = _level_tables()


def best_index(values):
    """best_index_int8: the nearest level's index (a tie between two levels takes the upper).

    C's binary search finds mu, the first level above x; here a table indexed by floor(x) does
    (np.searchsorted took four times as long, most of IQ4's time). The comparison after it is
    C's own, in float32. A NaN fails every comparison in C, whose search then ends at the top
    level: below_or_nan_to takes the top for it, as fmin does (np.clip would keep the NaN,
    and NaN is no index)."""
    place = np.floor(above_to(below_or_nan_to(values, IQ4_VALUES[15]), IQ4_VALUES[0])).astype(
        np.intp)
    place -= int(IQ4_VALUES[0])
    # indexing, not ndarray.take: the same gather, but Pyodide's numpy runs take about six times
    # slower than an index (13 ms against 2 ms per 2^20 values), a fifth of the page's scan time
    lower = values - LEVEL_BELOW_VALUE[place] < LEVEL_ABOVE_VALUE[place] - values
    index = LEVEL_ABOVE[place] - lower
    index = np.where(values <= IQ4_VALUES[0], 0, index)
    return np.where(values >= IQ4_VALUES[15], 15, index)


def _iq4(rows, importance, super_size):
    """quantize_row_iq4_nl_impl for IQ4_NL (super-blocks of 32: one fp16 scale) and IQ4_XS
    (super-blocks of 256: signed 6-bit sub-block scales against an fp16 d); x = d_sub v[q]."""
    x = rows.reshape(-1, super_size)
    per_super = super_size // 32
    sigma2 = seq_sum(x * x) * (F32(2) / F32(super_size))
    sub = x.reshape(-1, 32)
    if importance is None:
        weights = sub * sub
    else:
        weights = np.asarray(importance, F32).reshape(-1, 32) * np.sqrt(
            np.repeat(sigma2, per_super)[:, None] + sub * sub)
    amax, top = _first_largest(sub)
    zero = amax < F32(1e-15)
    safe_top = np.where(zero, F32(1), top)

    def fit(scale_inverse):
        q = IQ4_VALUES[best_index(scale_inverse[:, None] * sub)]
        return seq_sum(weights * q * sub), seq_sum(weights * q * q)

    d = -safe_top / IQ4_VALUES[0]
    sumqx, sumq2 = fit(F32(1) / d)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = _where(sumq2 > 0, sumqx / np.where(sumq2 > 0, sumq2, F32(1)), F32(0))
    best = d * sumqx
    for attempt in range(-IQ4_TRIES, IQ4_TRIES + 1):
        sumqx, sumq2 = fit(F32(attempt + int(IQ4_VALUES[0])) / safe_top)
        better = (sumq2 > 0) & (sumqx * sumqx > best * sumq2)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = _where(better, sumqx / np.where(better, sumq2, F32(1)), d)
        best = _where(better, d * sumqx, best)
    scales = _where(zero, F32(0), d)
    if per_super == 1:  # IQ4_NL: the block's scale, stored as fp16
        d_sub = fp16(scales)
        sub_inverse = inverse(scales)
        fields = dict(d=d_sub)
    else:  # IQ4_XS: 6-bit sub-block scales against d = -max_scale / 32
        scales = scales.reshape(-1, per_super)
        _, max_scale = _first_largest(scales)
        d = -max_scale / F32(32)
        levels = np.clip(nearest_int(inverse(d)[:, None] * scales), -32, 31)
        sub_inverse = inverse(d[:, None] * levels.astype(F32)).reshape(-1)
        d_sub = (fp16(d)[:, None] * levels.astype(F32)).reshape(-1)
        fields = dict(d=fp16(d), ls=levels + 32)
    scaled = sub_inverse[:, None] * sub
    codes = best_index(scaled)
    clipped = (scaled < IQ4_VALUES[0]) | (scaled > IQ4_VALUES[15])
    return Quantized(codes, d_sub[:, None] * IQ4_VALUES[codes], clipped, d_sub, fields=fields)


def iq4_nl(rows, importance=None):
    return _iq4(rows, importance, 32)


def iq4_xs(rows, importance=None):
    return _iq4(rows, importance, QK_K)


QUANTIZE = {"iq4_nl": iq4_nl, "iq4_xs": iq4_xs, "q8_0": q8_0, "q4_0": q4_0, "q5_0": q5_0,
            "q4_1": q4_1, "q5_1": q5_1, "q2_k": q2_k, "q3_k": q3_k, "q4_k": q4_k, "q5_k": q5_k,
            "q6_k": q6_k}


def quantize(name, rows, importance=None):
    """`rows` (rows, n_per_row) as llama.cpp's type `name` (see the module docstring)."""
    rows = np.ascontiguousarray(rows, F32)
    if importance is None and name in LEGACY_TYPES:
        out = _reference(name, rows)
    else:
        weights = None if importance is None else \
            np.tile(np.asarray(importance, F32), rows.shape[0])
        out = QUANTIZE[name](rows, weights)
    shape = rows.shape
    bases = np.zeros(out.scales.size, F32) if out.bases is None else out.bases.reshape(-1)
    return Quantized(out.codes.reshape(shape), out.recon.reshape(shape),
                     out.clipped.reshape(shape), out.scales.reshape(-1), bases, out.fields)
