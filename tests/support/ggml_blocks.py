"""Stored GGUF blocks for tests: random bytes (every byte pattern is a block of these types) with
the fp16 scale d set, so the values are finite, or damaged on purpose."""

import numpy as np

from quantcalc.formats.ggml import decode

NUMBERS = {name: number for number, (name, _, _) in decode.TYPES.items()}
# where each type keeps its fp16 d (IQ1_M spreads it over its scale words' top nibbles; MXFP4
# and NVFP4 have 8-bit scales only, every one of them finite)
FP16_D = {"IQ1_S": 0, "IQ2_XXS": 0, "IQ2_XS": 0, "IQ2_S": 0, "IQ3_XXS": 0, "IQ3_S": 0,
          "TQ1_0": 52, "TQ2_0": 64}


def block_size(name) -> int:
    """Bytes per block of the type `name`."""
    return decode.TYPES[NUMBERS[name]][2]


def set_d(name, blocks, d16):
    """Write the fp16 bit patterns `d16` (uint16, one per block) as each block's d, in place;
    the blocks."""
    d16 = np.asarray(d16, np.uint16)
    if name == "IQ1_M":
        words = blocks[:, 48:56].copy().view("<u2")
        nibbles = (d16[:, None] >> np.array([0, 4, 8, 12], np.uint16)) & np.uint16(0xF)
        blocks[:, 48:56] = ((words & np.uint16(0x0FFF)) | (nibbles << 12)).view(np.uint8)
    elif name in FP16_D:
        at = FP16_D[name]
        blocks[:, at:at + 2] = d16.astype("<u2").reshape(-1, 1).view(np.uint8)
    return blocks


def finite_blocks(name, count, seed):
    """Random bytes whose fp16 d is any finite value (normal, subnormal, either sign), the first
    two blocks' +0.0 and -0.0: every kind of product, signed zeros included."""
    rng = np.random.default_rng([seed, NUMBERS[name]])
    blocks = rng.integers(0, 256, (count, block_size(name)), dtype=np.uint8)
    d16 = rng.integers(0, 1 << 16, count, dtype=np.uint16)
    d16 = np.where((d16 & 0x7C00) == 0x7C00, d16 & np.uint16(0xBFFF), d16).astype(np.uint16)
    d16[:2] = (0x0000, 0x8000)
    return set_d(name, blocks, d16)


def weight_blocks(name, count, seed, scale=0.01):
    """Random bytes with d drawn from [scale/2, scale): values of a weight's size, as a file
    would hold them."""
    rng = np.random.default_rng([seed, NUMBERS[name]])
    blocks = rng.integers(0, 256, (count, block_size(name)), dtype=np.uint8)
    d = rng.uniform(scale / 2, scale, count).astype(np.float16)
    return set_d(name, blocks, d.view(np.uint16))
