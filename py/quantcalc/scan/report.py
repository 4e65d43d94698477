"""A model scan's reports: CSV (one row per tensor x format), JSON (the scan document) and PDF
(totals, figures and the worst 20 tensors)."""

import io

from quantcalc.reports.tables import _writer, format_number, json_text, safe_cell
from quantcalc.scan.model_scan import RESULT_KEYS, STAT_KEYS, worst_first

TENSOR_KEYS = ("name", "file", "layer", "role", "shape", "dtype", "parameters", "stored_bits",
               "high_precision", *STAT_KEYS)
CSV_HEADER = (*TENSOR_KEYS, "format", *RESULT_KEYS, "error", "notes")
WORST_ROWS = 20


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return safe_cell(value)
    if isinstance(value, list):
        return "x".join(str(n) for n in value)
    return format_number(value)


def csv_bytes(doc) -> bytes:
    buffer = io.StringIO()
    writer = _writer(buffer)
    writer.writerow(CSV_HEADER)
    for row in doc["tensors"]:
        facts = [_cell(row[k]) for k in TENSOR_KEYS]
        results = row["results"] or [None]
        for result in results:
            if result is None:
                writer.writerow(facts + [""] * (len(RESULT_KEYS) + 2)
                                + [safe_cell("; ".join(row["notes"]))])
                continue
            notes = "; ".join(row["notes"] + result["notes"])
            writer.writerow(facts + [safe_cell(result["format"])]
                            + [_cell(result[k]) for k in RESULT_KEYS]
                            + [_cell(result["error"]), safe_cell(notes)])
    return buffer.getvalue().encode("utf-8")


def json_bytes(doc) -> bytes:
    return json_text(doc, indent=1).encode("utf-8")


def _number(value, digits=4):
    return "" if value is None else f"{value:.{digits}g}"


def pdf_bytes(doc) -> bytes:
    from matplotlib.backends.backend_pdf import PdfPages

    from quantcalc.reports import figures
    from quantcalc.reports import pdf_pages
    from quantcalc.scan import figures as scan_figures
    from quantcalc.reports.tables import text_page

    buffer = io.BytesIO()
    metadata = {"Title": "quantcalc model scan", "Creator": "quantcalc", "Producer": "quantcalc",
                "CreationDate": None, "ModDate": None}
    files = ", ".join(f["name"] for f in doc["files"])
    with figures.paper(), PdfPages(buffer, metadata=metadata) as pages:
        rows = [(t["format"], f"{t['parameters']:,}", _number(t["bits_per_value"]),
                 f"{t['bytes'] / 1e6:.4g}", _number(t["total_error"]), str(t["refused"]))
                for t in doc["totals"]]
        pages.savefig(text_page("Model scan", rows, ("format", "parameters", "bits/value", "MB",
                                "total error", "refused"),
                                subtitle=f"{len(doc['tensors'])} tensors in {files[:90]}"))
        pdf_pages.figure_pages(pages, [make() for make in scan_figures.makers(doc).values()])
        for index, fmt in enumerate(doc["formats"]):
            worst = [r for r in worst_first(doc["tensors"], index)
                     if index < len(r["results"]) and r["results"][index]["sqnr_db"] is not None]
            table = [(r["name"][-48:], r["role"], _number(r["results"][index]["sqnr_db"]),
                      _number(r["results"][index]["rel_rmse"]),
                      _number(r["results"][index]["clip_rate"]), _number(r["kurtosis"], 3),
                      r["worst_channel"] or "") for r in worst[:WORST_ROWS]]
            pages.savefig(text_page(f"Worst {len(table)} tensors: {fmt['label']}", table,
                                    ("tensor", "role", "SQNR dB", "rel. RMSE", "clip rate",
                                     "kurtosis", "worst channel")))
    return buffer.getvalue()


EXPORTS = {"csv": csv_bytes, "json": json_bytes, "pdf": pdf_bytes}
