"""A llama.cpp type on a tensor whose rows its blocks do not divide: measured in the type
llama-quantize writes there instead (formats/ggml/fallback.py decides which), so every total
counts every tensor at the size and error llama-quantize would give it.

A scan runs each distinct format once per tensor: Q4_K falling back to Q5_0 beside a scanned
Q5_0 measures Q5_0 once, and both results carry its numbers (Q4_K's says "fallback Q5_0 (row
length 384 not a multiple of 256)" and names Q5_0 in "measured_as"). Where even the fallback's
blocks do not divide the rows llama-quantize writes F16, whose rounding is measured here; where
the type has no fallback (a legacy type on rows not a multiple of 32) llama-quantize stops, and
the result is refused with that reason.
"""

from functools import lru_cache

import numpy as np

from quantcalc.engine.metrics import ErrorAccumulator
from quantcalc.errors import QuantcalcError
from quantcalc.formats.ggml import fallback as ggml_fallback
from quantcalc.records import record
from quantcalc.scan.rows import empty_result
from quantcalc.scan.scan_formats import formats_from_specs

F16 = "F16"
F16_OVERFLOW = 65520.0  # float32 -> float16 rounds values from here on to infinity
CHUNK_VALUES = 1 << 20


@record(frozen=True)
class Planned:
    """One scanned format on one tensor: what is run for it (`run`: a ScanFormat, F16, or None
    where llama-quantize stops), and the fallback that chose it (None: the format itself)."""

    format: object
    run: object
    fallback: object = None


@lru_cache(maxsize=16)
def _scan_format(name):
    return formats_from_specs([name.lower()])[0]


def row_length(shape) -> int:
    return int(shape[-1]) if len(shape) else 1


def planned(formats, shape) -> list:
    """A Planned per format, in order, for a tensor of `shape`."""
    out = []
    for fmt in formats:
        row = fmt.config.format_row
        found = ggml_fallback.for_row_length(row.name, row_length(shape)) \
            if row.family == "ggml" else None
        if found is None:
            out.append(Planned(fmt, fmt))
        elif found.used is None:
            out.append(Planned(fmt, None, found))
        else:
            out.append(Planned(fmt, F16 if found.used == F16 else _scan_format(found.used),
                               found))
    return out


def runs(plans) -> list:
    """The distinct ScanFormats to measure (by label, in order): not F16, not a stop."""
    seen = {}
    for plan in plans:
        if plan.run is not None and plan.run is not F16:
            seen.setdefault(plan.run.label, plan.run)
    return list(seen.values())


def assemble(plans, measured, f16=None) -> list:
    """The tensor's results, one per scanned format in order, from `measured` ({label: result}
    of the runs) and `f16()` (the F16 result, measured once if asked for)."""
    out, f16_result = [], None
    for plan in plans:
        label = plan.format.label
        if plan.run is None:
            result = empty_result(label)
            result["error"] = plan.fallback.note
        else:
            if plan.run is F16:
                f16_result = f16_result or f16()
                source = f16_result
            else:
                source = measured[plan.run.label]
            result = dict(source, format=label, notes=list(source["notes"]))
            if plan.fallback is not None and result["error"] is None:
                result["measured_as"] = plan.fallback.used
                result["notes"].insert(0, plan.fallback.note)
            elif plan.fallback is not None:
                result["error"] = f"{plan.fallback.note}; {result['error']}"
        out.append(result)
    return out


def needs_f16(plans) -> bool:
    return any(plan.run is F16 for plan in plans)


def f16_result(slabs) -> dict:
    """The result of storing the values as F16 (llama-quantize's last fallback): `slabs` yields
    (first row, values) as SlabReader.slabs does. Values beyond F16's range would become
    infinite there, and are refused. F16 searches nothing, so no importance-weighted error (as
    Q8_0, whose quantize ignores the matrix)."""
    result = empty_result(F16)
    errors = ErrorAccumulator(None)
    try:
        for _, slab in slabs:
            flat = np.asarray(slab, np.float64).reshape(-1)
            for begin in range(0, flat.size, CHUNK_VALUES):
                part = flat[begin:begin + CHUNK_VALUES]
                largest = float(np.abs(part).max()) if part.size else 0.0
                if largest >= F16_OVERFLOW:
                    raise QuantcalcError(f"F16 (llama-quantize's fallback here) cannot hold "
                                         f"{largest:.6g}: it would be infinite", "tensor")
                error = part.astype(np.float16).astype(np.float64) - part
                errors.add(part.copy(), error, None, largest)
    except QuantcalcError as exc:
        result["error"] = exc.message
        return result
    if not errors.count:
        result["error"] = "no values to measure"
        return result
    metrics = errors.finish()
    metrics["bits_per_value"] = 16.0
    result.update({key: metrics[key] for key in result if key in metrics})
    return result
