"""llama.cpp's K-quants, transcribed from ggml's ggml-quants.c so that codes and reconstructions
are bit-identical to ggml's own (tests/unit/test_kquants.py compares them with libggml itself).

Each function works on many blocks at once: arrays of shape (blocks, values), one row a block.
Bit-exactness rests on doing what the C code does, in its order:
  - every operation in float32 (numpy float32 arrays and np.float32 constants; NumPy 2 keeps
    Python scalars weak, so they do not widen to float64);
  - every running sum accumulated element by element, left to right, as the C loops do (numpy's
    own sums are pairwise and round differently), vectorised across blocks instead;
  - nearest_int(x) is C's "add 1.5 * 2^23" trick, which is round-half-even in float32: np.rint;
  - fp16 conversions round to nearest even, as GGML_FP32_TO_FP16 does: astype(np.float16).
ggml's reference functions are built for baseline x86-64 with ISO C floating point (no FMA
contraction), so a*b + c is two roundings there as here.
"""

import numpy as np

F32 = np.float32
GROUP_MAX_EPS = F32(1e-15)
QK_K = 256


def nearest_int(values):
    return np.rint(values).astype(np.int32)


def fp16(values):
    """The float32 a ggml fp16 field holds after storing `values` (round to nearest even)."""
    with np.errstate(over="ignore"):
        return np.asarray(values, F32).astype(np.float16).astype(F32)


def _where(mask, a, b):
    return np.where(mask, a, b).astype(F32)


def make_qkx_quants(x, weights, nmax, rmin, rdelta, nstep, use_mad, zero_when_equal):
    """make_qkx2_quants (zero_when_equal: max == min) and make_qkx3_quants (max <= min) for a
    batch: returns (scale, the_min, L) with L the codes 0..nmax."""
    blocks, n = x.shape
    w = weights
    lo = x[:, 0].copy()
    hi = x[:, 0].copy()
    sum_w = w[:, 0].copy()
    sum_x = sum_w * x[:, 0]
    for i in range(1, n):
        lo = np.where(x[:, i] < lo, x[:, i], lo)
        hi = np.where(x[:, i] > hi, x[:, i], hi)
        sum_w = sum_w + w[:, i]
        sum_x = sum_x + w[:, i] * x[:, i]
    lo = np.where(lo > 0, F32(0), lo)
    flat = (hi == lo) if zero_when_equal else (hi <= lo)
    span = np.where(flat, F32(1), hi - lo)
    iscale = F32(nmax) / span
    scale = F32(1) / iscale
    L = np.clip(nearest_int(iscale[:, None] * (x - lo[:, None])), 0, nmax)
    best = np.zeros(blocks, F32)
    for i in range(n):
        diff = scale * L[:, i].astype(F32) + lo - x[:, i]
        diff = np.abs(diff) if use_mad else diff * diff
        best = best + w[:, i] * diff
    best_scale, best_min = scale, lo
    for step in range(nstep + 1):
        # the C loop moves `min` to each better fit, and the next steps start from it
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            iscale = (F32(rmin) + F32(rdelta) * F32(step) + F32(nmax)) / np.where(
                flat, F32(1), hi - best_min)
        aux = np.clip(nearest_int(np.where(flat[:, None], F32(0),
                                           iscale[:, None] * (x - best_min[:, None]))), 0, nmax)
        la = aux.astype(F32)
        sum_l = np.zeros(blocks, F32)
        sum_l2 = np.zeros(blocks, F32)
        sum_xl = np.zeros(blocks, F32)
        for i in range(n):
            sum_l = sum_l + w[:, i] * la[:, i]
            sum_l2 = sum_l2 + w[:, i] * la[:, i] * la[:, i]
            sum_xl = sum_xl + w[:, i] * la[:, i] * x[:, i]
        D = sum_w * sum_l2 - sum_l * sum_l
        positive = D > 0
        safe_D = np.where(positive, D, F32(1))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / safe_D
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / safe_D
            clamp = this_min > 0
            this_min = _where(clamp, F32(0), this_min)
            this_scale = _where(clamp, sum_xl / sum_l2, this_scale)
        cur = np.zeros(blocks, F32)
        for i in range(n):
            diff = this_scale * la[:, i] + this_min - x[:, i]
            diff = np.abs(diff) if use_mad else diff * diff
            cur = cur + w[:, i] * diff
        better = positive & (cur < best)
        L = np.where(better[:, None], aux, L)
        best = _where(better, cur, best)
        best_scale = _where(better, this_scale, best_scale)
        best_min = _where(better, this_min, best_min)
    # a flat block: all codes 0, scale 0, the_min = -min (with min clamped to <= 0)
    L = np.where(flat[:, None], 0, L)
    best_scale = _where(flat, F32(0), best_scale)
    best_min = _where(flat, lo, best_min)
    return best_scale, -best_min, L


def make_qp_quants(x, nmax, weights):
    """make_qp_quants: codes 0..nmax for non-negative x (sub-block scales or mins) and the
    scale that fits them best under `weights`."""
    blocks, n = x.shape
    top = np.zeros(blocks, F32)
    for i in range(n):
        top = np.maximum(top, x[:, i])  # MAX(max, x[i]): ties keep max, equal anyway
    zero = top < GROUP_MAX_EPS
    safe_top = np.where(zero, F32(1), top)
    iscale = F32(nmax) / safe_top
    L = nearest_int(iscale[:, None] * x)
    scale = F32(1) / iscale
    best = np.zeros(blocks, F32)
    for i in range(n):
        diff = x[:, i] - scale * L[:, i].astype(F32)
        best = best + weights[:, i] * diff * diff
    for step in (-4, -3, -2, -1, 1, 2, 3, 4):
        iscale_is = (F32(0.1) * F32(step) + F32(nmax)) / safe_top
        scale_is = F32(1) / iscale_is
        mse = np.zeros(blocks, F32)
        for i in range(n):
            l = np.minimum(nmax, nearest_int(iscale_is * x[:, i])).astype(F32)
            diff = x[:, i] - scale_is * l
            mse = mse + weights[:, i] * diff * diff
        better = mse < best
        best = _where(better, mse, best)
        iscale = _where(better, iscale_is, iscale)
    L = np.minimum(nmax, nearest_int(iscale[:, None] * x))
    sumlx = np.zeros(blocks, F32)
    suml2 = np.zeros(blocks, F32)
    for i in range(n):
        l = L[:, i].astype(F32)
        sumlx = sumlx + weights[:, i] * x[:, i] * l
        suml2 = suml2 + weights[:, i] * l * l
    active = np.ones(blocks, bool)
    for _ in range(5):
        changed = np.zeros(blocks, bool)
        for i in range(n):
            w, xi, li = weights[:, i], x[:, i], L[:, i].astype(F32)
            slx = sumlx - w * xi * li
            sl2 = suml2 - w * li * li
            ok = active & (slx > 0) & (sl2 > 0)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                new_l = np.minimum(nmax, nearest_int(np.where(ok, xi * sl2 / np.where(ok, slx, F32(1)), F32(0))))
            ok &= new_l != L[:, i]
            nl = new_l.astype(F32)
            slx = slx + w * xi * nl
            sl2 = sl2 + w * nl * nl
            accept = ok & (slx * slx * suml2 > sumlx * sumlx * sl2)
            L[:, i] = np.where(accept, new_l, L[:, i])
            sumlx = _where(accept, slx, sumlx)
            suml2 = _where(accept, sl2, suml2)
            changed |= accept
        active &= changed  # a block that changed nothing stops (the C loop breaks)
        if not active.any():
            break
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = _where(suml2 > 0, sumlx / np.where(suml2 > 0, suml2, F32(1)), F32(0))
    L = np.where(zero[:, None], 0, L)
    return _where(zero, F32(0), scale), L


def _sub_block_weights(x, importance):
    """The weights of quantize_row_q{4,5}_K_impl: per super-block sigma2 = 2 * mean(x^2);
    with an importance matrix qw * sqrt(sigma2 + x^2), else sqrt(sigma2) + |x|."""
    supers = x.reshape(-1, QK_K)
    sum_x2 = np.zeros(supers.shape[0], F32)
    for i in range(QK_K):
        sum_x2 = sum_x2 + supers[:, i] * supers[:, i]
    sigma2 = F32(2) * sum_x2 / F32(QK_K)
    sigma2 = np.repeat(sigma2, QK_K // 32)[:, None]
    if importance is not None:
        return importance * np.sqrt(sigma2 + x * x)
    return np.sqrt(sigma2) + np.abs(x)


def _row_sums(values):
    out = np.zeros(values.shape[0], F32)
    for i in range(values.shape[1]):
        out = out + values[:, i]
    return out


def quantize_q45_k(x, nmax, importance=None):
    """Q4_K (nmax 15) or Q5_K (nmax 31) of super-blocks x (blocks, 256) float32.

    Without an importance matrix ggml runs quantize_row_q*_K_ref; with one,
    quantize_row_q*_K_impl. Returns (codes (blocks, 256), reconstruction float32, clipped,
    sub-block scale d*sc and min dmin*m (blocks, 8) each)."""
    supers = x.shape[0]
    sub = x.reshape(-1, 32)
    if importance is None:
        sum_x2 = _row_sums(sub * sub)
        av_x = np.sqrt(sum_x2 / F32(32))
        weights = av_x[:, None] + np.abs(sub)
        rmin, rdelta, nstep = (-1.0, 0.1, 20) if nmax == 15 else (-0.5, 0.1, 15)
        scales, mins, L = make_qkx_quants(sub, weights, nmax, rmin, rdelta, nstep, False, True)
        scales, mins = scales.reshape(supers, 8), mins.reshape(supers, 8)
        max_scale = np.zeros(supers, F32)
        max_min = np.zeros(supers, F32)
        for j in range(8):
            max_scale = _where(scales[:, j] > max_scale, scales[:, j], max_scale)
            max_min = _where(mins[:, j] > max_min, mins[:, j], max_min)
        with np.errstate(divide="ignore"):
            inv_scale = _where(max_scale > 0, F32(63) / max_scale, F32(0))
            inv_min = _where(max_min > 0, F32(63) / max_min, F32(0))
        ls = np.minimum(63, nearest_int(inv_scale[:, None] * scales) & 0xFF)
        lm = np.minimum(63, nearest_int(inv_min[:, None] * mins) & 0xFF)
        d = fp16(max_scale / F32(63))
        dmin = fp16(max_min / F32(63))
    else:
        weights = _sub_block_weights(sub, np.asarray(importance, F32).reshape(-1, 32))
        sw = _row_sums(weights).reshape(supers, 8)
        scales, mins, L = make_qkx_quants(sub, weights, nmax, -0.9, 0.05, 36, False, False)
        d_block, ls = make_qp_quants(scales.reshape(supers, 8), 63, sw)
        m_block, lm = make_qp_quants(mins.reshape(supers, 8), 63, sw)
        ls, lm = np.minimum(63, ls & 0xFF), np.minimum(63, lm & 0xFF)
        d, dmin = fp16(d_block), fp16(m_block)
    d_sub = (d[:, None] * ls.astype(F32)).reshape(-1)
    m_sub = (dmin[:, None] * lm.astype(F32)).reshape(-1)
    live = d_sub != 0  # "if (!d) continue": such a sub-block keeps the search's codes
    with np.errstate(divide="ignore", invalid="ignore"):
        wanted = nearest_int(np.where(live[:, None], (sub + m_sub[:, None])
                                      / np.where(live, d_sub, F32(1))[:, None], F32(0)))
    clipped = live[:, None] & ((wanted < 0) | (wanted > nmax))
    L = np.where(live[:, None], np.clip(wanted, 0, nmax), L)
    recon = d_sub[:, None] * L.astype(F32) - m_sub[:, None]  # dequantize_row_q*_K
    return (L.reshape(supers, QK_K), recon.reshape(supers, QK_K),
            clipped.reshape(supers, QK_K), d_sub.reshape(supers, 8), m_sub.reshape(supers, 8))
