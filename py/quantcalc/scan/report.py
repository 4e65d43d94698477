"""A model scan's reports: CSV (one row per tensor x format), JSON (the scan document), PDF
(totals, figures and the worst 20 tensors) and the summary the terminal shows. Which of them a
user can ask for, and how, is reports/exports.py's SCAN table. A scan Ctrl-C ended says so in
each: its document's field "interrupted" (so its JSON), a CSV column, the PDF's first page and
the summary's first line."""

import io
import math

from quantcalc.errors import printable
from quantcalc.reports.tables import _writer, display, format_number, json_text, safe_cell
from quantcalc.scan.model_scan import RESULT_KEYS, STAT_KEYS, worst_first

TENSOR_KEYS = ("name", "file", "layer", "role", "shape", "dtype", "stored_format", "parameters",
               "stored_bits", "high_precision", *STAT_KEYS)
CSV_HEADER = (*TENSOR_KEYS, "format", "measured_as", *RESULT_KEYS, "error", "notes")
TOTAL_KEYS = ("format", "parameters_covered", "parameters_fallback", "parameters_kept",
              "parameters_total", "bytes", "bits_per_value", "total_error", "total_error_ci",
              "sampled_fraction", "refused", "fallbacks")
WORST_ROWS = 20


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return safe_cell(value)
    if isinstance(value, list):
        return "x".join(str(n) for n in value)
    return format_number(value)


def interruption(doc) -> str:
    """"interrupted: 12 of 291 tensors scanned" for a scan Ctrl-C ended, else ""."""
    mark = doc.get("interrupted")
    if not mark:
        return ""
    if not isinstance(mark, dict):
        return "interrupted"
    return f"interrupted: {mark.get('tensors_done', '?')} of {mark.get('tensors_total', '?')} " \
           f"tensors scanned"


def csv_bytes(doc) -> bytes:
    """One row per tensor and format. An interrupted scan's CSV has one more column,
    "interrupted", saying so on every row: the table stays rectangular and typed (a note row at
    the end would be read as a tensor, with empty numbers; CSV has no comments), and a row read
    alone, filtered or pasted elsewhere still says it came from a partial scan."""
    buffer = io.StringIO()
    writer = _writer(buffer)
    marker = interruption(doc)
    writer.writerow(CSV_HEADER + (("interrupted",) if marker else ()))
    tail = [safe_cell(marker)] if marker else []
    for row in doc["tensors"]:
        facts = [_cell(row[k]) for k in TENSOR_KEYS]
        results = row["results"] or [None]
        for result in results:
            if result is None:
                writer.writerow(facts + [""] * (len(RESULT_KEYS) + 3)
                                + [safe_cell("; ".join(row["notes"]))] + tail)
                continue
            notes = "; ".join(row["notes"] + result["notes"])
            writer.writerow(facts + [safe_cell(result["format"]),
                                     _cell(result.get("measured_as"))]
                            + [_cell(result[k]) for k in RESULT_KEYS]
                            + [_cell(result["error"]), safe_cell(notes)] + tail)
    return buffer.getvalue().encode("utf-8")


def totals_csv_bytes(doc) -> bytes:
    """One row per format: the parameters it covers (measured, fallbacks included) out of all,
    its size and total error over all of them (scan/document.py totals)."""
    buffer = io.StringIO()
    writer = _writer(buffer)
    marker = interruption(doc)
    writer.writerow(TOTAL_KEYS + (("interrupted",) if marker else ()))
    for total in doc["totals"]:
        writer.writerow([_cell(total.get(k)) for k in TOTAL_KEYS]
                        + ([safe_cell(marker)] if marker else []))
    return buffer.getvalue().encode("utf-8")


def covered(total) -> str:
    """"22,713,216 of 22,713,728 (3,548,160 in fallback types)": what a total measured."""
    text = f"{total['parameters_covered']:,} of {total['parameters_total']:,}"
    if total.get("parameters_fallback"):
        text += f" ({total['parameters_fallback']:,} in fallback types)"
    return text


def sqnr_text(result, unit=True) -> str:
    """"21.38 dB", or "21.38 ± 0.09 dB" for an estimate (scan --estimate); without the unit
    for a column that names it."""
    text = display("sqnr_db", result["sqnr_db"]).removesuffix(" dB")
    half = result.get("sqnr_ci_db") or 0.0
    if half and math.isfinite(half):
        text += f" ± {half:.2g}"
    return f"{text} dB" if unit and text[-1].isdigit() else text


def error_text(total) -> str:
    """A total's error, "8.747", or "8.747 ± 0.12" where it is estimated."""
    text = f"{total['total_error']:.4g}"
    half = total.get("total_error_ci") or 0.0
    return f"{text} ± {half:.2g}" if half else text


def estimate_line(doc) -> str:
    """What the summary and the PDF say of an estimated scan ("" for an exact one)."""
    target = doc.get("estimate")
    if not isinstance(target, dict):
        return ""
    return (f"errors estimated from samples of rows (95 % interval within ±{target.get('db')} "
            f"dB, seed {target.get('seed')}); statistics and scale ranges exact")


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
        rows = [(t["format"], f"{t['parameters_covered']:,} / {t['parameters_total']:,}",
                 f"{t['parameters_fallback']:,}", _number(t["bits_per_value"]),
                 f"{t['bytes'] / 1e6:.4g}", error_text(t), str(t["refused"]))
                for t in doc["totals"]]
        marker = interruption(doc)
        pages.savefig(text_page(f"Model scan ({marker})" if marker else "Model scan", rows,
                                ("format", "measured / all parameters", "in fallback",
                                 "bits/value", "MB", "total error", "refused"),
                                subtitle=f"{len(doc['tensors'])} tensors in {files[:90]}"
                                + ("; the totals cover those only" if marker else "")
                                + "; every total counts every tensor, those not measured "
                                  "at their stored size"
                                + (f"; {estimate_line(doc)}" if estimate_line(doc) else "")))
        pdf_pages.figure_pages(pages, [make() for make in scan_figures.makers(doc).values()])
        for index, fmt in enumerate(doc["formats"]):
            worst = [r for r in worst_first(doc["tensors"], index)
                     if index < len(r["results"]) and r["results"][index]["sqnr_db"] is not None]
            table = [(r["name"], r["role"], sqnr_text(r["results"][index], unit=False),
                      _number(r["results"][index]["rel_rmse"]),
                      _number(r["results"][index]["clip_rate"]), _number(r["kurtosis"], 3),
                      r["worst_channel"] or "") for r in worst[:WORST_ROWS]]
            pages.savefig(text_page(f"Worst {len(table)} tensors: {fmt['label']}", table,
                                    ("tensor", "role", "SQNR dB", "rel. RMSE", "clip rate",
                                     "kurtosis", "worst channel"), names=(0,)))
    return buffer.getvalue()


def summary_text(doc) -> str:
    """Totals per format, then the worst tensors of the first format (names escaped: they come
    from the files and reach a terminal)."""
    count, marker = len(doc["tensors"]), interruption(doc)
    counted = f"{count} tensors ({marker})" if marker else f"{count} tensors"
    lines = [f"{counted}; " + printable("; ".join(doc["notes"])) if doc["notes"] else counted]
    if estimate_line(doc):
        lines.append(estimate_line(doc))
    width = max([len(t["format"]) for t in doc["totals"]] + [6])
    lines.append(f"{'format':{width}s}  {'bits/value':>10s}  {'MB':>10s}  {'total error':>12s}  "
                 f"refused  measured parameters")
    for t in doc["totals"]:
        bits = "n/a" if t["bits_per_value"] is None else f"{t['bits_per_value']:.4g}"
        lines.append(f"{printable(t['format']):{width}s}  {bits:>10s}  {t['bytes'] / 1e6:>10.4g}  "
                     f"{error_text(t):>12s}  {t['refused']:>7}  {covered(t)}")
    if doc["formats"]:
        lines.append("")
        lines.append(f"worst tensors under {printable(doc['formats'][0]['label'])} "
                     f"(lowest SQNR first):")
        lines += [_worst_line(row) for row in worst_first(doc["tensors"])[:WORST_ROWS]]
    return "\n".join(lines)


def _worst_line(row) -> str:
    result = row["results"][0] if row["results"] else None
    if result and result["sqnr_db"] is not None:
        sqnr = sqnr_text(result)
    else:  # the format refused the tensor, or nothing could be measured: say why, briefly
        sqnr = result["error"][:60] if result else "; ".join(row["notes"])[:60]
    return f"  {printable(row['name'])[:60]:60s}  {row['role']:9s}  {sqnr}"


def summary_bytes(doc) -> bytes:
    return summary_text(doc).encode("utf-8")
