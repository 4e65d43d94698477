"""A quantized checkpoint against its original: listing the pairs, measuring them (here, in parts
as the page's workers do, in worker processes or on a Dask cluster), figures and downloads.

Plain data in and out, as every facade call: `original` and `quantized` are each a list of paths
(files, shards, an index, a folder, or the page's WORKERFS mount), rows stream through
`on_row(row)` as they finish and progress through `on_progress(state)` (the scan's keys: bytes,
total_bytes, tensors, total_tensors, bytes_per_second, seconds_left, seconds).
"""

import os

from quantcalc.api.common import as_svg_text, exported, guarded, read_document
from quantcalc.errors import QuantcalcError
from quantcalc.reports import exports
from quantcalc.reports import tables as report

PAGE_SLAB_VALUES = 1 << 20  # the page's worker: as the command line, 4 MB float32 slabs


def _opened(original, quantized):
    from quantcalc.audit import pairing

    return pairing.open_side(list(original), "original"), \
        pairing.open_side(list(quantized), "quantized")


def _paired(original, quantized, names=None):
    """(original side, quantized side, pairs (those named in `names`, or all), facts)."""
    from quantcalc.audit import pairing

    o_side, q_side = _opened(original, quantized)
    pairs, facts = pairing.pair_sides(o_side, q_side)
    if names is not None:
        known = {p.name for p in pairs}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise QuantcalcError(f"the audit has no tensor named '{str(unknown[0])[:60]}'",
                                 "tensor")
        chosen = set(names)
        pairs = [p for p in pairs if p.name in chosen]
    return o_side, q_side, pairs, facts


def audit_list(original: list, quantized: list) -> dict:
    """{"tensors": [{"name", "original_name", "bytes", "measured"}], "architecture"}: every row
    the audit will have, in its order, and how many bytes each reads (0 for a tensor on one
    side only): the page shares the measured ones out among its workers."""
    def work():
        _, _, pairs, facts = _paired(original, quantized)
        return {"tensors": [{"name": p.name, "original_name": p.original_name,
                             "bytes": 0 if p.reason else _bytes(p), "measured": not p.reason}
                            for p in pairs], "architecture": facts["architecture"]}
    return guarded(work)


def _bytes(pair):
    return sum(getattr(h, "nbytes", 0) or 0 for h in (pair.original, pair.quantized))


def audit_inputs(original: list, quantized: list, imatrix_path=None) -> dict:
    """{"files", "tensors", "measured"}: every file the audit reads (so the command line can
    refuse an output that is one of them, before any work), and how many rows it makes."""
    def work():
        o_side, q_side, pairs, _ = _paired(original, quantized)
        files = []
        for side in (o_side, q_side):
            files += [p for p in side.paths if os.path.isfile(p)]
            files += [path for path, _ in side.checkpoint.files]
            for folder in (p for p in side.paths if os.path.isdir(p)):
                files += [os.path.join(folder, n) for n in sorted(os.listdir(folder))
                          if n.lower().endswith((".index.json", "config.json"))]
        if imatrix_path:
            files.append(str(imatrix_path))
        return {"files": list(dict.fromkeys(files)), "tensors": len(pairs),
                "measured": sum(1 for p in pairs if not p.reason)}
    return guarded(work)


def audit_model(original: list, quantized: list, imatrix_path=None, on_row=None,
                on_progress=None, names=None, *, slab_values=None, jobs=1, dask=None) -> dict:
    """{"document", "interrupted"}: every tensor of `quantized` against `original` (or those
    named in `names`, the quantized side's names as audit_list gives them).

    `imatrix_path`: llama.cpp's importance matrix, for the importance-weighted error and to
    try reproducing the file with it. `slab_values`: values per slab on each side (None: the
    page's). `jobs` > 1 measures in that many worker processes, `dask` (a scheduler's address)
    on a Dask cluster whose workers see the files at the same paths; the rows are those made
    here. Ctrl-C (KeyboardInterrupt) ends it early: the document then holds the rows done and
    says so in "interrupted": {"tensors_done", "tensors_total"}.
    """
    def work():
        from quantcalc.audit import document as audit_document, run

        o_side, q_side, pairs, facts = _paired(original, quantized, names)
        slab = PAGE_SLAB_VALUES if slab_values is None else int(slab_values)
        imatrix = _checked_imatrix(imatrix_path)
        done = []

        def tell(row):
            done.append(row)
            if on_row is not None:
                on_row(report.to_jsonable(row))

        common = dict(on_row=tell, on_progress=on_progress)
        try:
            if dask or int(jobs) > 1:
                rows = _as_tasks(pairs, imatrix, slab, jobs, dask, common)
            else:
                rows = run.measure_all(pairs, imatrix, slab, **common)
        except KeyboardInterrupt:
            order = {p.name: i for i, p in enumerate(pairs)}
            rows = sorted(done, key=lambda r: order.get(r["name"], len(order)))
            doc = audit_document.document(o_side, q_side, rows, facts, _name(imatrix))
            doc["interrupted"] = {"tensors_done": len(done), "tensors_total": len(pairs)}
            return {"document": report.to_jsonable(doc), "interrupted": True}
        doc = audit_document.document(o_side, q_side, rows, facts, _name(imatrix))
        return {"document": report.to_jsonable(doc), "interrupted": False}
    return guarded(work)


def _name(path):
    return None if not path else os.path.basename(str(path))


def _checked_imatrix(path):
    """The imatrix path, read once here so that a bad file is refused before any work."""
    if not path:
        return None
    from quantcalc.audit import run

    try:
        run.importance_from_path(str(path))
    except QuantcalcError as exc:
        raise QuantcalcError(exc.message, "imatrix") from None
    except OSError as exc:
        raise QuantcalcError(f"cannot read {path}: {exc.strerror}", "imatrix") from None
    return str(path)


def _as_tasks(pairs, imatrix, slab, jobs, dask, common):
    from quantcalc.api.scanning import workers
    from quantcalc.audit import run

    if not dask:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        measured = sum(1 for p in pairs if not p.reason)
        with ProcessPoolExecutor(workers(jobs, max(measured, 1))) as pool:
            return run.measure_parallel(pairs, pool.submit, as_completed, imatrix, slab,
                                        **common)
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise QuantcalcError("--dask needs dask.distributed: pip install 'quantcalc[dask]'",
                             "dask") from None
    try:
        client = Client(dask)
    except OSError as exc:
        raise QuantcalcError(f"cannot reach the Dask scheduler at {dask}: {exc}", "dask") from None
    with client:
        return run.measure_parallel(pairs, client.submit, as_completed, imatrix, slab, **common)


def audit_document(original: list, quantized: list, rows: list, imatrix_path=None) -> dict:
    """{"document"} of rows measured in parts (the page's workers each measure some tensors):
    in the audit's order, with the totals, exactly as one audit of them all would give. The
    rows of tensors that are not measured (on one side only, ...) are added where missing."""
    def work():
        from quantcalc.audit import document as audit_document, measure

        o_side, q_side, pairs, facts = _paired(original, quantized)
        order = {p.name: i for i, p in enumerate(pairs)}
        plain = audit_document.from_plain({"tensors": list(rows)})["tensors"]
        given = {r.get("name") for r in plain}
        plain += [measure.describe(p) for p in pairs if p.reason and p.name not in given]
        plain.sort(key=lambda r: order.get(r.get("name"), len(order)))
        doc = audit_document.document(o_side, q_side, plain, facts, _name(imatrix_path))
        return {"document": report.to_jsonable(doc)}
    return guarded(work)


def read_audit(path) -> dict:
    """{"document"}: the audit `quantcalc audit --json PATH` wrote to `path`."""
    return guarded(lambda: {"document": read_document(path, "audit", "an audit's")})


def _document(document):
    from quantcalc.audit import document as audit_document

    if not isinstance(document, dict) or not isinstance(document.get("tensors"), list):
        raise QuantcalcError("not an audit document", "audit")
    return audit_document.from_plain(document)


def audit_figures(document: dict, on_figure=None) -> dict:
    """The audit's figures as SVG text, streamed like scan_figures (the page keeps the document
    and sends it back)."""
    def work():
        from quantcalc.audit import report as audit_report

        rendered = audit_report.render(_document(document), "svg",
                                       as_svg_text(on_figure, audit_report.TITLES))
        return {"figures": {k: v.decode("utf-8") for k, v in rendered.items()},
                "titles": {k: audit_report.TITLES[k] for k in rendered}}
    return guarded(work)


def audit_export(document: dict, kind: str) -> dict:
    """{"bytes", "mime"} of one report of exports.AUDIT: csv, json, pdf, or text."""
    return guarded(lambda: exported(exports.AUDIT, kind, lambda: _document(document)))
