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

from quantcalc.schema import fields

PER_VALUE_HEADER = ("index", "original", "quantized", "dequantized", "error", "clipped")
SUMMARY_HEADER = ("field", "value", "label")
PDF_TABLE_ROWS = 520    # per-value rows in the PDF: ten pages of the table
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


# Non-finite numbers in JSON text, the one encoding. JSON has no infinity, so json_text spells
# +inf and -inf as the strings "inf" and "-inf" (as the CSV cells and every JSON file written so
# far do) and refuses NaN (ValueError: no report holds one); from_jsonable reads them back. Data
# handed over in memory needs none of this: the facade returns floats, and the page's worker
# passes them on as JS numbers (a structured clone carries Infinity and NaN).
JSON_SPELLING = {math.inf: "inf", -math.inf: "-inf"}
JSON_READING = {text: number for number, text in JSON_SPELLING.items()}


def to_jsonable(value):
    """Plain Python data, what the facade returns: numpy scalars become Python numbers, dicts,
    lists and tuples are copied through, arrays are left for the caller (the page's worker
    copies them out once). Numbers stay numbers, inf and NaN included: json_text spells them."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, tuple):
        return tuple(to_jsonable(v) for v in value)
    return value


def _spelled(value):
    if isinstance(value, float) and math.isinf(value):
        return JSON_SPELLING[value]
    if isinstance(value, dict):
        return {k: _spelled(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_spelled(v) for v in value]
    return value


def json_text(value, **options) -> str:
    """Strict JSON text (no bare NaN / Infinity, which strict parsers reject): infinities
    spelled as JSON_SPELLING says, NaN refused with ValueError."""
    return json.dumps(_spelled(to_jsonable(value)), allow_nan=False, **options)


def from_jsonable(value, number_keys):
    """Data read back from JSON text or from the page (a scan given to `plan`): the numbers
    under any of `number_keys`, at any depth, are floats again, those json_text spelled ("inf")
    and the whole ones JavaScript hands back as integers (it has one number type: 6.0 returns
    as 6, and a plan made from it would write 884736 where the command line writes 884736.0).
    Only under those keys: a tensor or a label may well be named "inf"."""
    keys = frozenset(number_keys)

    def back(item, numeric):
        if isinstance(item, dict):
            return {k: back(v, k in keys) for k, v in item.items()}
        if isinstance(item, list):
            return [back(v, numeric) for v in item]
        if numeric and isinstance(item, int) and not isinstance(item, bool):
            return float(item)
        return JSON_READING.get(item, item) if numeric and isinstance(item, str) else item
    return back(value, False)


def summary_json(result) -> bytes:
    return json_text(result.summary(), indent=2).encode("utf-8")


def text_page(title, rows, columns, subtitle=None, names=()):
    """An A4 page with a title and a table (pdf_pages: every string drawn as plain text, fitted
    to its cell; the columns in `names` hold names, abbreviated from the left where they must
    be)."""
    from quantcalc.reports import pdf_pages

    page, y = pdf_pages.new_page(title, subtitle)
    pdf_pages.table(page, y, rows, columns, names=names)
    return page


def pdf(result) -> bytes:
    """A PDF report on A4 pages: the settings, the verdict and the results rounded as the page
    shows them (every digit is in the CSV), notes and hints; the figures two to a page; the
    per-value table over as many pages as it needs, its header on each."""
    # matplotlib is imported here, not at module level, so the CSV/JSON paths (and the page's
    # first numbers) never wait for it.
    from matplotlib.backends.backend_pdf import PdfPages

    from quantcalc.reports import figures
    from quantcalc.reports import pdf_pages
    from quantcalc.engine import verdict

    summary = result.summary()
    buffer = io.BytesIO()
    # No dates in the metadata: equal input, equal bytes (auditable, diffable).
    metadata = {"Title": f"quantcalc report: {summary['name']}", "Creator": "quantcalc",
                "Producer": "quantcalc", "CreationDate": None, "ModDate": None}
    with figures.paper(), PdfPages(buffer, metadata=metadata) as pages:
        page, y = pdf_pages.new_page(f"Quantization report: {summary['name']}",
                                     summary["description"])
        y = pdf_pages.heading(page, y, "Verdict")
        y = pdf_pages.table(page, y, [(h["label"], _shown(h["key"], summary),
                                       h["cue"]) for h in verdict.headline(summary)],
                            ("Measure", "Value", "What it means"), widths=(0.2, 0.18, 0.62))
        # settings on the left, results on the right: one page holds both
        middle = (pdf_pages.LEFT + pdf_pages.RIGHT) / 2
        pdf_pages.heading(page, y, "Settings")
        pdf_pages.heading(page, y, "Results", left=middle + 0.01)
        y -= 0.028
        below_settings = pdf_pages.table(page, y, _rows_of(summary, fields.CONFIGURATION),
                                         ("Setting", "Value"), widths=(0.5, 0.5),
                                         right=middle - 0.01)
        below_results = pdf_pages.table(page, y, _rows_of(summary, fields.PARAMETER) +
                                        _rows_of(summary, fields.METRIC), ("Result", "Value"),
                                        widths=(0.45, 0.55), left=middle + 0.01)
        y = min(below_settings, below_results)
        remarks = list(summary["notes"]) + [f"Hint: {h}" for h in summary.get("hints", [])]
        if remarks:  # on the next page where this one is full
            page, y = pdf_pages.paragraphs(pages, page, y, "Notes", remarks)
        pages.savefig(page)
        pdf_pages.figure_pages(pages, list(figures.build(result).values()), "Figures")
        pv = result.per_value
        if pv is not None:
            n = min(PDF_TABLE_ROWS, len(pv.original))
            table = [(str(i), f"{pv.original[i] + 0.0:.6g}", str(pv.codes[i]),
                      f"{pv.dequantized[i] + 0.0:.6g}", f"{pv.error[i] + 0.0:.4g}",
                      "yes" if pv.clipped[i] else "") for i in range(n)]  # + 0.0: no "-0"
            pdf_pages.paginated_table(
                pages, "Per-value results", table, PER_VALUE_COLUMNS,
                widths=(0.09, 0.19, 0.11, 0.25, 0.21, 0.15),
                subtitle=f"The first {n} of {summary['count']} values to six significant "
                         f"digits; the per-value CSV has every value and every digit.")
    return buffer.getvalue()


PER_VALUE_COLUMNS = ("Index", "Original x", "Code q", "Reconstruction x̂", "Error x − x̂",
                     "Clipped")


def _shown(key, summary):
    """A value as the page shows it: rounded, with its unit; a list as its count and range."""
    value = summary[key]
    if fields.BY_KEY[key].style == "shape":
        return " × ".join(str(n) for n in value) or "scalar"
    if isinstance(value, list):
        kind = summary.get("segment_kind") or "segment"
        if len(value) == 1:
            return display(key, value[0])
        return (f"{len(value)} {kind}s: {display(key, min(value))} … "
                f"{display(key, max(value))}")
    return display(key, value)


def _rows_of(summary, group):
    """(label, value) of the group's fields that apply to this result (the format's name and
    description are the report's subtitle)."""
    return [(f.label, _shown(f.key, summary)) for f in fields.FIELDS
            if f.group == group and summary.get(f.key) is not None
            and f.key not in ("format", "description")]


COMPARE_HEADER = ("label", "format", "settings", *fields.COMPARE_KEYS, "pareto")


def compare_csv(rows) -> bytes:
    buffer = io.StringIO()
    writer = _writer(buffer)
    writer.writerow(COMPARE_HEADER)
    for row in rows:
        writer.writerow([safe_cell(row[k]) if isinstance(row[k], str) else format_number(row[k])
                         for k in COMPARE_HEADER])
    return buffer.getvalue().encode("utf-8")


def compare_pdf(rows, sweep, name, skipped=(), notes=()) -> bytes:
    """The comparison table, the configurations skipped (with the reason) and the notes, the
    SQNR-against-bits figure and the integer sweep, as a PDF."""
    from matplotlib.backends.backend_pdf import PdfPages

    from quantcalc.reports import compare_figures, figures
    from quantcalc.reports import pdf_pages

    buffer = io.BytesIO()
    metadata = {"Title": f"quantcalc comparison: {name}", "Creator": "quantcalc",
                "Producer": "quantcalc", "CreationDate": None, "ModDate": None}
    with figures.paper(), PdfPages(buffer, metadata=metadata) as pages:
        table = [(r["label"], *(display(key, r[key]) for key in fields.COMPARE_KEYS),
                  "yes" if r["pareto"] else "") for r in rows]
        page, y = pdf_pages.new_page(f"Format comparison: {name}",
                                     "sorted by bits per value, scales included")
        y = pdf_pages.table(page, y, table, ("configuration", *(
            fields.heading(k) for k in fields.COMPARE_KEYS), "Pareto"))
        if skipped:
            page, y = pdf_pages.paragraphs(pages, page, y, "Skipped: these do not fit the values",
                                           [f"{s['label']}: {s['reason']}" for s in skipped])
        if notes:
            page, y = pdf_pages.paragraphs(pages, page, y, "Notes", list(notes))
        pages.savefig(page)
        drawn = [compare_figures.tradeoff_figure(rows)] + (
            [compare_figures.sweep_figure(sweep)] if sweep else [])
        pdf_pages.figure_pages(pages, drawn)
    return buffer.getvalue()
