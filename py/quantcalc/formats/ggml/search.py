"""ggml's scale searches (ggml-quants.c: make_qx_quants, make_q3_quants, make_qkx2_quants,
make_qkx3_quants, make_qp_quants), transcribed so that llama.cpp's types come out bit-identical
to ggml's own (formats/ggml/types.py uses them; tests/formats/test_ggml_types.py compares with
libggml).

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

from functools import lru_cache

import numpy as np

from quantcalc.formats import elementwise

F32 = np.float32
GROUP_MAX_EPS = F32(1e-15)


def nearest_int(values):
    return np.rint(values).astype(np.int32)


HALF_MAX_ROUNDED = F32(65520)  # from here up a binary16 rounds to infinity
HALF_MIN_NORMAL = F32(2.0 ** -14)


def fp16(values):
    """The float32 a ggml fp16 field holds after storing `values` (round to nearest even).

    numpy's float16 conversions cost 5 ns a value each way; float32 arithmetic rounds the same
    in a third of the time. Adding C = 1.5 * 2^(e + 13), e the exponent of |v| (at least -14,
    binary16's smallest normal), puts the sum where float32's last bit is worth 2^(e - 10),
    binary16's step at |v|: the addition rounds |v| to that step, to even, and subtracting C
    is exact. Subnormal halves (step 2^-24) and zero go through the same arithmetic."""
    values = np.asarray(values, F32)
    magnitude = elementwise.magnitude(values)
    step = (magnitude.view(np.int32) & np.int32(0x7F800000)).view(F32)  # 2^e, or 0
    np.maximum(step, HALF_MIN_NORMAL, out=step)
    step *= F32(1.5 * 2 ** 13)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: replaced below
        rounded = magnitude + step
        rounded -= step
    too_big = magnitude >= HALF_MAX_ROUNDED
    if too_big.any():
        rounded[too_big] = np.inf
    return np.copysign(rounded, values, out=rounded)


def inverse(d):
    """C's `d ? 1.0f/d : 0.0f`. Where 1/d overflows float32 (a subnormal d), the products x*id
    are infinite and C's int8 casts undefined; such a block's fp16 scale is 0, so every value
    reconstructs to its offset whatever the code: code 0 there."""
    with np.errstate(divide="ignore", over="ignore"):
        out = F32(1) / np.asarray(d, F32)
    overflowed = np.isinf(out)  # 1/0 and 1/subnormal (d is never NaN: the values are finite)
    if overflowed.any():
        out[overflowed] = 0
    return out


@lru_cache(maxsize=16)
def filled(shape, value, dtype=F32):
    """A read-only array of `value`: np.minimum and np.maximum against an array are SIMD,
    against a scalar four (float32) to twenty (int8) times slower in numpy 2.0, and np.full
    each time costs as much again."""
    out = np.full(shape, value, dtype)
    out.flags.writeable = False
    return out


def _where(mask, a, b):
    return np.where(mask, a, b).astype(F32, copy=False)  # float32 in, float32 out: no copy


def seq_sum(values):
    """Each row's sum added left to right in float32, as the C loops add (numpy's sum is
    pairwise and rounds differently). Short rows (blocks of 16 to 64): column by column,
    vectorised across the rows (bench: 1.5 ms for 1M values against 4.2 for accumulate); long
    rows (a whole tensor row, as sigma2 sums): np.add.accumulate, which adds in the same order
    without a Python step per column (16 x 11008: 0.9 ms against 5.4)."""
    if values.shape[1] > 64:
        return np.add.accumulate(values, axis=1, dtype=F32)[:, -1]
    out = values[:, 0].astype(F32)
    for i in range(1, values.shape[1]):
        out = out + values[:, i]
    return out


def seq_sum_rows(values):
    """seq_sum of a (values, blocks) array: each column's sum added top to bottom in float32;
    adding whole contiguous rows is 6x faster than seq_sum's strided columns."""
    out = values[0].astype(F32)  # a copy: the rows are added into it
    for row in values[1:]:
        out += row
    return out


def _first_largest(x):
    """(amax, the value with the first largest magnitude), as `if (ax > amax)` scans from 0."""
    index = np.argmax(elementwise.magnitude(x), axis=1)
    top = x[np.arange(x.shape[0]), index]
    amax = elementwise.magnitude(top)
    return amax, _where(amax > 0, top, F32(0))


def make_qkx_quants(x, weights, nmax, *, rmin, rdelta, nstep, use_mad, zero_when_equal):
    """make_qkx2_quants (zero_when_equal: max == min) and make_qkx3_quants (max <= min) for a
    batch: returns (scale, the_min, L) with L the codes 0..nmax.

    The search tries the scales (rmin + rdelta * step + nmax) / (max - min) for step 0..nstep,
    each error summed as |diff| (use_mad) or diff^2, as ggml's arguments of the same names.

    The search runs on (values, blocks) copies of x and the weights: each of its running sums
    then adds whole contiguous rows (6x faster than adding strided columns, seq_sum) and a
    block's numbers broadcast along rows; the arithmetic per block is the same."""
    xt, w = _transposed(x, weights)
    lo = xt.min(axis=0)
    hi = xt.max(axis=0)
    sum_w = seq_sum_rows(w)
    sum_x = seq_sum_rows(w * xt)
    lo = np.where(lo > 0, F32(0), lo)
    flat = (hi == lo) if zero_when_equal else (hi <= lo)
    span = np.where(flat, F32(1), hi - lo)
    iscale = F32(nmax) / span
    scale = F32(1) / iscale

    def error(step_scale, step_min, codes):
        diff = step_scale * codes.astype(F32) + step_min - xt
        return seq_sum_rows(w * (elementwise.magnitude(diff) if use_mad else diff * diff))

    L = np.clip(nearest_int(iscale * (xt - lo)), 0, nmax)
    best = error(scale, lo, L)
    best_scale, best_min = scale, lo
    for step in range(nstep + 1):
        # the C loop moves `min` to each better fit, and the next steps start from it
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            iscale = (F32(rmin) + F32(rdelta) * F32(step) + F32(nmax)) / np.where(
                flat, F32(1), hi - best_min)
        aux = np.clip(nearest_int(np.where(flat, F32(0), iscale * (xt - best_min))), 0, nmax)
        la = aux.astype(F32)
        wl = w * la
        sum_l = seq_sum_rows(wl)
        sum_l2 = seq_sum_rows(wl * la)
        sum_xl = seq_sum_rows(wl * xt)
        D = sum_w * sum_l2 - sum_l * sum_l
        positive = D > 0
        safe_D = np.where(positive, D, F32(1))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / safe_D
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / safe_D
            clamp = this_min > 0
            this_min = _where(clamp, F32(0), this_min)
            this_scale = _where(clamp, sum_xl / sum_l2, this_scale)
            cur = error(this_scale, this_min, aux)
        better = positive & (cur < best)
        L = np.where(better, aux, L)
        best = _where(better, cur, best)
        best_scale = _where(better, this_scale, best_scale)
        best_min = _where(better, this_min, best_min)
    # a flat block: all codes 0, scale 0, the_min = -min (with min clamped to <= 0)
    L = np.where(flat, 0, L)
    best_scale = _where(flat, F32(0), best_scale)
    best_min = _where(flat, lo, best_min)
    return best_scale, -best_min, np.ascontiguousarray(L.T)


def _refined(sweep, x, w, L, sumlx, suml2, *, active, tries=5):
    """ggml's coordinate descent over a block's codes, on (values, blocks) arrays: up to `tries`
    sweeps, each block stopping after a sweep that changed nothing (the C loop's break). Each
    sweep runs on the blocks still going only (after the first about a fifth, then a
    twentieth), the same arithmetic per block as sweeping all of them; L is updated in place.
    Returns the final (sumlx, suml2)."""
    for _ in range(tries):
        going = np.flatnonzero(active)
        if going.size == 0:
            break
        if going.size == active.size:  # every block (the first sweep, mostly): no copies
            sumlx, suml2, active = sweep(x, w, L, sumlx, suml2)
            continue
        codes = L[:, going]
        part_lx, part_l2, changed = sweep(x[:, going], w[:, going], codes, sumlx[going],
                                          suml2[going])
        L[:, going] = codes
        sumlx, suml2 = sumlx.copy(), suml2.copy()
        sumlx[going], suml2[going] = part_lx, part_l2
        active = np.zeros_like(active)
        active[going[changed]] = True
    return sumlx, suml2


def _transposed(x, weights=None):
    """(values, blocks) copies of x and of its weights (broadcast to x's shape)."""
    xt = np.ascontiguousarray(x.T)
    if weights is None:
        return xt
    return xt, np.ascontiguousarray(np.broadcast_to(weights, x.shape).T)


def make_qp_quants(x, nmax, weights):
    """make_qp_quants: codes 0..nmax for non-negative x (sub-block scales or mins) and the
    scale that fits them best under `weights`. Searched on (values, blocks) copies."""
    blocks, n = x.shape
    x, weights = _transposed(x, weights)
    top = np.maximum(x.max(axis=0), F32(0))  # MAX(max, x[i]) from 0
    zero = top < GROUP_MAX_EPS
    safe_top = np.where(zero, F32(1), top)
    iscale = F32(nmax) / safe_top
    L = nearest_int(iscale * x) & 0xFF  # L is uint8_t in C
    scale = F32(1) / iscale
    diff = x - scale * L.astype(F32)
    best = seq_sum_rows(weights * diff * diff)
    for step in (-4, -3, -2, -1, 1, 2, 3, 4):
        iscale_is = (F32(0.1) * F32(step) + F32(nmax)) / safe_top
        scale_is = F32(1) / iscale_is
        l = np.minimum(nmax, nearest_int(iscale_is * x)).astype(F32)
        diff = x - scale_is * l
        mse = seq_sum_rows(weights * diff * diff)
        better = mse < best
        best = _where(better, mse, best)
        iscale = _where(better, iscale_is, iscale)
    wanted = np.minimum(nmax, nearest_int(iscale * x))
    L = wanted & 0xFF
    l = wanted.astype(F32)  # the int l, before it is stored
    sumlx = seq_sum_rows(weights * x * l)
    suml2 = seq_sum_rows(weights * l * l)

    def sweep(x, w, L, sumlx, suml2):
        changed = np.zeros(x.shape[1], bool)
        for i in range(n):
            wi, xi, li = w[i], x[i], L[i].astype(F32)
            wx = wi * xi  # C's w*x*l is (w*x)*l: computed once for both uses
            slx = sumlx - wx * li
            sl2 = suml2 - wi * li * li
            ok = (slx > 0) & (sl2 > 0)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                new_l = np.minimum(nmax, nearest_int(
                    np.where(ok, xi * sl2 / np.where(ok, slx, F32(1)), F32(0))))
            ok &= new_l != L[i]
            nl = new_l.astype(F32)
            slx = slx + wx * nl
            sl2 = sl2 + wi * nl * nl
            accept = ok & (slx * slx * suml2 > sumlx * sumlx * sl2)
            L[i] = np.where(accept, new_l & 0xFF, L[i])
            sumlx = _where(accept, slx, sumlx)
            suml2 = _where(accept, sl2, suml2)
            changed |= accept
        return sumlx, suml2, changed

    sumlx, suml2 = _refined(sweep, x, weights, L, sumlx, suml2, active=np.ones(blocks, bool))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = _where(suml2 > 0, sumlx / np.where(suml2 > 0, suml2, F32(1)), F32(0))
    L = np.where(zero, 0, L)
    return _where(zero, F32(0), scale), np.ascontiguousarray(L.T)


def make_qx_quants(x, nmax, weights):
    """make_qx_quants with rmse_type 1: weights given (an importance) or x^2. Returns
    (scale, L) with L = nmax + l, l in [-nmax, nmax - 1]. Searched on (values, blocks) copies,
    as make_qkx_quants is."""
    amax, top = _first_largest(x)
    xt, w = _transposed(x, x * x if weights is None else weights)
    zero = amax < GROUP_MAX_EPS
    safe_top = np.where(zero, F32(1), top)
    wx = w * xt  # C's w*x[i]*l is (w*x[i])*l: the same product at every step

    def levels(iscale):
        """nearest_int, clamped, kept as float32 (small whole numbers: exact; the C code
        converts its int l where it multiplies). A -0.0 here adds as +0.0 would but to a sum
        of zeros, whose block then keeps no scale either way."""
        return np.clip(np.rint(iscale * xt), F32(-nmax), F32(nmax - 1))

    def sums(l):
        return seq_sum_rows(wx * l), seq_sum_rows(w * l * l)

    chosen = F32(-nmax) / safe_top  # each block's inverse scale so far: its levels follow
    sumlx, suml2 = sums(levels(chosen))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = _where(suml2 != 0, sumlx / np.where(suml2 != 0, suml2, F32(1)), F32(0))
    best = scale * sumlx
    for step in range(-9, 10):
        if step == 0:
            continue
        iscale = -(F32(nmax) + F32(0.1) * F32(step)) / safe_top
        sumlx, suml2 = sums(levels(iscale))
        better = (suml2 > 0) & (sumlx * sumlx > best * suml2)
        with np.errstate(divide="ignore", invalid="ignore"):
            new_scale = sumlx / np.where(suml2 > 0, suml2, F32(1))
        chosen = _where(better, iscale, chosen)
        scale = _where(better, new_scale, scale)
        best = _where(better, scale * sumlx, best)
    L = (levels(chosen) + F32(nmax)).astype(np.int32)  # the chosen step's levels, again
    L = np.where(zero, 0, L)
    return _where(zero, F32(0), scale), np.ascontiguousarray(L.T)


def make_q3_quants(x, nmax):
    """make_q3_quants with do_rmse (Q3_K without an importance matrix): (scale, L), L = l + nmax
    (0 for an all-zero block). Searched on (values, blocks) copies."""
    n = x.shape[1]
    amax, top = _first_largest(x)
    zero = amax < GROUP_MAX_EPS
    x = _transposed(x)
    iscale = F32(-nmax) / np.where(zero, F32(1), top)
    # the codes are kept as float32 during the search (small whole numbers: exact), so no
    # conversion is made at each step; the C code converts its int l where it multiplies
    L = np.clip(np.rint(iscale * x), F32(-nmax), F32(nmax - 1))
    w = x * x
    sumlx = seq_sum_rows(w * x * L)
    suml2 = seq_sum_rows(w * L * L)

    def sweep(x, w, L, sumlx, suml2):
        """One pass of the C loop over the values, every block at once; L, sumlx and suml2
        are updated in place where a block accepts a new code."""
        changed = np.zeros(x.shape[1], bool)
        wx = w * x  # C's w*x*l is (w*x)*l: computed once for both uses
        lowest, highest = filled(sumlx.shape, -nmax), filled(sumlx.shape, nmax - 1)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for i in range(n):
                wi, wxi, li = w[i], wx[i], L[i]
                slx = sumlx - wxi * li
                sl2 = suml2 - wi * li * li
                # where slx <= 0 the quotient (inf or NaN) is computed but never used
                nl = np.rint(x[i] * sl2 / slx)
                np.minimum(np.maximum(nl, lowest, out=nl), highest, out=nl)
                ok = (slx > 0) & (nl != li)
                slx += wxi * nl
                sl2 += wi * nl * nl
                ok &= (sl2 > 0) & (slx * slx * suml2 > sumlx * sumlx * sl2)
                # few blocks take a new code at each step: indexing them beats np.where
                taken = np.flatnonzero(ok)
                li[taken], sumlx[taken], suml2[taken] = nl[taken], slx[taken], sl2[taken]
                changed[taken] = True
        return sumlx, suml2, changed

    sumlx, suml2 = _refined(sweep, x, w, L, sumlx, suml2, active=~zero)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = _where(suml2 > 0, sumlx / np.where(suml2 > 0, suml2, F32(1)), F32(0))
    L = np.where(zero, 0, L.astype(np.int32) + nmax)
    return _where(zero, F32(0), scale), np.ascontiguousarray(L.T)
