"""An audit's reports and figures: CSV (one row per tensor), JSON (the document), an A4 PDF
(totals, one line per stored format, the figures, the worst tensors, what was not paired) and
the summary the terminal shows; which a user can ask for, and how, is reports/exports.py's
AUDIT table. The figures are the scan's (scan/figures.py) on the audit seen as a one-format
scan (document.scan_view), and, where llama.cpp's plain quantization was measured beside the
file, the stored SQNR against it per tensor (what an importance matrix gained)."""

import io
import math

from quantcalc.audit import document as audit_document
from quantcalc.audit.measure import ROW_KEYS
from quantcalc.errors import printable
from quantcalc.reports.tables import _writer, display, format_number, json_text, safe_cell

TITLES = {"heatmap": "SQNR by layer and role", "spread": "SQNR across tensors",
          "share": "Share of total error by role", "gain": "Stored SQNR against llama.cpp's "
          "plain quantization"}
NOT_PAIRED_ROWS = 60


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return safe_cell(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "x".join(str(n) for n in value) if all(isinstance(n, int) for n in value) \
            else safe_cell("; ".join(str(n) for n in value))
    return format_number(value)


def csv_bytes(doc) -> bytes:
    buffer = io.StringIO()
    writer = _writer(buffer)
    writer.writerow(ROW_KEYS)
    for row in doc["tensors"]:
        writer.writerow([_cell(row.get(k)) for k in ROW_KEYS])
    return buffer.getvalue().encode("utf-8")


def json_bytes(doc) -> bytes:
    return json_text(doc, indent=1).encode("utf-8")


def _number(value, digits=4):
    return "" if value is None else f"{value:.{digits}g}"


def _sqnr(value):
    return "" if value is None else display("sqnr_db", value)


def total_lines(doc) -> list:
    """The totals in words (the PDF's first page and the terminal's first lines)."""
    t = doc["totals"]
    repro = t["reproduced"]
    files = ", ".join(f["name"] for f in doc["quantized"]["files"])
    lines = [f"{files}: {t['tensors']} tensors, {t['parameters']:,} parameters, "
             f"{t['bytes'] / 1e6:.4g} MB, {_number(t['bits_per_value'])} bits per weight",
             f"measured against the original: {t['tensors_measured']} tensors "
             f"({t['parameters_measured']:,} parameters); not paired: {t['tensors_not_paired']}",
             f"SQNR of the whole model {_sqnr(t['sqnr_db'])}; total error (MSE x parameters) "
             f"{_number(t['total_error'])}"]
    if t.get("plain_total_error") is not None:
        lines.append(f"the formats' plain quantization of the same tensors (llama.cpp's "
                     f"without an imatrix, min-max, amax/448): total error "
                     f"{_number(t['plain_total_error'])}")
    if repro["true"] or repro["false"]:
        lines.append(f"reproduced by the format's own quantization of the original: "
                     f"{repro['true']} tensors; not reproduced: {repro['false']}")
    mark = doc.get("interrupted")
    if isinstance(mark, dict):
        lines.insert(0, f"interrupted: {mark.get('tensors_done', '?')} of "
                        f"{mark.get('tensors_total', '?')} tensors audited; the totals cover "
                        f"those only")
    if doc.get("imatrix"):
        lines.append(f"importance matrix: {doc['imatrix']}; importance-weighted SQNR "
                     f"{_sqnr(t.get('weighted_sqnr_db'))}")
    model = doc.get("model") or {}
    if model.get("architecture"):
        lines.append(f"architecture {model['architecture']} ({model.get('source')})")
    return [printable(line) for line in lines]


def _format_rows(doc):
    return [(f["stored_format"][:40], str(f["tensors"]), f"{f['parameters']:,}",
             _number(f["bits_per_value"]), _sqnr(f["sqnr_db"]))
            for f in doc["totals"]["by_format"]]


def _worst_rows(doc):
    worst = audit_document.worst_first(doc["tensors"])[:audit_document.WORST]
    return [(r["name"][-44:], r["role"] or "", (r["stored_format"] or "")[:24],
             _sqnr(r["sqnr_db"]), _sqnr(r.get("plain_sqnr_db")),
             {True: "yes", False: "no"}.get(r.get("reproduced"), "")) for r in worst]


def pdf_bytes(doc) -> bytes:
    from matplotlib.backends.backend_pdf import PdfPages

    from quantcalc.reports import figures, pdf_pages

    buffer = io.BytesIO()
    metadata = {"Title": "quantcalc audit", "Creator": "quantcalc", "Producer": "quantcalc",
                "CreationDate": None, "ModDate": None}
    with figures.paper(), PdfPages(buffer, metadata=metadata) as pages:
        page, y = pdf_pages.new_page("Audit of a quantized checkpoint")
        y = pdf_pages.text(page, y, total_lines(doc))
        pdf_pages.table(page, y - 0.02, _format_rows(doc),
                        ("stored format", "tensors", "parameters", "bits/value", "SQNR"))
        pages.savefig(page)
        pdf_pages.figure_pages(pages, [make() for make in makers(doc).values()])
        pdf_pages.paginated_table(pages, "Worst tensors", _worst_rows(doc),
                                  ("tensor", "role", "stored", "SQNR", "plain SQNR",
                                   "reproduced"))
        missing = [(printable(r["name"])[-44:], printable(r["reason"])[:70])
                   for r in doc["tensors"] if r.get("reason")][:NOT_PAIRED_ROWS]
        if missing:
            pdf_pages.paginated_table(pages, "Not measured", missing, ("tensor", "reason"))
    return buffer.getvalue()


def summary_text(doc) -> str:
    lines = total_lines(doc) + [""]
    if doc["totals"]["by_format"]:
        lines.append(f"{'stored format':32s}  {'tensors':>7s}  {'bits/value':>10s}  SQNR")
        lines += [f"{printable(f)[:32]:32s}  {t:>7s}  {b:>10s}  {s}"
                  for f, t, _, b, s in _format_rows(doc)]
        lines.append("")
    lines.append("worst tensors (lowest SQNR first; plain: the format's own quantization "
                 "without an imatrix or calibration):")
    lines += [f"  {printable(n):44s}  {role:9s}  {printable(st):24s}  {s:>10s}  plain {p:>10s}"
              f"  {'reproduced' if r == 'yes' else ''}"
              for n, role, st, s, p, r in _worst_rows(doc)]
    missing = [r for r in doc["tensors"] if r.get("reason")]
    if missing:
        lines.append(f"not measured ({len(missing)}):")
        lines += [f"  {printable(r['name'])[:60]}: {printable(r['reason'])[:100]}"
                  for r in missing[:10]]
        if len(missing) > 10:
            lines.append(f"  ... and {len(missing) - 10} more (the CSV and JSON list all)")
    if doc["notes"]:
        lines.append("notes: " + printable("; ".join(doc["notes"])))
    return "\n".join(lines)


def summary_bytes(doc) -> bytes:
    return summary_text(doc).encode("utf-8")


def gain_figure(doc):
    """Each tensor's stored SQNR against llama.cpp's plain quantization of the same original:
    above the diagonal, the file gains (an importance matrix, a better search)."""
    from quantcalc.reports.figures import ink
    from matplotlib.figure import Figure

    pairs = [(r["plain_sqnr_db"], r["sqnr_db"]) for r in doc["tensors"]
             if audit_document.measured(r) and r.get("plain_sqnr_db") is not None
             and math.isfinite(r["plain_sqnr_db"]) and math.isfinite(r["sqnr_db"])]
    fig = Figure(figsize=(6.4, 4.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(TITLES["gain"])
    if pairs:
        x, y = zip(*pairs)
        low, high = min(x + y) - 0.5, max(x + y) + 0.5
        ax.plot([low, high], [low, high], "--", color=ink("faint"), lw=1)
        ax.plot(x, y, ".", color=ink("original"), ms=5)
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
    ax.set_xlabel("plain llama.cpp quantization, SQNR (dB)")
    ax.set_ylabel("as stored, SQNR (dB)")
    return fig


def makers(doc) -> dict:
    from quantcalc.scan import figures as scan_figures

    view = audit_document.scan_view(doc)
    out = {"heatmap": lambda: scan_figures.heatmap_figure(view, 0),
           "spread": lambda: scan_figures.spread_figure(view),
           "share": lambda: scan_figures.share_figure(view)}
    if any(r.get("plain_sqnr_db") is not None for r in doc["tensors"]):
        out["gain"] = lambda: gain_figure(doc)
    return out


def render(doc, fmt="svg", on_figure=None) -> dict:
    from quantcalc.reports.figures import render_each, themed

    with themed():
        return render_each(makers(doc), fmt, on_figure)
