"""Was a GGUF tensor made from these original values by llama.cpp's own quantization?

For a tensor stored in one of llama.cpp's types that quantcalc makes (Q4_0 ... Q6_K, IQ4_NL,
IQ4_XS), the original's rows are quantized the way llama-quantize quantizes them
(formats/ggml/types.py, bit-exact with ggml) and their block bytes (formats/ggml/encode.py)
compared with the stored ones, slab by slab. Several ways of making the file are tried, each
dropped at its first differing block:

    "plain"               the original's values, no importance matrix
    "plain via F16/BF16"  the values rounded to F16 (or BF16) first, as a GGUF converted with
                          --outtype f16 and quantized from it holds them
    "imatrix", ...        with the importance matrix given to the audit (--imatrix)

`reproduced` is true when one of them gives every block (`reproduced_as` names it), false when
none does (an importance matrix the audit was not given, another rounding, another tool).
F32/F16/BF16 tensors are reproduced when they are the original's values in that type. The plain
quantization's own error is measured beside it (`plain_sqnr_db`), so the stored SQNR above it is
what an importance matrix (or another quantizer) gained.
"""

import numpy as np

from quantcalc.engine.metrics import ErrorAccumulator
from quantcalc.formats.ggml import decode as ggml_decode, encode, types as ggml_types
from quantcalc.formats.stored import remake

PLAIN_TYPES = ("F32", "F16", "BF16")
CHUNK_VALUES = 1 << 18


def applies(entry) -> bool:
    """Whether a quantized side's tensor can be reproduced: a GGUF tensor of a type quantcalc
    makes, or a plain float one."""
    if getattr(entry, "ggml_type", None) is None:
        return False
    return entry.dtype.lower() in encode.TYPES or entry.dtype in PLAIN_TYPES


ROUNDINGS = {"via F16": remake.rounder("F16"), "via BF16": remake.bf16}


def _bf16_bytes(values):
    return (remake.bf16(values).view(np.uint32) >> 16).astype("<u2").view(np.uint8)


class Reproduction:
    """Fed the original's rows (in the GGUF's order) and the stored bytes slab by slab."""

    def __init__(self, entry, importance=None):
        self.type = entry.dtype
        self.makes = self.type.lower() if self.type.lower() in encode.TYPES else None
        # (values, bytes) per block: a block of a type is quantized on its own without an
        # importance matrix (super-blocks for the K types and IQ4_XS)
        self.block = ggml_decode.TYPES[entry.ggml_type][1:] if self.makes else None
        self.importance = None if importance is None else np.asarray(importance, np.float32)
        self.alive = None   # candidate name -> still equal on every block so far
        self.plain = ErrorAccumulator(signal_bound=None) if self.makes else None

    def add(self, original, stored_bytes):
        rows = np.ascontiguousarray(original, np.float32)
        rows = rows.reshape(-1, rows.shape[-1]) if rows.ndim > 1 else rows.reshape(1, -1)
        if self.makes is None:
            self._plain_type(rows, stored_bytes)
            return
        # whole rows of about CHUNK_VALUES at a time: the quantizer's temporaries stay small
        row_bytes = stored_bytes.size // rows.shape[0]
        step = max(1, CHUNK_VALUES // rows.shape[1])
        for first in range(0, rows.shape[0], step):
            self._chunk(rows[first:first + step],
                        stored_bytes[first * row_bytes:(first + step) * row_bytes])

    def _chunk(self, rows, stored):
        names = ["plain", *(f"plain {r}" for r in ROUNDINGS)]
        if self.importance is not None:
            names += ["imatrix", *(f"imatrix {r}" for r in ROUNDINGS)]
        if self.alive is None:
            self.alive = {name: True for name in names}
        quantized = ggml_types.quantize(self.makes, rows)
        self.plain.add(rows.astype(np.float64), quantized.recon.astype(np.float64) - rows)
        per_block = self._blocks_equal(encode.block_bytes(self.makes, quantized), stored)
        equal = {"plain": bool(per_block.all())}
        rounded = {label: r(rows) for label, r in ROUNDINGS.items()
                   if self.alive[f"plain {label}"] or self.alive.get(f"imatrix {label}")}
        for label, values in rounded.items():
            if self.alive[f"plain {label}"]:
                equal[f"plain {label}"] = self._rounded_equal(values, rows, per_block, stored)
        if self.importance is not None:
            for name in names[len(ROUNDINGS) + 1:]:
                if self.alive[name]:
                    equal[name] = self._weighted_equal(name, rounded, rows, stored, equal)
        for name, same in equal.items():
            self.alive[name] = self.alive[name] and same

    def _blocks_equal(self, made, stored):
        """Per block of the type: whether `made` and `stored` hold the same bytes."""
        size = self.block[1]
        return (made.reshape(-1, size) == stored.reshape(-1, size)).all(axis=1)

    def _rounded_equal(self, values, rows, per_block, stored):
        """Whether the plain quantization of `values` (the rows rounded) gives `stored`: blocks
        the rounding left alone are the plain quantization's own (without an importance matrix
        every block is quantized on its own), so only the others are quantized again."""
        count, size = self.block
        changed = (values.reshape(-1, count) != rows.reshape(-1, count)).any(axis=1)
        if not per_block[~changed].all():
            return False
        if not changed.any():
            return True
        again = ggml_types.quantize(self.makes, values.reshape(-1, count)[changed])
        return bool(np.array_equal(encode.block_bytes(self.makes, again),
                                   stored.reshape(-1, size)[changed].reshape(-1)))

    def _weighted_equal(self, name, rounded, rows, stored, equal):
        """Whether the importance-weighted quantization (of the rows, or of them rounded)
        gives `stored` (a weighted search spans whole rows: quantized whole)."""
        label = name.partition(" ")[2]
        values = rounded[label] if label else rows
        if label and "imatrix" in equal and np.array_equal(values, rows):
            return equal["imatrix"]
        quantized = ggml_types.quantize(self.makes, values, self.importance)
        return bool(np.array_equal(encode.block_bytes(self.makes, quantized), stored))

    def _plain_type(self, rows, stored_bytes):
        """F32/F16/BF16: the stored bytes against the original's values in that type."""
        made = {"F32": lambda v: v.astype("<f4").view(np.uint8),
                "F16": lambda v: v.astype("<f2").view(np.uint8),
                "BF16": _bf16_bytes}[self.type](rows).reshape(-1)
        same = bool(np.array_equal(made, stored_bytes))
        self.alive = {"plain": same if self.alive is None else self.alive["plain"] and same}

    def finish(self) -> dict:
        """{"reproduced", "reproduced_as", "plain_sqnr_db", "plain_mse"}."""
        out = {"reproduced": None, "reproduced_as": None, "plain_sqnr_db": None,
               "plain_mse": None}
        if self.alive is None:
            return out
        matched = [name for name, ok in self.alive.items() if ok]
        out["reproduced"] = bool(matched)
        out["reproduced_as"] = matched[0] if matched else None
        if self.plain is not None and self.plain.count:
            metrics = self.plain.finish()
            out["plain_sqnr_db"], out["plain_mse"] = metrics["sqnr_db"], metrics["mse"]
        return out
