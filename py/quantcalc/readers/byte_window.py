"""A cursor over a file's bytes, read a megabyte at a time: the GGUF header reader's one handle.

A GGUF header is a long run of small fields (a 150,000-token vocabulary is 300,000 of them).
Reading each field with its own file read cost a system call per field on the command line and a
`File.slice` per field in the page, where the user's file is mounted with WORKERFS: seconds for
a header of a few megabytes. Here `read(offset, size)` is called for a megabyte at a time and
the fields are unpacked from that piece.

What the reader does not keep is skipped, not read: an array of numbers by its byte count, an
array of strings (a tokenizer's tokens and merges) by walking the chain of their length prefixes
with numpy, a megabyte of prefixes at a time, instead of one Python step per string.
"""

import struct
import sys

import numpy as np

from quantcalc.errors import QuantcalcError

CHUNK = 1 << 20       # bytes per read
REFILL = 1 << 16      # a string walk refills below this many bytes left in the piece
REGION = 1 << 18      # bytes per numpy pass of a string walk (its temporaries stay in cache)
U64 = struct.Struct("<Q")
# with one candidate byte per 8-byte word, this multiplier puts its index in the top byte
_BYTE_INDEX = np.uint64(0x0001020304050607)
_TOP_BYTE = np.uint64(56)
_LOW_SEVEN, _HIGH_BIT = np.uint64(0x7F7F7F7F7F7F7F7F), np.uint64(0x8080808080808080)
_ONE = np.uint64(1)
# Pyodide's numpy is built without SIMD: a pass over bytes costs about as much per byte as a
# pass over 8-byte words costs per word, so there prefixes are found word by word (2.7x faster:
# 0.47 ms a 256 KB region, not 1.26); CPython's numpy compares bytes 16 at a time but 64-bit
# words one at a time, so there the byte passes are faster (2x)
BY_WORDS = sys.platform == "emscripten"


class Window:
    """Reads a file of `size` bytes through `read(offset, size) -> bytes` in pieces of `chunk`
    bytes; `at` is the absolute position of the next field."""

    def __init__(self, read, size, name, chunk=None):
        self.read, self.size, self.name, self.chunk = read, size, name, chunk or CHUNK
        self.piece, self.base, self.at = b"", 0, 0
        self._array = None

    def truncated(self):
        return QuantcalcError(f"{self.name} is truncated or not a GGUF file (its header reaches "
                              f"past byte {self.size:,})", "file")

    def local(self, need):
        """The position of `at` in the current piece, once it holds `need` bytes from there."""
        local = self.at - self.base
        if 0 <= local and local + need <= len(self.piece):
            return local
        if need < 0 or self.at + need > self.size:
            raise self.truncated()
        piece = self.read(self.at, min(max(need, self.chunk), self.size - self.at))
        if len(piece) < need:
            raise QuantcalcError(f"{self.name} could not be read at byte {self.at:,}", "file")
        self.piece, self.base, self._array = piece, self.at, None
        return 0

    def take(self, n):
        """The next `n` bytes (bytes or a memoryview)."""
        local = self.local(n)
        self.at += n
        return self.piece[local:local + n]

    def unpack(self, layout: struct.Struct):
        local = self.local(layout.size)
        self.at += layout.size
        return layout.unpack_from(self.piece, local)

    def skip(self, n):
        """Move past `n` bytes without reading them."""
        if n < 0 or self.at + n > self.size:
            raise self.truncated()
        self.at += n

    def skip_strings(self, count):
        """Move past `count` strings (a u64 length, then that many bytes) without decoding
        them: chains of short strings in numpy passes, any other string one step at a time."""
        stepwise, misses, per_string = 0, 0, 12.0
        while count:
            if stepwise:
                self.skip(self.unpack(U64)[0])
                count, stepwise = count - 1, stepwise - 1
                continue
            local = self.local(min(REFILL, self.size - self.at))
            if self._array is None:
                self._array = np.frombuffer(self.piece, np.uint8)
            # about the bytes the strings left take (a short guess costs one more pass)
            span = local + min(int(count * per_string * 1.05) + 64, REGION)
            walked, end = chained_strings(self._array[:span], local, count)
            # long or empty strings: step through some (more after each miss), then try again
            misses = 0 if walked >= 32 else min(misses + 1, 10)
            stepwise = 32 << misses if misses else 0
            if walked:
                if self.base + end > self.size:
                    raise self.truncated()
                per_string = (end - local) / walked
                self.at, count = self.base + end, count - walked


def chained_strings(data: np.ndarray, start: int, count: int):
    """(n, end): the first n (≤ count) strings from `start` in the uint8 array `data` whose
    lengths are 1 to 255 and whose length prefixes lie in `data`, and the index after the n-th
    (which may lie past the end of `data`).

    Such a string's prefix is one non-zero byte and seven zero bytes. Every position that looks
    like one is found at once; the strings are the chain of those positions from `start` in
    which each next one is the previous plus 8 plus its length, so the chain is checked link by
    link (each gap between two positions against the length at the first) and cut at the first
    that fails (a longer or empty string, or the end of `data`)."""
    region = data[start:]
    positions = _prefix_positions(data, start)
    if positions.size == 0 or positions[0] != 0:
        return 0, start
    links = min(count, positions.size)
    positions = positions[:links]
    lengths = region[positions]
    gaps = positions[1:] - positions[:-1]
    gaps -= 8
    broken = gaps != lengths[:-1]
    walked = int(broken.argmax()) + 1 if broken.any() else links
    return walked, start + int(positions[walked - 1]) + 8 + int(lengths[walked - 1])


def _prefix_positions(data, start):
    """The positions from `start` (relative to it) that look like a short string's prefix,
    found byte by byte or, where numpy has no SIMD (Pyodide), word by word from the 8-byte word
    that holds `start`."""
    if not BY_WORDS:
        return _prefix_like(data[start:])
    base = start - start % 8
    found = _prefix_like_words(data[base:])
    found -= start - base
    return found[int(np.searchsorted(found, 0)):]


def _prefix_like(region):
    """Indices i of `region` where region[i] != 0 and region[i+1..i+7] are all zero, in order
    (int64). No two are within 8 bytes of each other, so each 8-byte word of the mask holds at
    most one, and a word's value says which of its bytes it is."""
    n = region.size - 7
    if n <= 0:
        return np.empty(0, np.int64)
    nonzero = region != 0
    near = nonzero[1:] | nonzero[:-1]      # [i] = any non-zero in i..i+1
    near = near[2:] | near[:-2]            # i..i+3
    near = near[3:] | near[:-3]            # i..i+6
    mask = np.empty(-(-n // 8) * 8, bool)
    mask[n:] = False
    np.greater(nonzero[:n], near[1:n + 1], out=mask[:n])
    words = mask.view(np.uint64)
    found = np.flatnonzero(words != 0)
    byte = words[found]
    byte *= _BYTE_INDEX
    byte >>= _TOP_BYTE
    found <<= 3
    found += byte.view(np.int64)
    return found


def _prefix_like_words(region):
    """The indices of _prefix_like found with arithmetic on 8-byte words (SWAR), one word per
    array element instead of one byte (see BY_WORDS). A prefix-like byte is its word's last
    non-zero byte, and the next word's first non-zero byte comes no earlier in its word (the
    seven zero bytes between them). One whose next word is all zeros (its string starts with
    zero bytes), or in the last word, is not found: the chain breaks there and the walk goes on
    step by step."""
    words = region[:region.size // 8 * 8].view(np.uint64)
    if words.size < 2:
        return np.empty(0, np.int64)
    flags = words & _LOW_SEVEN
    flags += _LOW_SEVEN
    flags |= words
    flags &= _HIGH_BIT          # 0x80 in each non-zero byte, 0 in each zero byte
    following = flags[1:]
    first = np.negative(following)
    first &= following          # the next word's first non-zero byte's flag alone (0: none)
    hit = first > (flags[:-1] >> _ONE)   # at or after this word's last non-zero byte's place
    hit &= flags[:-1] != 0
    found = np.flatnonzero(hit)
    # the last non-zero byte's flag is the word's highest bit: its float exponent is 8 i + 7
    top = flags[found].astype(np.float64).view(np.int64)
    top >>= 52
    top -= 1023 + 7
    top >>= 3
    found <<= 3
    found += top
    return found
