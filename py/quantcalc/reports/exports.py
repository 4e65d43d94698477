"""Every report a user can download or write, one record each, one table per feature.

A record says what the report is called (`kind`, the name the page asks for), its MIME type, the
ending of its file name, which function makes its bytes, and the command-line option that writes
it. The facade's export functions (api.export, compare_export, scan_export, plan_export) and the
command line's options both read these tables, so a new report is one entry here.

Each feature's makers take that feature's document: the analysis Result, the comparison
{"name", "rows", "sweep", "skipped", "notes"}, the scan document, the plan document, the audit
document. The "text"
report of each feature is the table the command line prints; it has no option of its own.

A maker is named ("module:function"), not imported: the command line reads these tables at
start-up, before it knows which report (and so which of matplotlib, the scan, the audit or the
planner) it needs, and those sit above reports/, so only the facade loads their makers.
"""

from typing import Optional

from quantcalc.errors import printable
from quantcalc.records import record

CSV, JSON, PDF, TEXT = "text/csv", "application/json", "application/pdf", "text/plain"


@record(frozen=True)
class Export:
    kind: str              # what the page and the facade call it: export(..., kind="summary_csv")
    mime: str
    suffix: str            # the file name's ending: ".csv"
    maker: str             # "module:function" that makes the bytes from the feature's document
    option: Optional[str]  # the command line's option that writes it ("--summary-csv"), if any
    help: str = ""         # what the file holds, for --help

    @property
    def binary(self) -> bool:
        """Bytes that are not text (a PDF): written to stdout as they are, no newline added."""
        return self.mime == PDF


def _table(*exports) -> dict:
    return {export.kind: export for export in exports}


_TABLES = "quantcalc.reports.tables"
_HERE = "quantcalc.reports.exports"

ANALYSIS = _table(
    Export("csv", CSV, ".csv", f"{_TABLES}:per_value_csv", "--csv", "the per-value CSV"),
    Export("summary_csv", CSV, ".csv", f"{_TABLES}:summary_csv", "--summary-csv",
           "the summary CSV"),
    Export("json", JSON, ".json", f"{_TABLES}:summary_json", "--json",
           "the summary as one JSON object"),
    Export("pdf", PDF, ".pdf", f"{_TABLES}:pdf", "--pdf", "the PDF report"),
    Export("text", TEXT, ".txt", f"{_HERE}:analysis_text", None, "the table the terminal shows"),
)

COMPARISON = _table(
    Export("csv", CSV, ".csv", f"{_HERE}:comparison_csv", "--csv", "the comparison CSV"),
    Export("json", JSON, ".json", f"{_HERE}:comparison_json", "--json",
           "the rows, the sweep and the skipped configurations as JSON"),
    Export("pdf", PDF, ".pdf", f"{_HERE}:comparison_pdf", "--pdf", "the comparison PDF"),
    Export("text", TEXT, ".txt", f"{_HERE}:comparison_text", None, "the table the terminal shows"),
)

SCAN = _table(
    Export("csv", CSV, ".csv", "quantcalc.scan.report:csv_bytes", "--csv",
           "one row per tensor and format"),
    Export("totals_csv", CSV, ".csv", "quantcalc.scan.report:totals_csv_bytes", "--totals-csv",
           "one row per format: parameters measured of all, size, total error"),
    Export("json", JSON, ".json", "quantcalc.scan.report:json_bytes", "--json",
           "the whole scan (the input of quantcalc plan)"),
    Export("pdf", PDF, ".pdf", "quantcalc.scan.report:pdf_bytes", "--pdf",
           "totals, figures and the worst tensors"),
    Export("text", TEXT, ".txt", "quantcalc.scan.report:summary_bytes", None,
           "totals and the worst tensors, as the terminal shows them"),
)

PLAN = _table(
    Export("json", JSON, ".json", "quantcalc.plan.report:recipe_bytes", "--json",
           "the plan's recipe"),
    Export("csv", CSV, ".csv", "quantcalc.plan.report:csv_bytes", "--csv",
           "tensor, format, bits and error"),
    Export("pdf", PDF, ".pdf", "quantcalc.plan.report:pdf_bytes", "--pdf",
           "presets compared, the figure, the table"),
    Export("tensor_types", TEXT, ".txt", "quantcalc.plan.report:tensor_types_text",
           "--tensor-types", "PATTERN=TYPE lines for llama-quantize --tensor-type-file"),
    Export("llm_compressor", "application/yaml", ".yaml",
           "quantcalc.plan.compressed_tensors:recipe_bytes", "--llm-compressor",
           "an llm-compressor recipe (compressed-tensors config_groups) for the formats it makes"),
    Export("text", TEXT, ".txt", "quantcalc.plan.report:summary_bytes", None,
           "the plan and the presets, as the terminal shows them"),
)

AUDIT = _table(
    Export("csv", CSV, ".csv", "quantcalc.audit.report:csv_bytes", "--csv",
           "one row per tensor: stored format, bits, SQNR, errors, reproduced"),
    Export("json", JSON, ".json", "quantcalc.audit.report:json_bytes", "--json",
           "the whole audit: both checkpoints, every tensor, the totals"),
    Export("pdf", PDF, ".pdf", "quantcalc.audit.report:pdf_bytes", "--pdf",
           "totals, stored formats, figures, the worst tensors and what was not paired"),
    Export("text", TEXT, ".txt", "quantcalc.audit.report:summary_bytes", None,
           "totals and the worst tensors, as the terminal shows them"),
)

TABLES = {"analysis": ANALYSIS, "comparison": COMPARISON, "scan": SCAN, "plan": PLAN,
          "audit": AUDIT}


# ---------------------------------------------------------------- makers of this layer's reports
# (tables, and numpy with it, load when a report is made, not when the command line reads the
# tables above to build its options)
def analysis_text(result) -> bytes:
    """Labelled rows of the summary, as the terminal shows them."""
    from quantcalc.reports import tables

    # names come from files: control characters are escaped so none steers the terminal
    rows = [(label, printable(value))
            for _, value, label in tables.summary_rows(result.summary())]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows).encode("utf-8")


def comparison_csv(comparison) -> bytes:
    from quantcalc.reports import tables
    return tables.compare_csv(comparison["rows"])


def comparison_pdf(comparison) -> bytes:
    from quantcalc.reports import tables
    return tables.compare_pdf(comparison["rows"], comparison["sweep"], comparison["name"],
                              comparison.get("skipped") or (), comparison.get("notes") or ())


def comparison_json(comparison) -> bytes:
    from quantcalc.reports import tables
    return tables.json_text(comparison).encode("utf-8")


def comparison_text(comparison) -> bytes:
    """The configurations sorted by bits per value, Pareto front starred; then what was skipped
    and the notes."""
    from quantcalc.reports import tables
    from quantcalc.schema import fields

    rows, keys = comparison["rows"], fields.COMPARE_KEYS
    width = max([len("configuration")] + [len(r["label"]) for r in rows])
    columns = [max(len(fields.heading(k)), 10) for k in keys]
    head = [f"{'configuration':{width}s}"] + [f"{fields.heading(k):>{w}s}"
                                              for k, w in zip(keys, columns)] + ["Pareto"]
    lines = ["  ".join(head)]
    for r in rows:
        cells = [f"{printable(r['label']):{width}s}"] + [
            f"{tables.display(k, r[k]):>{w}s}" for k, w in zip(keys, columns)] + [
            "*" if r["pareto"] else ""]
        lines.append("  ".join(cells))
    lines += [printable(f"skipped {item['label']}: {item['reason']}")
              for item in comparison["skipped"]]
    lines += [printable(f"note: {note}") for note in comparison["notes"]]
    return "\n".join(lines).encode("utf-8")
