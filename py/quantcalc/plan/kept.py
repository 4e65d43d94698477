"""The tensors a plan leaves as they are, and why: what a scan row without a measurement is
(already quantized, integers), what llama-quantize never quantizes, and a scan with nothing to
plan at all (a GGUF that is already quantized), said in one line.

A row's stored type and size come from the scan (its "dtype" and "stored_bits"); a row from an
older or hand-made scan without them falls back on its bytes and parameters, then on F16.
"""

import math

from quantcalc.errors import QuantcalcError
from quantcalc.formats.ggml import decode as ggml_decode
from quantcalc.plan import llama_quantize

FLOATS = ("F64", "F32", "F16", "BF16")
QUANTIZED = frozenset(name for name, block, _ in ggml_decode.TYPES.values() if block > 1)


def stored_type(row):
    """The row's stored type (F32, Q4_1, I64, ...) as the scan wrote it, or None."""
    dtype = row.get("dtype")
    return dtype if isinstance(dtype, str) and dtype else None


def stored_bits(row) -> float:
    """Bits per value as the tensor is stored: the scan's stored_bits, else its bytes over its
    parameters, else 16."""
    for value in (row.get("stored_bits"),
                  8.0 * row["bytes"] / row["parameters"] if _number(row.get("bytes"))
                  and row["parameters"] else None):
        if _number(value) and 0 < value <= 256:
            return float(value)
    return 16.0


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def without_candidates(row):
    """(kept type, reason, bits per value) of a row no format measured."""
    kind = stored_type(row)
    stored = row.get("stored_format")
    if isinstance(stored, str) and stored and kind not in QUANTIZED:  # FP8 + scales, int4
        return kind, f"stored as {stored}: kept as stored", stored_bits(row)
    if kind in QUANTIZED:
        return kind, (f"already quantized as {kind}: kept as stored (scan with "
                      f"--allow-requantize, or tick 'Allow re-quantizing' in the page, to "
                      f"plan re-quantizing it)"), stored_bits(row)
    if kind is not None and kind not in FLOATS:
        return kind, f"{kind} values, not floats: kept as stored", stored_bits(row)
    return "F16", "no candidate format takes it", 16.0


def not_in_gguf(row, architecture):
    """(kept type, reason) of a tensor the GGUF convert_hf_to_gguf.py writes does not hold: it
    takes no space in that GGUF and is not counted in its bits per weight."""
    kind = stored_type(row) or "F16"
    return kind, (f"not in the GGUF convert_hf_to_gguf.py writes for {architecture} (it drops "
                  f"it): no space in it, not counted in its bits per weight")


def never_quantized(gguf_name, shape):
    """The reason llama-quantize leaves a tensor of this GGUF name and shape as it is, or
    None."""
    dims = llama_quantize.ggml_dims(shape)
    if gguf_name is None or len(shape) < 2 or llama_quantize.quantizes(gguf_name, dims):
        return None
    return f"llama-quantize never quantizes {gguf_name}: kept in F16 as convert writes it"


def source_files(doc) -> list:
    """The names of the scan's files (its "files"), those that are text."""
    files = doc.get("files")
    return [f.get("name") for f in files if isinstance(f, dict) and isinstance(f.get("name"), str)
            ] if isinstance(files, list) else []


def nothing_to_plan(doc, tensors, where="the scan"):
    """Raise the one-line reason when no tensor has a candidate because the file is already
    quantized (a GGUF from llama-quantize): re-quantizing is only planned when asked for."""
    if any(not t.kept for t in tensors):
        return
    counts = {}
    for row in doc["tensors"]:
        kind = stored_type(row)
        if kind in QUANTIZED:
            counts[kind] = counts.get(kind, 0) + 1
    if counts:
        files = source_files(doc)
        raise QuantcalcError(refusal(counts, files[0] if len(files) == 1 else None, where),
                             "scan")


def refusal(counts, what=None, where=None) -> str:
    """Why a checkpoint whose tensors are quantized ({type: tensors}) has nothing to plan."""
    types = ", ".join(f"{n} tensor{'s' * (n != 1)} in {kind}" for kind, n in
                      sorted(counts.items(), key=lambda item: -item[1]))
    return (f"{where + ': ' if where else ''}nothing to plan: {what or 'the checkpoint'} is "
            f"already quantized "
            f"({types}); the original weights are not in it. To plan re-quantizing its "
            f"dequantized values (their error measured against those values, not the "
            f"original), scan it with --allow-requantize (in the page: tick 'Allow "
            f"re-quantizing' under the planner), as llama-quantize needs --allow-requantize")
