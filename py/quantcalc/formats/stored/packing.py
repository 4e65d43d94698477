"""Integer codes packed into int32 words, as compressed-tensors and GPTQ store them, and AWQ's
interleaved order.

compressed-tensors' `pack_to_int32` (compressors/pack_quantized/helpers.py) and AutoGPTQ's
`QuantLinear.pack` (nn_modules/qlinear/qlinear_cuda.py) both write one little-endian bit stream
per line of words: value i occupies stream bits [i*bits, (i+1)*bits), word k holding stream bits
32k..32k+31 least significant first, so a 3-bit value may straddle two words. compressed-tensors
runs the stream along each row (`weight_packed`) or down each column (`weight_zero_point`);
GPTQ down the input dimension (`qweight`) and along the output dimension (`qzeros`).
"""

import numpy as np

from quantcalc.formats.stored import checks

# AutoAWQ's WQLinear_GEMM.from_linear puts output column order[i] of each group of eight in
# nibble i of a word (awq/modules/linear/gemm.py); reading nibble REVERSE[j] gives column j.
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
AWQ_REVERSE = tuple(int(i) for i in np.argsort(AWQ_ORDER))


def words_for(count: int, bits: int) -> int:
    """int32 words of `count` values of `bits` bits, densely packed."""
    return -(-count * bits // 32)


def unpack(words, bits: int, count: int, axis: int):
    """The first `count` unsigned `bits`-bit values (uint8) of the bit stream that runs along
    `axis` of int32 `words`; the caller has checked that the words hold them."""
    words = np.moveaxis(np.asarray(words).astype(np.int32, copy=False).view(np.uint32), axis, -1)
    mask = np.uint32((1 << bits) - 1)
    if 32 % bits == 0:  # whole values per word: one shift per position
        shifts = np.arange(0, 32, bits, dtype=np.uint32)
        values = (words[..., None] >> shifts) & mask
        values = values.reshape(*words.shape[:-1], -1)[..., :count]
    else:  # a value may straddle two words: read each through a 64-bit window
        wide = np.concatenate([words, np.zeros((*words.shape[:-1], 1), np.uint32)], axis=-1)
        wide = wide.astype(np.uint64)
        start = np.arange(count, dtype=np.int64) * bits
        low, offset = start // 32, (start % 32).astype(np.uint64)
        window = wide[..., low] | (wide[..., low + 1] << np.uint64(32))
        values = (window >> offset) & np.uint64(mask)
    return np.moveaxis(values.astype(np.uint8), -1, axis)


def check_words(words, name: str, bits: int, count: int, axis: int, what: str):
    """Refuse int32 `words` that do not hold exactly `count` values of `bits` bits along
    `axis` (the last word may be partly padding, never a whole spare word)."""
    checks.dtype(words, name, np.int32, f"packed {bits}-bit values")
    expected = words_for(count, bits)
    if words.shape[axis] != expected:
        checks.refuse(f"{name} has {words.shape[axis]} words along axis {axis % words.ndim} "
                      f"(shape {checks.shape_text(words.shape)}); {count:,} {bits}-bit values of "
                      f"{what} take {expected:,}")


def awq_columns(values):
    """AWQ's unpacked nibbles (..., 8k) in output-column order: undo the interleaving."""
    groups = values.reshape(*values.shape[:-1], -1, 8)
    return groups[..., list(AWQ_REVERSE)].reshape(values.shape)
