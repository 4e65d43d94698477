"""An audit as one plain document: both checkpoints, one row per tensor (measure.py's keys) and
the totals, read back from JSON (or the page), and seen as a one-format scan so that the scan's
totals and figures (scan/document.py, scan/figures.py) serve it unchanged.

Totals count the quantized checkpoint's tensors: its size and bits per weight, the error of the
tensors measured (sum of MSE x parameters) and each role's share of it, the SQNR of the whole
model (sum of x^2 over sum of e^2 over the measured tensors), how many tensors llama.cpp's
quantization reproduces, one line per stored format, and the worst tensors.
"""

import math

from quantcalc.audit.measure import METRIC_KEYS, ROW_KEYS
from quantcalc.engine.metrics import portable_log10
from quantcalc.reports.tables import from_jsonable
from quantcalc.scan import document as scan_document

KIND = "quantcalc-audit"
STORED = "as stored"
WORST = 20
# the float keys (from_jsonable makes their values floats again; "bytes" is a count)
NUMBER_KEYS = ("sqnr_db", "rel_rmse", "max_abs_error", "mse", "original_rms", "weighted_mse",
               "weighted_sqnr_db", "plain_sqnr_db", "plain_mse", "bits_per_value",
               "total_error", "plain_total_error")


def document(original, quantized, rows, facts, imatrix=None, notes=()) -> dict:
    """The audit as plain data. `original` / `quantized`: pairing.Side; `facts`: the
    architecture and where it was read; `rows` in the quantized file's order."""
    def files(side):
        return [{"name": f.rsplit("/", 1)[-1], "bytes": size} for f, size in side.checkpoint.files]
    return {"kind": KIND, "version": 1, "original": {"files": files(original)},
            "quantized": {"files": files(quantized)}, "model": dict(facts),
            "imatrix": imatrix, "tensors": rows, "totals": totals(rows),
            "notes": list(original.checkpoint.notes) + list(quantized.checkpoint.notes)
            + swapped(original, quantized) + list(notes)}


def _quantized_tensors(side) -> int:
    """How many tensors of a side are stored quantized (a GGUF block type, FP8 with scales,
    packed integers)."""
    return sum(1 for e in side.checkpoint.tensors
               if getattr(e, "quantized", False) or getattr(e, "stored", None) is not None) \
        + len(getattr(side, "layers", None) or {})


def swapped(original, quantized) -> list:
    """[a note] when the original holds quantized tensors and the quantized side none: the two
    were most likely given the other way round (each SQNR is then the same, but "reproduced"
    and the stored formats describe the wrong file)."""
    held = _quantized_tensors(original)
    if not held or _quantized_tensors(quantized):
        return []
    return [f"the original holds {held} quantized tensor{'s' * (held != 1)} and the quantized "
            f"side none: were the two given the other way round? (the original first, then the "
            f"quantized model)"]


def from_plain(doc) -> dict:
    """An audit document back from JSON text (infinities spelled "inf") or from the page."""
    doc = dict(doc)
    doc["tensors"] = from_jsonable(list(doc["tensors"]), NUMBER_KEYS)
    if doc.get("totals") is None:  # rows done in parts, or a cancelled audit: totalled here
        doc["totals"] = totals(doc["tensors"])
    else:
        doc["totals"] = from_jsonable(doc["totals"], NUMBER_KEYS)
    return doc


def measured(row) -> bool:
    return row.get("sqnr_db") is not None and not row.get("reason")


def in_quantized(row) -> bool:
    return row.get("side") in ("both", "quantized")


def totals(rows) -> dict:
    """The quantized checkpoint's totals (see the module's docstring)."""
    stored = scan_view({"tensors": rows})["totals"][0]
    done = [r for r in rows if measured(r)]
    reproduced = [r.get("reproduced") for r in done]
    return {"tensors": sum(1 for r in rows if in_quantized(r)),
            "tensors_measured": len(done),
            "tensors_not_paired": sum(1 for r in rows if r.get("reason")),
            "parameters": stored["parameters_total"],
            "parameters_measured": stored["parameters_covered"],
            "bytes": stored["bytes"], "bits_per_value": stored["bits_per_value"],
            "total_error": stored["total_error"], "sqnr_db": _sqnr(done),
            "weighted_sqnr_db": _weighted_sqnr(done),
            "plain_total_error": _plain_error(done),
            "error_share_by_role": stored["error_share_by_role"],
            "reproduced": {"true": reproduced.count(True), "false": reproduced.count(False),
                           "null": reproduced.count(None)},
            "by_format": _by_format(rows),
            "worst": [r["name"] for r in worst_first(done)[:WORST]]}


class _Label:
    def __init__(self, label):
        self.label = label


def _sqnr(rows):
    """10 log10(sum x^2 / sum e^2) over `rows`, from each one's RMS and MSE."""
    signal = math.fsum(r["original_rms"] ** 2 * r["parameters"] for r in rows
                       if r.get("original_rms") is not None and math.isfinite(r["original_rms"]))
    error = math.fsum(r["mse"] * r["parameters"] for r in rows
                      if r.get("mse") is not None and math.isfinite(r["mse"]))
    if not rows or not math.isfinite(signal) or not math.isfinite(error):
        return None
    if error == 0:
        return math.inf
    return 10.0 * portable_log10(signal / error) if signal > 0 else -math.inf


def _weighted_sqnr(rows):
    """The parameters-weighted mean of the rows' weighted SQNR in dB (None without an imatrix)."""
    parts = [(r["weighted_sqnr_db"], r["parameters"]) for r in rows
             if r.get("weighted_sqnr_db") is not None and math.isfinite(r["weighted_sqnr_db"])]
    total = sum(n for _, n in parts)
    return math.fsum(v * n for v, n in parts) / total if total else None


def _plain_error(rows):
    """Sum of MSE x parameters of the plain llama.cpp quantization, over the rows that have it
    (None when none does)."""
    parts = [r["plain_mse"] * r["parameters"] for r in rows if r.get("plain_mse") is not None]
    return math.fsum(parts) if parts else None


def _by_format(rows) -> list:
    """Per stored format: tensors, parameters, bytes, bits per value and SQNR of those measured."""
    groups = {}
    for row in rows:
        if in_quantized(row) and row.get("stored_format"):
            groups.setdefault(row["stored_format"], []).append(row)
    out = []
    for label, members in groups.items():
        params = sum(r["parameters"] for r in members)
        size = sum(r["bytes"] or 0 for r in members)
        out.append({"stored_format": label, "tensors": len(members), "parameters": params,
                    "bytes": size, "bits_per_value": 8.0 * size / params if params else None,
                    "sqnr_db": _sqnr([r for r in members if measured(r)])})
    return sorted(out, key=lambda f: -f["parameters"])


def worst_first(rows):
    """Measured rows by SQNR, lowest first."""
    return sorted((r for r in rows if measured(r)),
                  key=lambda r: r["sqnr_db"] if math.isfinite(r["sqnr_db"]) else math.inf)


def scan_view(doc) -> dict:
    """The audit as a scan of one format, "as stored": the quantized checkpoint's tensors with
    their measured error (scan/document.totals and scan/figures read it)."""
    rows = []
    for row in doc["tensors"]:
        if not in_quantized(row):
            continue
        ok = measured(row)
        result = {"format": STORED, "bits_per_value": row.get("bits_per_value"),
                  "sqnr_db": row.get("sqnr_db") if ok else None,
                  "mse": row.get("mse"), "measured_as": None, "sampled_fraction": 1.0,
                  "sqnr_ci_db": 0.0, "error": None if ok else (row.get("reason") or "not measured"),
                  "notes": []}
        rows.append({"name": row["name"], "layer": row.get("layer"), "role": row.get("role"),
                     "high_precision": len(row.get("shape") or []) <= 1,
                     "parameters": row["parameters"], "bytes": row.get("bytes"),
                     "stored_bits": row.get("bits_per_value"), "results": [result]})
    return {"formats": [{"label": STORED, "settings": {}}], "tensors": rows,
            "totals": scan_document.totals([_Label(STORED)], rows)}


__all__ = ["document", "from_plain", "totals", "scan_view", "worst_first", "ROW_KEYS",
           "METRIC_KEYS", "KIND"]
