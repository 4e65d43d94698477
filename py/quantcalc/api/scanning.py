"""A whole checkpoint, every tensor under every chosen format: listing, scanning (in parts, as
the page's workers do), figures and downloads."""

from quantcalc.api.common import as_svg_text, guarded
from quantcalc.errors import QuantcalcError
from quantcalc.readers import checkpoint
from quantcalc.reports import tables as report

PAGE_WHOLE_VALUES = 1 << 24  # the page streams tensors of more than 16M values (64 MB float32)
SCAN_EXPORTS = {"csv": "text/csv", "json": "application/json", "pdf": "application/pdf"}


def scan_list(paths: list, specs: list) -> dict:
    """{"tensors": [{"name", "bytes"}]} of the checkpoint, in file order, once the formats are
    known to be valid: the page shares the tensors out among its workers."""
    def work():
        from quantcalc.scan import model_scan as scan

        scan.formats_from_specs(list(specs))
        model = checkpoint.open_checkpoint(list(paths))
        return {"tensors": [{"name": e.name, "bytes": e.nbytes} for e in model.tensors]}
    return guarded(work)


def scan_model(paths: list, specs: list, imatrix_path=None, whole_values=None,
               on_row=None, on_progress=None, names=None) -> dict:
    """{"document"}: every tensor of the checkpoint in `paths` (files, or the folder they are
    mounted in), or those in `names`, under every format of `specs`; `on_row(row)` hears each
    row as it is done and `on_progress(state)` how far the scan has come."""
    def work():
        from quantcalc.scan import model_scan as scan
        from quantcalc.scan import jobs as scan_jobs

        formats = scan.formats_from_specs(list(specs))
        model = checkpoint.open_checkpoint(list(paths))
        importance = None
        if imatrix_path:
            try:
                importance = scan_jobs.importance_from_path(str(imatrix_path))
            except QuantcalcError as exc:
                raise QuantcalcError(exc.message, "imatrix") from None
        tell_row = None if on_row is None else (lambda row: on_row(report.to_jsonable(row)))
        budget = PAGE_WHOLE_VALUES if whole_values is None else int(whole_values)
        doc = scan.scan(model, formats, importance, budget, on_row=tell_row,
                        on_progress=on_progress, names=None if names is None else set(names))
        return {"document": report.to_jsonable(doc)}
    return guarded(work)


def scan_document(paths: list, specs: list, rows: list) -> dict:
    """{"document"} of rows scanned in parts (the page's workers each scan some tensors): in
    file order, with the totals, exactly as one scan of them all would give."""
    def work():
        from quantcalc.scan import model_scan as scan

        formats = scan.formats_from_specs(list(specs))
        model = checkpoint.open_checkpoint(list(paths))
        order = {e.name: i for i, e in enumerate(model.tensors)}
        plain = scan.rows_from_plain(rows)
        plain.sort(key=lambda row: order[row["name"]])
        return {"document": report.to_jsonable(scan.document(model, formats, plain))}
    return guarded(work)


def scan_figures(document: dict, heatmap_index: int = 0, on_figure=None) -> dict:
    """The scan's figures as SVG text, streamed like figures_svg; the page keeps the document
    (it survives a restarted worker and a reload) and sends it back."""
    def work():
        from quantcalc.scan import model_scan as scan
        from quantcalc.scan import figures as drawn

        doc = scan.from_plain(document)
        rendered = drawn.render(doc, "svg", int(heatmap_index),
                                as_svg_text(on_figure, drawn.TITLES))
        return {"figures": {k: v.decode("utf-8") for k, v in rendered.items()},
                "titles": dict(drawn.TITLES)}
    return guarded(work)


def scan_export(document: dict, kind: str) -> dict:
    """{"bytes", "mime"} of the scan as csv, json or pdf."""
    def work():
        from quantcalc.scan import model_scan as scan
        from quantcalc.scan import report as scan_report

        if kind not in SCAN_EXPORTS:
            raise QuantcalcError(f"unknown report {kind!r}", "download")
        return {"bytes": scan_report.EXPORTS[kind](scan.from_plain(document)),
                "mime": SCAN_EXPORTS[kind]}
    return guarded(work)
