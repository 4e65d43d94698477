"""A scan as one plain document: its files and formats, one row per tensor, and per-format
totals; read back from JSON (or the page) and ordered worst first for the reports."""

import math
from types import SimpleNamespace

from quantcalc.reports.tables import from_jsonable
from quantcalc.scan.rows import RESULT_KEYS, STAT_KEYS


def document(checkpoint, formats, rows) -> dict:
    """The scan as plain data: the formats, one row per tensor, and per-format totals."""
    return {"kind": "quantcalc-scan", "version": 1,
            "files": [{"name": f.rsplit("/", 1)[-1], "bytes": size}
                      for f, size in checkpoint.files],
            "formats": [{"label": f.label, "settings": dict(f.settings)} for f in formats],
            "tensors": rows, "totals": totals(formats, rows), "notes": list(checkpoint.notes)}


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
    """Per format: parameters it measured, their size and average bits per value, total error
    (sum of MSE x parameters) and each role's share of it, and the tensors it could not take."""
    out = []
    for index, fmt in enumerate(formats):
        params = bits = error = scaled_error = 0.0
        by_role, scaled, refused = {}, {}, 0
        for row in rows:
            if index >= len(row["results"]):
                continue
            result = row["results"][index]
            if result["error"]:
                refused += 1
                continue
            n = row["parameters"]
            params += n
            bits += n * result["bits_per_value"]
            part = result["mse"] * n
            error += part
            by_role[row["role"]] = by_role.get(row["role"], 0.0) + part
            part = result["mse"] * UNIT * n
            scaled_error += part
            scaled[row["role"]] = scaled.get(row["role"], 0.0) + part
        out.append({"format": fmt.label, "parameters": int(params),
                    "bytes": bits / 8.0, "bits_per_value": bits / params if params else None,
                    "total_error": error, "refused": refused,
                    "error_share_by_role": _shares(by_role, error) if math.isfinite(error)
                    else _shares(scaled, scaled_error)})
    return out


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
