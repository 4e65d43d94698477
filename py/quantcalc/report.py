"""Reports as bytes: per-value CSV, summary CSV, JSON summary, PDF.

CSV follows RFC 4180 (CRLF line ends, quoted fields where needed). Text a user typed (the tensor
name) is neutralised against spreadsheet formula injection (OWASP: a leading = + - @ tab or CR
gets a leading apostrophe). The PDF carries no creation date, so the same input gives the same
bytes.
"""

import csv
import io
import json
import math

import numpy as np

from . import fields

PER_VALUE_HEADER = ("index", "original", "quantized", "dequantized", "error", "clipped")
SUMMARY_HEADER = ("field", "value", "label")
PDF_TABLE_ROWS = 40
LIST_ROWS_LIMIT = 4096


def safe_cell(text: str) -> str:
    """Neutralise spreadsheet formulas in user text (OWASP CSV injection guidance)."""
    text = str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def format_number(value) -> str:
    """Shortest round-trip text for a number; inf/-inf/nan spelled as spreadsheets read them."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def display(key: str, value) -> str:
    """A value as people read it (four significant digits, dB, percent to three), by its
    field's style; the page's display() in web/results.js follows the same rules."""
    style = fields.BY_KEY[key].style
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, str) or style in ("text", "shape"):
        return {"inf": "∞", "-inf": "−∞"}.get(value, str(value))
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if style == "percent":
        return f"{value * 100:.3g} %"
    if style == "int" or isinstance(value, (int, np.integer)):
        return str(int(value))
    text = f"{value:.4g}"
    return f"{text} dB" if style == "db" else text


def _writer(buffer):
    return csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)


def per_value_csv(result) -> bytes:
    """index,original,quantized,dequantized,error,clipped for the kept values.

    For a large tensor only the first values are kept (`analysis.DEFAULT_KEEP`); the CSV then
    stays a plain table (a trailing note row would break parsers) and the cap is stated in the
    summary's notes.
    """
    pv = result.per_value
    buffer = io.StringIO()
    writer = _writer(buffer)
    writer.writerow(PER_VALUE_HEADER)
    if pv is not None:
        # The input's own dtype gives the shortest text that reads back to the same value.
        originals = pv.original.astype(str)
        dequantized = pv.dequantized.astype(str)
        errors = pv.error.astype(str)
        clipped = np.where(pv.clipped, "1", "0")
        writer.writerows(zip(range(len(originals)), originals, pv.codes.tolist(), dequantized,
                             errors, clipped))
    return buffer.getvalue().encode("utf-8")


def summary_rows(summary: dict):
    """(field, value, label) rows in fields.FIELDS order, leaving out what does not apply (None);
    per-segment lists become scale[0], scale[1], ... rows."""
    rows = []
    for field in fields.FIELDS:
        key, value = field.key, summary.get(field.key)
        if value is None:
            continue
        if field.style == "shape":
            rows.append((key, "x".join(str(n) for n in value) or "scalar", field.label))
        elif isinstance(value, list):
            for i, item in enumerate(value[:LIST_ROWS_LIMIT]):
                rows.append((f"{key}[{i}]", format_number(item), f"{field.label} [{i}]"))
            if len(value) > LIST_ROWS_LIMIT:
                rows.append((f"{key}_rows_omitted", str(len(value) - LIST_ROWS_LIMIT),
                             f"{field.label}: rows left out"))
        elif isinstance(value, str):
            rows.append((key, safe_cell(value), field.label))
        else:
            rows.append((key, format_number(value), field.label))
    for i, note in enumerate(summary.get("notes", [])):
        rows.append((f"note[{i}]", safe_cell(note), "Note"))
    for i, hint in enumerate(summary.get("hints", [])):
        rows.append((f"hint[{i}]", safe_cell(hint), "Hint"))
    return rows


def summary_csv(result) -> bytes:
    buffer = io.StringIO()
    writer = _writer(buffer)
    writer.writerow(SUMMARY_HEADER)
    writer.writerows(summary_rows(result.summary()))
    return buffer.getvalue().encode("utf-8")


def to_jsonable(value):
    """JSON has no inf or NaN: infinite SQNR is written as the string "inf" (and "-inf"), so
    strict parsers read every report (json_text refuses anything else non-finite)."""
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    return value


def json_text(value, **options) -> str:
    """Strict JSON (no bare NaN / Infinity, which strict parsers reject)."""
    return json.dumps(to_jsonable(value), allow_nan=False, **options)


def save(path, data: bytes):
    """Write a report the command line was asked for: to `path`, or to stdout for "-"."""
    import sys
    from pathlib import Path

    from .errors import QuantcalcError

    if path == "-":
        sys.stdout.write(data.decode("utf-8") + "\n")
        return
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise QuantcalcError(f"cannot write {path}: {exc.strerror}", "output") from None


def summary_json(result) -> bytes:
    return json_text(result.summary(), indent=2).encode("utf-8")


def text_page(title, rows, columns, subtitle=None):
    """An A4 page with a title and a table. Every string on it is plain text: names come from
    users and files, and "$5 and $6" must not be read as mathtext (nor "$\\frac{$" crash)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.27, 11.69))  # A4 portrait
    fig.text(0.08, 0.95, title, fontsize=16, weight="bold", parse_math=False)
    if subtitle:
        fig.text(0.08, 0.925, subtitle, fontsize=10, parse_math=False)
    ax = fig.add_axes([0.08, 0.05, 0.84, 0.85])
    ax.axis("off")
    if rows:
        table = ax.table(cellText=rows, colLabels=columns, loc="upper left", cellLoc="left",
                         colLoc="left")
        table.auto_set_font_size(False)
        table.set_fontsize(8)
        table.scale(1, 1.25)
        for cell in table.get_celld().values():
            cell.get_text().set_parse_math(False)
    return fig


def _text_page(pdf_pages, title, rows, columns, subtitle=None):
    pdf_pages.savefig(text_page(title, rows, columns, subtitle))


def pdf(result) -> bytes:
    """A PDF report: configuration and metrics, the figures, the first rows of the table."""
    # matplotlib is imported here, not at module level, so the CSV/JSON paths (and the page's
    # first numbers) never wait for it.
    from matplotlib.backends.backend_pdf import PdfPages

    from . import figures

    summary = result.summary()
    buffer = io.BytesIO()
    # No dates in the metadata: equal input, equal bytes (auditable, diffable).
    metadata = {"Title": f"quantcalc report: {summary['name']}", "Creator": "quantcalc",
                "Producer": "quantcalc", "CreationDate": None, "ModDate": None}
    with figures.paper(), PdfPages(buffer, metadata=metadata) as pages:
        rows = [(label, _short(value)) for _, value, label in summary_rows(summary)[:60]]
        _text_page(pages, f"Quantization report: {summary['name']}", rows, ("setting / metric",
                   "value"), subtitle=_short(summary["description"], 100))
        for fig in figures.build(result).values():
            pages.savefig(fig)
        pv = result.per_value
        if pv is not None:
            n = min(PDF_TABLE_ROWS, len(pv.original))
            table = [(str(i), f"{pv.original[i]:.8g}", str(pv.codes[i]),
                      f"{pv.dequantized[i]:.8g}", f"{pv.error[i]:.4g}",
                      "yes" if pv.clipped[i] else "") for i in range(n)]
            _text_page(pages, "Per-value results", table, PER_VALUE_HEADER,
                       subtitle=f"first {n} of {summary['count']} values")
    return buffer.getvalue()


def _short(text, limit=70):
    return text if len(text) <= limit else text[:limit - 3] + "..."


COMPARE_HEADER = ("label", "format", "settings", *fields.COMPARE_KEYS, "pareto")


def compare_csv(rows) -> bytes:
    buffer = io.StringIO()
    writer = _writer(buffer)
    writer.writerow(COMPARE_HEADER)
    for row in rows:
        writer.writerow([safe_cell(row[k]) if isinstance(row[k], str) else format_number(row[k])
                         for k in COMPARE_HEADER])
    return buffer.getvalue().encode("utf-8")


def compare_pdf(rows, sweep, name) -> bytes:
    """The comparison table, the SQNR-against-bits figure and the integer sweep, as a PDF."""
    from matplotlib.backends.backend_pdf import PdfPages

    from . import figures

    buffer = io.BytesIO()
    metadata = {"Title": f"quantcalc comparison: {name}", "Creator": "quantcalc",
                "Producer": "quantcalc", "CreationDate": None, "ModDate": None}
    with figures.paper(), PdfPages(buffer, metadata=metadata) as pages:
        table = [(r["label"], *(display(key, r[key]) for key in fields.COMPARE_KEYS),
                  "yes" if r["pareto"] else "") for r in rows]
        _text_page(pages, f"Format comparison: {name}", table,
                   ("configuration", *(fields.heading(k) for k in fields.COMPARE_KEYS), "Pareto"),
                   subtitle="sorted by bits per value, scales included")
        pages.savefig(figures.tradeoff_figure(rows))
        if sweep:
            pages.savefig(figures.sweep_figure(sweep))
    return buffer.getvalue()
