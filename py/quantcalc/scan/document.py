"""A scan as one plain document: its files and formats, one row per tensor, and per-format
totals; read back from JSON (or the page) and ordered worst first for the reports."""

import math
from types import SimpleNamespace

from quantcalc.engine.estimate import DB_PER_LOG, Z95
from quantcalc.reports.tables import from_jsonable
from quantcalc.scan.rows import RESULT_KEYS, STAT_KEYS


def document(checkpoint, formats, rows) -> dict:
    """The scan as plain data: the formats, one row per tensor, and per-format totals."""
    return {"kind": "quantcalc-scan", "version": 1,
            "files": [{"name": f.rsplit("/", 1)[-1], "bytes": size}
                      for f, size in checkpoint.files],
            "formats": [{"label": f.label, "settings": dict(f.settings)} for f in formats],
            "tensors": rows, "totals": totals(formats, rows),
            "notes": list(checkpoint.notes) + already_quantized(rows)}


def already_quantized(rows) -> list:
    """[a note] when tensors already quantized in the file were not measured: every format's
    totals then count them at their stored size with no error, so a scan of a Q4_1 GGUF shows
    each format at about the same size and bits, which says nothing unless it is said."""
    kept = [r for r in rows if r.get("original") is False and not r.get("results")]
    if not kept:
        return []
    count = sum(r.get("parameters") or 0 for r in kept)
    total = sum(r.get("parameters") or 0 for r in rows)
    kinds = ", ".join(sorted({str(r.get("stored_format") or r.get("dtype")) for r in kept}))
    return [f"{count:,} of {total:,} parameters are already quantized ({kinds}) and were not "
            f"measured: every format's totals count them at their stored size, so the formats "
            f"are compared on the other {total - count:,} only. To measure re-quantizing them, "
            f"scan with --allow-requantize (in the page: tick 'Allow re-quantizing' under the "
            f"planner)."]


def rows_from_plain(rows) -> list:
    """Scan rows back from JSON text (where json_text spelled infinities "inf" and "-inf") or
    from the page (numbers already): their numbers are floats again."""
    return from_jsonable(list(rows), STAT_KEYS + RESULT_KEYS)


def from_plain(doc) -> dict:
    """A scan document back from JSON (or the page), its totals computed if it has none."""
    doc = dict(doc)
    doc["tensors"] = rows_from_plain(doc["tensors"])
    if doc.get("totals") is None:  # a scan cancelled in the page: its rows, totalled here
        labels = [SimpleNamespace(label=f["label"]) for f in doc["formats"]]
        doc["totals"] = totals(labels, doc["tensors"])
    return doc


def totals(formats, rows) -> list:
    """Per format, over the same tensors for every format (all of them): their size, average
    bits per value, total error (sum of MSE x parameters) and each role's share of it.

    A tensor counts at what it would be under the format: its result, or the result of the
    type llama-quantize falls back to for its rows ("measured_as"); a tensor the format cannot
    take (refused, not floats, already quantized, unreadable) counts at its stored size with
    no error. The parameters say how much each way: parameters_covered (measured, fallbacks
    included) and parameters_fallback of parameters_total, and parameters_kept (the rest)."""
    out = []
    for index, fmt in enumerate(formats):
        count = {"covered": 0, "fallback": 0, "kept": 0}
        bits, error, scaled_error, spread, sampled = [], [], [], [], []
        by_role, scaled, refused, fallbacks = {}, {}, 0, 0
        for row in rows:
            n = row["parameters"]
            result = row["results"][index] if index < len(row["results"]) else None
            if result is None or result["error"]:
                refused += result is not None
                count["kept"] += n
                bits.append(kept_bits(row))
                continue
            count["covered"] += n
            if result.get("measured_as"):
                count["fallback"] += n
                fallbacks += 1
            bits.append(n * result["bits_per_value"])
            part = result["mse"] * n
            error.append(part)
            spread.append(_standard_error(result, part) ** 2)
            sampled.append(n * (result.get("sampled_fraction") or 1.0))
            by_role[row["role"]] = by_role.get(row["role"], 0.0) + part
            part = result["mse"] * UNIT * n
            scaled_error.append(part)
            scaled[row["role"]] = scaled.get(row["role"], 0.0) + part
        total_bits, total_error = _sum(bits), _sum(error)
        params = count["covered"] + count["kept"]
        out.append({"format": fmt.label, "parameters_total": params,
                    "parameters_covered": count["covered"],
                    "parameters_fallback": count["fallback"],
                    "parameters_kept": count["kept"],
                    "bytes": total_bits / 8.0,
                    "bits_per_value": total_bits / params if params else None,
                    "total_error": total_error,
                    # the 95 % half-width of total_error where results are estimates (else 0)
                    "total_error_ci": Z95 * math.sqrt(_sum(spread)),
                    "sampled_fraction": _sum(sampled) / count["covered"]
                    if count["covered"] else None,
                    "refused": refused, "fallbacks": fallbacks,
                    "error_share_by_role": _shares(by_role, total_error)
                    if math.isfinite(total_error) else _shares(scaled, _sum(scaled_error))})
    return out


def _standard_error(result, error) -> float:
    """The standard error of a result's total error (MSE x parameters) from its SQNR interval's
    half-width (engine/estimate.sqnr_half_width_db: half-width = Z95 x 10/ln 10 x se / error)."""
    half_width = result.get("sqnr_ci_db") or 0.0
    if not half_width or not math.isfinite(half_width) or not math.isfinite(error):
        return 0.0
    return half_width * error / (Z95 * DB_PER_LOG)


def kept_bits(row) -> float:
    """Bits of a tensor counted as it is stored: its bytes in the file (an already-quantized
    or integer tensor), else its stored bits per value, else 0 (a type of unknown size)."""
    size = row.get("bytes")
    if isinstance(size, (int, float)) and math.isfinite(size) and size > 0:
        return 8.0 * size
    stored = row.get("stored_bits")
    if isinstance(stored, (int, float)) and math.isfinite(stored):
        return stored * row["parameters"]
    return 0.0


def _sum(parts) -> float:
    """math.fsum (correctly rounded, so the page's Python gives the command line's last digit),
    inf where the parts overflow float64."""
    try:
        return math.fsum(parts)
    except OverflowError:
        return math.inf


UNIT = 2.0 ** -600  # the parts once more, in a unit where no MSE x parameters overflows


def _shares(parts, total) -> dict:
    """Each role's share of the total error. Where the total overflowed float64 (an MSE near
    1e300 over many parameters: total_error inf), the same parts in units of 2^600 give the
    shares (exact scaling; the parts it makes negligible were negligible beside the rest)."""
    return {role: part / total if total else 0.0 for role, part in sorted(parts.items())}


def worst_first(rows, format_index=0):
    """Rows by the SQNR of one format, lowest first (rows it could not measure last)."""
    def key(row):
        results = row["results"]
        if format_index < len(results) and results[format_index]["sqnr_db"] is not None:
            value = results[format_index]["sqnr_db"]
            return (0, value if math.isfinite(value) else math.inf)
        return (1, 0.0)
    return sorted(rows, key=key)
