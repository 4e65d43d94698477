"""A whole checkpoint, every tensor under every chosen format: listing, scanning (here, in parts
as the page's workers do, in worker processes or on a Dask cluster), figures and downloads."""

import os

from quantcalc.api import model_facts, requantize
from quantcalc.api.common import as_svg_text, exported, guarded, read_document
from quantcalc.errors import QuantcalcError
from quantcalc.readers import checkpoint, file_parts
from quantcalc.reports import exports
from quantcalc.reports import tables as report
from quantcalc.scan import model_scan as scan

PAGE_WHOLE_VALUES = 1 << 24  # the page streams tensors of more than 16M values (64 MB float32)
WHOLE_VALUES = scan.WHOLE_VALUES  # the command line's budget: 64M values (256 MB float32)


def scan_list(paths: list, specs: list) -> dict:
    """{"tensors": [{"name", "bytes"}]} of the checkpoint, in file order, once the formats are
    known to be valid: the page shares the tensors out among its workers."""
    def work():
        scan.formats_from_specs(list(specs))
        model = checkpoint.open_checkpoint(list(paths))
        return {"tensors": [{"name": e.name, "bytes": e.nbytes} for e in model.tensors]}
    return guarded(work)


def scan_model(paths: list, specs: list, imatrix_path=None, whole_values=None,
               on_row=None, on_progress=None, names=None, *, jobs=1, dask=None,
               allow_requantize=False, estimate_db=None, estimate_seed=0) -> dict:
    """{"document", "interrupted"}: every tensor of the checkpoint in `paths` (files, or the
    folder they are mounted in), or those in `names`, under every format of `specs`.

    `whole_values`: tensors with more values are streamed in slabs (None: the page's budget);
    `on_row(row)` hears each row as it is done and `on_progress(state)` how far the scan has
    come. `jobs` > 1 runs one task per tensor in that many worker processes, `dask` (a
    scheduler's address) on a Dask cluster whose workers see the files at the same paths; the
    rows are those of a scan here (at most one process per tensor and per core: `workers`).
    `allow_requantize`: measure already-quantized tensors on their dequantized values
    (api/requantize.py). The document's "model" holds the architecture and block count
    (api/model_facts.py). `estimate_db`: estimate each error from a sample of rows until its
    95 % interval is within ±estimate_db dB (`estimate_seed` draws the sample), recorded in the
    document's "estimate"; None for exact results.
    Ctrl-C (KeyboardInterrupt) ends the scan early: the document then holds the tensors done and
    says so in its field "interrupted": {"tensors_done", "tensors_total"}, which every report
    of it shows; the reply's "interrupted" is True.
    """
    def work():
        formats = scan.formats_from_specs(list(specs))
        model = checkpoint.open_checkpoint(list(paths))
        chosen = _known_names(model, names)
        requantized = set()
        if allow_requantize:
            model, requantized = requantize.allowing_requantize(model)
        elsewhere = bool(dask) or int(jobs) > 1
        importance = None if elsewhere else _importance(imatrix_path)
        done = []

        def tell_row(row):
            done.append(requantize.mark(row, requantized))
            if on_row is not None:
                on_row(report.to_jsonable(row))

        target = _estimate_target(estimate_db, estimate_seed)
        common = dict(whole_values=PAGE_WHOLE_VALUES if whole_values is None
                      else int(whole_values), on_row=tell_row, on_progress=on_progress,
                      names=chosen, estimate=target)
        total = len(model.tensors) if chosen is None else len(chosen)
        try:
            if elsewhere:
                doc = _scan_as_tasks(model, list(specs), imatrix_path, workers(jobs, total),
                                     dask, common)
            else:
                doc = scan.scan(model, formats, importance, **common)
        except KeyboardInterrupt:  # the reports of the tensors done are still worth writing,
            # and each says it holds only those (scan/report.py)
            doc = report.to_jsonable(_described(_in_file_order(model, formats, done), paths,
                                                model, allow_requantize, target))
            doc["interrupted"] = {"tensors_done": len(done), "tensors_total": total}
            return {"document": doc, "interrupted": True}
        return {"document": report.to_jsonable(_described(doc, paths, model, allow_requantize,
                                                          target)),
                "interrupted": False}
    return guarded(work)


def _estimate_target(db, seed):
    """The estimated.Target of `estimate_db` and `estimate_seed` (None: exact), checked."""
    if db is None:
        return None
    from quantcalc.scan.estimated import Target
    try:
        db, seed = float(db), int(seed)
    except (TypeError, ValueError):
        raise QuantcalcError(f"the estimate's half-width must be a number of dB, got "
                             f"'{db}'", "estimate") from None
    if not 0.001 <= db <= 10.0:
        raise QuantcalcError(f"the estimate's half-width must be between 0.001 and 10 dB, got "
                             f"{db:g}", "estimate")
    if not 0 <= seed < 2 ** 63:
        raise QuantcalcError(f"the estimate's seed must be a whole number from 0, got {seed}",
                             "estimate")
    return Target(db, seed)


def _described(doc, paths, model, allow_requantize=False, target=None) -> dict:
    """The scan document with what it says about the model: its architecture and blocks,
    whether quantized tensors were measured on their dequantized values, and whether (and how)
    its errors were estimated from samples."""
    doc["model"] = model_facts.model_facts(paths, model)
    if allow_requantize:
        doc["allow_requantize"] = True
    if target is not None:
        doc["estimate"] = {"db": target.db, "seed": target.seed}
    return doc


def workers(jobs, tensors) -> int:
    """Worker processes for `jobs` asked: no more than the tensors to scan, nor the cores
    (os.cpu_count()); at least one."""
    return max(1, min(int(jobs), int(tensors), os.cpu_count() or 1))


def scan_inputs(paths: list, names=None) -> dict:
    """{"files", "tensors", "quantized", "plan_refusal"}: every file a scan of `paths` reads (the
    files given, a folder's shard index, the data files, the parts of a file mounted in parts),
    how many tensors it scans (those in `names`, or all), how many of those are stored
    quantized, and why a plan of it would have nothing to plan without --allow-requantize (or
    None). Headers only: the command line checks its outputs against these files, sizes its
    worker pool and refuses a plan before any work."""
    def work():
        model = checkpoint.open_checkpoint(list(paths))
        chosen = _known_names(model, names)
        given = [str(p) for p in paths]
        files = [p for p in given if os.path.isfile(p)]
        for folder in (p for p in given if os.path.isdir(p)):
            files += [os.path.join(folder, n) for n in sorted(os.listdir(folder))
                      if n.lower().endswith(".index.json")]
        for path, _ in model.files:
            parts = None if os.path.exists(path) else file_parts.parts_of(path)
            files += [path] if parts is None else [part for part, _ in parts]
        scanned = [e for e in model.tensors if chosen is None or e.name in chosen]
        return {"files": list(dict.fromkeys(files)), "tensors": len(scanned),
                "quantized": sum(1 for e in scanned if e.quantized),
                "plan_refusal": _plan_refusal(model, scanned)}
    return guarded(work)


def _plan_refusal(model, scanned):
    """The plan's one-line refusal of a checkpoint whose matrices are all already quantized
    (plan/kept.py), or None."""
    from quantcalc.plan import kept, llama_quantize

    # in a GGUF, a float matrix llama-quantize never quantizes (BERT's position_embd, an MoE
    # router) leaves nothing to plan either
    gguf = all(path.lower().endswith(".gguf") for path, _ in model.files)
    if any(e.readable and len(e.shape) >= 2 and (not gguf or llama_quantize.quantizes(
            e.name, llama_quantize.ggml_dims(e.shape))) for e in scanned):
        return None
    counts = {}
    for entry in scanned:
        if entry.quantized:
            counts[entry.dtype] = counts.get(entry.dtype, 0) + 1
    if not counts:
        return None
    names = [os.path.basename(path) for path, _ in model.files]
    return kept.refusal(counts, names[0] if len(names) == 1 else None)


def _known_names(model, names):
    """`names` as a set (None: every tensor), each checked: an unknown name is an error that
    lists the real ones."""
    if names is None:
        return None
    chosen, known = set(names), {e.name for e in model.tensors}
    for name in chosen - known:
        model.get(name)  # raises, naming the tensors there are
    return chosen


def _importance(imatrix_path):
    """The lookup of the importance matrix at `imatrix_path` (read once), or None."""
    if not imatrix_path:
        return None
    from quantcalc.scan import jobs as scan_jobs

    try:
        return scan_jobs.importance_from_path(str(imatrix_path))
    except QuantcalcError as exc:
        raise QuantcalcError(exc.message, "imatrix") from None
    except OSError as exc:
        raise QuantcalcError(f"cannot read {imatrix_path}: {exc.strerror}", "imatrix") from None


def _scan_as_tasks(model, specs, imatrix_path, jobs, dask, common) -> dict:
    """The scan as one task per tensor, in `jobs` worker processes or on the Dask cluster at
    `dask` (each task reads its tensor, and the importance matrix, from the same paths)."""
    from quantcalc.scan import jobs as scan_jobs

    if not dask:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        with ProcessPoolExecutor(jobs) as pool:
            return scan_jobs.scan_parallel(model, specs, pool.submit, as_completed,
                                           imatrix_path, **common)
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise QuantcalcError("--dask needs dask.distributed: pip install 'quantcalc[dask]'",
                             "dask") from None
    try:
        client = Client(dask)
    except OSError as exc:  # no scheduler there, or it did not answer in time
        raise QuantcalcError(f"cannot reach the Dask scheduler at {dask}: {exc}", "dask") from None
    with client:
        return scan_jobs.scan_parallel(model, specs, client.submit, as_completed, imatrix_path,
                                       **common)


def _in_file_order(model, formats, rows) -> dict:
    """The scan document of `rows` (done in any order) in file order, with their totals."""
    order = {e.name: i for i, e in enumerate(model.tensors)}
    return scan.document(model, formats, sorted(rows, key=lambda row: order.get(
        row.get("name"), len(order))))


def scan_document(paths: list, specs: list, rows: list, allow_requantize=False,
                  estimate_db=None, estimate_seed=0) -> dict:
    """{"document"} of rows scanned in parts (the page's workers each scan some tensors): in
    file order, with the totals, exactly as one scan of them all would give."""
    def work():
        formats = scan.formats_from_specs(list(specs))
        model = checkpoint.open_checkpoint(list(paths))
        if allow_requantize:  # the document's notes say so, as one scan of them all does
            model, _ = requantize.allowing_requantize(model)
        plain = scan.rows_from_plain(rows)
        return {"document": report.to_jsonable(_described(
            _in_file_order(model, formats, plain), paths, model, allow_requantize,
            _estimate_target(estimate_db, estimate_seed)))}
    return guarded(work)


def read_scan(path) -> dict:
    """{"document"}: the scan `quantcalc scan --json PATH` wrote to `path`."""
    return guarded(lambda: {"document": read_document(path, "scan", "a scan's")})


def scan_figures(document: dict, heatmap_index: int = 0, on_figure=None) -> dict:
    """The scan's figures as SVG text, streamed like figures_svg; the page keeps the document
    (it survives a restarted worker and a reload) and sends it back."""
    def work():
        from quantcalc.scan import figures as drawn

        doc = scan.from_plain(document)
        rendered = drawn.render(doc, "svg", int(heatmap_index),
                                as_svg_text(on_figure, drawn.TITLES))
        return {"figures": {k: v.decode("utf-8") for k, v in rendered.items()},
                "titles": dict(drawn.TITLES)}
    return guarded(work)


def scan_export(document: dict, kind: str) -> dict:
    """{"bytes", "mime"} of one report of exports.SCAN: csv, json, pdf, or text (the command
    line's summary)."""
    return guarded(lambda: exported(exports.SCAN, kind, lambda: scan.from_plain(document)))
