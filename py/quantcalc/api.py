"""The facade: the only functions the page's worker and the command line call.

Each call takes a plain configuration dict and a plain source dict and returns plain data
(numbers, strings, lists, bytes, numpy arrays), so the same call gives the same answer from
CPython and from Pyodide. One analysis serves a whole request: `analyze` keeps its Result under
the `analysis_id` the caller gives, and the figures and downloads that follow pass the same id
to reuse it instead of reading the file and quantizing again (the last few are kept).

A source is one of:
  {"text": "-1.25, -0.92, ..."}                                        pasted values
  {"file_path": "/input/1/w.safetensors", "tensor": "layer.weight"}   a file (the page's worker
                                                                       mounts the user's File)
  {"file_name": "w.npy", "file_bytes": b"..."}                         bytes in memory
  {"checkpoint": ["/scan/1/model.safetensors.index.json", ...],
   "tensor": "model.layers.0.mlp.down_proj.weight"}                    one tensor of a scanned
                                                                       checkpoint, read by offset
and optionally "imatrix": {"file_path" | "file_bytes", "file_name", "entry", "expert"}, llama.cpp's
importance matrix for the tensor (entry: its name there; by default the tensor's own name).
Errors are returned, not raised, as {"error": {"kind", "message", "field"}}.
"""

import importlib
import math
import os
import stat
import traceback
from collections import OrderedDict

from quantcalc.engine import analysis
from quantcalc.readers import checkpoint
from quantcalc.engine import compare as comparison
from quantcalc.readers import imatrix
from quantcalc.readers import text as inputs
from quantcalc.reports import tables as report
from quantcalc.engine import verdict
from quantcalc.engine.config import Config
from quantcalc.errors import QuantcalcError

MAX_TABLE_VALUES = analysis.DEFAULT_KEEP
# files read by offset, the chosen tensor only (headers first), not whole
BY_OFFSET = (".safetensors", ".gguf")
KEPT_ANALYSES = 2  # the one shown, and the one before it whose figures may still be drawing
_kept = OrderedDict()
EXPORTS = {
    "csv": report.per_value_csv,
    "summary_csv": report.summary_csv,
    "json": report.summary_json,
    "pdf": report.pdf,
}


def _file_bytes(source: dict):
    if source.get("file_bytes") is not None:
        return bytes(source["file_bytes"]), str(source.get("file_name") or "file")
    path = str(source["file_path"])
    name = str(source.get("file_name") or os.path.basename(path) or "file")
    try:
        with open(path, "rb") as stream:
            # the size is checked before reading: /dev/zero (or a link to it named x.npy) is
            # endless, and a pipe has no size to check
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                raise QuantcalcError(f"{name} is not a regular file (a device, pipe or "
                                     f"folder); give a file, or - to read text on stdin", "file")
            return stream.read(), name
    except OSError as exc:
        raise QuantcalcError(f"cannot read {name}: {exc.strerror}", "file") from None


def _read_by_offset(source: dict):
    """The path of a file source whose tensors are read by offset (BY_OFFSET types), or None
    for a file read whole (or bytes in memory)."""
    path = source.get("file_path")
    if path is None or source.get("file_bytes") is not None:
        return None
    return str(path) if str(source.get("file_name") or path).lower().endswith(BY_OFFSET) \
        else None


def load(source: dict):
    """The source's values as a finite float array; raises QuantcalcError."""
    if not isinstance(source, dict):
        raise QuantcalcError("no values given", "values")
    if source.get("checkpoint"):
        entry = checkpoint.open_checkpoint(list(source["checkpoint"])).get(source.get("tensor"))
        return inputs.check_finite(checkpoint.SlabReader(entry).read_all(), "file")
    path = _read_by_offset(source)
    if path is not None:
        values = checkpoint.read_tensor(path, source.get("tensor") or None)
        return inputs.check_finite(values, "file")
    if source.get("file_bytes") is not None or source.get("file_path") is not None:
        data, name = _file_bytes(source)
        values = inputs.parse_file(data, name, source.get("tensor") or None)
        return inputs.check_finite(values, "file")
    text = source.get("text")
    if text is None or not str(text).strip():
        raise QuantcalcError("enter some sample values or choose a file", "values")
    return inputs.check_finite(inputs.parse_text(str(text)), "values")


def run(config: dict, source: dict, keep: int = MAX_TABLE_VALUES, progress=None):
    """Parse the configuration and the values, and analyse them; raises QuantcalcError."""
    cfg = Config.from_dict(config)
    if progress is not None:
        progress("reading", 0.0)
    values = load(source)
    importance = load_importance(source, values, cfg)
    result = analysis.analyze(values, cfg, keep=keep, progress=progress, importance=importance)
    if progress is not None:
        progress("advising", 1.0)  # hints may run another setting or two on the same values
    try:
        result.hints = verdict.hints(values, result, importance)
    except MemoryError:  # a hint needs a copy of |x|: it must never cost the result itself
        result.hints = []
    return result


def load_importance(source: dict, values, config):
    """The importance weights of the source's tensor from its imatrix file, or None."""
    spec = source.get("imatrix") if isinstance(source, dict) else None
    if not spec:
        return None
    try:
        data, name = _file_bytes(spec)
    except QuantcalcError as exc:
        raise QuantcalcError(exc.message, "imatrix") from None
    matrix = imatrix.read(data, name)
    entry = spec.get("entry") or source.get("tensor") or config.name
    columns = values.shape[-1] if values.ndim else 1
    expert = spec.get("expert")
    return matrix.for_tensor(str(entry), columns, None if expert in (None, "") else int(expert))


def describe_imatrix(spec: dict) -> dict:
    """The entries of an importance matrix file, for the page's chooser."""
    def work():
        matrix = imatrix.read(*_file_bytes(spec))
        return {"entries": matrix.names(), "chunk_count": matrix.chunk_count,
                "datasets": matrix.datasets}
    return _guarded(work)


def _kept_or_made(kept: OrderedDict, key, make):
    """The value kept under `key`, or make() kept under it (the last KEPT_ANALYSES stay)."""
    if key is not None and key in kept:
        return kept[key]
    value = make()
    if key is not None:
        kept[key] = value
        while len(kept) > KEPT_ANALYSES:
            kept.popitem(last=False)
    return value


def _result(config, source, analysis_id, progress=None):
    """The analysis kept under `analysis_id`, or a new one (kept under it)."""
    return _kept_or_made(_kept, analysis_id, lambda: run(config, source, progress=progress))


def _guarded(work):
    """Run `work()`; turn any failure into the error dict the page shows at a field."""
    try:
        return work()
    except QuantcalcError as exc:
        return {"error": exc.to_dict()}
    except MemoryError:
        return {"error": {"kind": "memory", "field": "values",
                          "message": "not enough memory for this tensor; try a smaller one"}}
    except Exception as exc:  # a bug: say so plainly, keep the trace for the console
        return {"error": {"kind": "internal", "field": "values",
                          "message": f"internal error: {type(exc).__name__}: {exc}",
                          "trace": traceback.format_exc()}}


def analyze(config: dict, source: dict, analysis_id=None, on_progress=None) -> dict:
    """Numbers only (no matplotlib): summary, notes and the per-value arrays for the table.
    With an `analysis_id` the result is kept for the figures and downloads that follow;
    `on_progress(phase, fraction)` hears how far a long analysis has come."""
    def work():
        _kept.pop(analysis_id, None)  # a new request under an old id computes afresh
        result = _result(config, source, analysis_id, on_progress)
        pv = result.per_value
        summary = result.summary()
        return {
            "summary": report.to_jsonable(summary),
            "headline": report.to_jsonable(verdict.headline(summary)),
            "per_value": {"original": pv.original, "codes": pv.codes,
                          "dequantized": pv.dequantized, "error": pv.error,
                          "clipped": pv.clipped.view("uint8")},
        }
    return _guarded(work)


def figures_svg(config: dict, source: dict, analysis_id=None, on_figure=None) -> dict:
    """{"figures": {name: svg text}, "titles": {name: title}} of the same analysis.

    `on_figure(name, title, svg_text, pointer_map)`, if given, is called as each figure is
    ready (the page passes a function that shows it at once; figures.pointer_map says what
    pointer_map holds).
    """
    def work():
        from quantcalc.reports import figures  # matplotlib loads only when figures are first asked for

        rendered = figures.render(_result(config, source, analysis_id), "svg",
                                  on_figure=_as_svg_text(on_figure, figures.TITLES))
        return {"figures": {k: v.decode("utf-8") for k, v in rendered.items()},
                "titles": dict(figures.TITLES)}
    return _guarded(work)


def _as_svg_text(on_figure, titles):
    """Adapt the page's on_figure(name, title, svg_text, pointer_map) to render's
    on_figure(name, bytes, pointer_map)."""
    if on_figure is None:
        return None
    return lambda name, data, where: on_figure(name, titles[name], data.decode("utf-8"),
                                               report.to_jsonable(where))


def readout(config: dict, source: dict, analysis_id, x) -> dict:
    """The code and reconstruction of one value x under the analysis' first segment: what the
    page shows under the pointer on the histogram and the transfer figure."""
    def work():
        from quantcalc.reports import figures
        value = float(x)
        if not math.isfinite(value):
            raise QuantcalcError("the pointer is outside the figure", "figures")
        return figures.readout(_result(config, source, analysis_id), value)
    return _guarded(work)


def prepare_figures(theme=None) -> dict:
    """Import matplotlib and set up its fonts now, while the user reads the numbers; figures
    are drawn for a "light" or "dark" page (set_figure_theme changes it)."""
    def work():
        figures = importlib.import_module("quantcalc.reports.figures")  # importing is the work
        figures.set_theme(theme or "light")
        return {"ready": True}
    return _guarded(work)


def set_figure_theme(theme: str) -> dict:
    """Draw the figures that follow for a "light" or "dark" page."""
    def work():
        try:  # figures.PALETTES knows the themes
            importlib.import_module("quantcalc.reports.figures").set_theme(theme)
        except ValueError as exc:
            raise QuantcalcError(f"{exc}: light or dark", "theme") from None
        return {"theme": theme}
    return _guarded(work)


def export(config: dict, source: dict, kind: str, analysis_id=None) -> dict:
    """{"bytes": ..., "mime": ...} of one report: csv, summary_csv, json or pdf."""
    def work():
        if kind not in EXPORTS:
            raise QuantcalcError(f"unknown report {kind!r}", "download")
        data = EXPORTS[kind](_result(config, source, analysis_id))
        mime = "application/pdf" if kind == "pdf" else (
            "application/json" if kind == "json" else "text/csv")
        return {"bytes": data, "mime": mime}
    return _guarded(work)


def describe_file(source: dict) -> dict:
    """Names of the arrays in a multi-tensor file, so the page can offer a chooser."""
    path = _read_by_offset(source)
    if path is not None:
        return _guarded(lambda: _described([(e.name, e.shape, e.dtype) for e in
                                            checkpoint.open_checkpoint([path]).tensors]))
    return _guarded(lambda: _described(inputs.tensor_details(*_file_bytes(source))))


def _described(details):
    """{"tensors": names, "details": "4096 × 4096 BF16" per name} for the page's chooser."""
    return {"tensors": [name for name, _, _ in details],
            "details": ["" if shape is None else
                        f"{' × '.join(map(str, shape)) or 'scalar'} {dtype}"
                        for _, shape, dtype in details]}


def compare_presets() -> dict:
    """The ready sets of configurations: {preset: {"title", "configs": [{"spec", "label"}]}}."""
    return {name: {"title": comparison.PRESET_TITLES[name],
                   "configs": [{"spec": spec, "label": comparison.label_of(
                       comparison.parse_spec(spec))} for spec in specs]}
            for name, specs in comparison.PRESETS.items()}


_kept_comparisons = OrderedDict()


def _compared(source, specs, name, comparison_id=None):
    """(rows, skipped, sweep) of a comparison; kept under `comparison_id` like analyses, so its
    figures and downloads do not run every configuration again."""
    def make():
        values = load(source)
        skipped, notes = [], []
        rows = comparison.compare(values, list(specs), str(name or "tensor"), skipped, notes)
        return rows, skipped, comparison.bit_sweep(values), notes
    return _kept_or_made(_kept_comparisons, comparison_id, make)


def compare(source: dict, specs: list, name: str = "tensor", comparison_id=None) -> dict:
    """{"rows", "sweep", "skipped", "notes"}: each configuration's metrics, the integer sweep,
    the configurations that do not fit these values with the reason, and notes on the whole."""
    def work():
        _kept_comparisons.pop(comparison_id, None)
        rows, skipped, sweep, notes = _compared(source, specs, name, comparison_id)
        return report.to_jsonable({"rows": rows, "sweep": sweep, "skipped": skipped,
                                   "notes": notes, "choices": comparison.choices(rows)})
    return _guarded(work)


def compare_figures(source: dict, specs: list, name: str = "tensor", comparison_id=None,
                    on_figure=None) -> dict:
    """The SQNR-against-bits figure and the sweep, as SVG text (streamed like figures_svg)."""
    def work():
        from quantcalc.reports import figures

        rows, _, sweep, _ = _compared(source, specs, name, comparison_id)
        rendered = figures.render_each(
            {"tradeoff": lambda: figures.tradeoff_figure(rows),
             "sweep": lambda: figures.sweep_figure(sweep)},
            "svg", _as_svg_text(on_figure, figures.COMPARE_TITLES))
        return {"figures": {k: v.decode("utf-8") for k, v in rendered.items()},
                "titles": dict(figures.COMPARE_TITLES)}
    return _guarded(work)


def compare_export(source: dict, specs: list, name: str, kind: str, comparison_id=None) -> dict:
    """{"bytes", "mime"} of the comparison as csv or pdf."""
    def work():
        rows, _, sweep, _ = _compared(source, specs, name, comparison_id)
        if kind == "csv":
            return {"bytes": report.compare_csv(rows), "mime": "text/csv"}
        if kind == "pdf":
            return {"bytes": report.compare_pdf(rows, sweep, name),
                    "mime": "application/pdf"}
        raise QuantcalcError(f"unknown report {kind!r}", "download")
    return _guarded(work)


# ---------------------------------------------------------------- model scan
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
    return _guarded(work)


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
    return _guarded(work)


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
    return _guarded(work)


def scan_figures(document: dict, heatmap_index: int = 0, on_figure=None) -> dict:
    """The scan's figures as SVG text, streamed like figures_svg; the page keeps the document
    (it survives a restarted worker and a reload) and sends it back."""
    def work():
        from quantcalc.scan import model_scan as scan
        from quantcalc.scan import figures as drawn

        doc = scan.from_plain(document)
        rendered = drawn.render(doc, "svg", int(heatmap_index),
                                _as_svg_text(on_figure, drawn.TITLES))
        return {"figures": {k: v.decode("utf-8") for k, v in rendered.items()},
                "titles": dict(drawn.TITLES)}
    return _guarded(work)


def scan_export(document: dict, kind: str) -> dict:
    """{"bytes", "mime"} of the scan as csv, json or pdf."""
    def work():
        from quantcalc.scan import model_scan as scan
        from quantcalc.scan import report as scan_report

        if kind not in SCAN_EXPORTS:
            raise QuantcalcError(f"unknown report {kind!r}", "download")
        return {"bytes": scan_report.EXPORTS[kind](scan.from_plain(document)),
                "mime": SCAN_EXPORTS[kind]}
    return _guarded(work)


# ---------------------------------------------------------------- bit-budget planner
_kept_plans = OrderedDict()


def plan(document: dict, options: dict, scan_id=None) -> dict:
    """{"plan"}: the plan for options {"target_bpw" | "target_size", "keep": [patterns],
    "minimum": {role: format}, "weighted"} over the scan document. What does not depend on the
    target (candidates, curve, presets) is kept per scan and settings, so moving the page's
    slider only allocates."""
    def work():
        from quantcalc.plan import allocate as planner
        from quantcalc.plan import report as plan_report
        from quantcalc.scan import model_scan as scan

        keep = [str(p) for p in options.get("keep") or [] if str(p).strip()]
        minimum = {str(k): str(v) for k, v in (options.get("minimum") or {}).items()}
        weighted = bool(options.get("weighted", True))
        key = None if scan_id is None else (scan_id, tuple(keep), tuple(sorted(minimum.items())),
                                            weighted)
        doc = scan.from_plain(document)
        prepared = _kept_or_made(_kept_plans, key, lambda: plan_report.prepare(
            doc, keep, minimum, weighted))
        size = options.get("target_size")
        result = plan_report.build(
            doc, target_bpw=None if options.get("target_bpw") in (None, "") else
            float(options["target_bpw"]),
            target_size=None if size in (None, "") else planner.parse_size(size),
            prepared=prepared)
        return {"plan": report.to_jsonable(result)}
    return _guarded(work)


def plan_figure(plan_document: dict, on_figure=None) -> dict:
    """The plan's figure (total error against bits per weight) as SVG text."""
    def work():
        from quantcalc.reports import figures
        from quantcalc.plan import report as plan_report

        titles = {"plan": "Total error against size"}
        rendered = figures.render_each({"plan": lambda: plan_report.figure(plan_document)},
                                       "svg", _as_svg_text(on_figure, titles))
        return {"figures": {k: v.decode("utf-8") for k, v in rendered.items()}, "titles": titles}
    return _guarded(work)


PLAN_EXPORTS = {"json": "application/json", "csv": "text/csv", "pdf": "application/pdf",
                "tensor_types": "text/plain"}


def plan_export(plan_document: dict, kind: str) -> dict:
    """{"bytes", "mime"} of the plan as json (the recipe), csv, pdf or tensor_types."""
    def work():
        from quantcalc.plan import report as plan_report

        if kind not in PLAN_EXPORTS:
            raise QuantcalcError(f"unknown report {kind!r}", "download")
        return {"bytes": plan_report.EXPORTS[kind](plan_document), "mime": PLAN_EXPORTS[kind]}
    return _guarded(work)
