"""One tensor: its analysis, figures, pointer readout and downloads.

One analysis serves a whole request: `analyze` keeps its Result under the `analysis_id` the
caller gives, and the figures and downloads that follow pass the same id to reuse it instead of
reading the file and quantizing again (the last few are kept).
"""

import importlib
import math
from collections import OrderedDict

from quantcalc.api import stored
from quantcalc.api.common import as_svg_text, exported, guarded, kept_or_made
from quantcalc.engine import analysis, verdict
from quantcalc.engine.config import Config
from quantcalc.errors import QuantcalcError
from quantcalc.readers import sources
from quantcalc.readers import text as inputs
from quantcalc.readers.sources import load_importance
from quantcalc.reports import exports
from quantcalc.reports import tables as report

MAX_TABLE_VALUES = analysis.DEFAULT_KEEP
_kept = OrderedDict()


def run(config: dict, source: dict, keep: int = MAX_TABLE_VALUES, progress=None):
    """Parse the configuration and the values, and analyse them; raises QuantcalcError. A
    result is named after its tensor when the configuration gives no name."""
    if isinstance(config, dict) and isinstance(source, dict) and not config.get("name") \
            and source.get("tensor"):
        config = {**config, "name": str(source["tensor"])}
    cfg = Config.from_dict(config)
    if progress is not None:
        progress("reading", 0.0)
    loaded = stored.load(source)
    values = loaded.values
    importance = load_importance(source, values, cfg)
    result = analysis.analyze(values, cfg, keep=keep, progress=progress, importance=importance)
    result.stored_format = loaded.stored_format
    # what the values are (dequantized ones, not the original weights; integers the scan
    # leaves as stored) before what the analysis says of them
    result.notes[:0] = loaded.notes
    if progress is not None:
        progress("advising", 1.0)  # hints may run another setting or two on the same values
    try:
        result.hints = verdict.hints(values, result, importance)
    except MemoryError:  # a hint needs a copy of |x|: it must never cost the result itself
        result.hints = []
    return result


def conventions(config: dict, source: dict) -> dict:
    """Why do they differ? The same settings under every framework convention
    (engine/framework_differences.py): a row per convention, refused ones with the reason."""
    def work():
        from quantcalc.engine.framework_differences import differences
        Config.from_dict({**config, "convention": "exact"})  # a bad setting: its own message
        return differences(stored.load(source).values, config)
    return guarded(work)


def load(source: dict):
    """The values of a source as the calculator reads them (readers/sources.py); raises
    QuantcalcError. Listed in the facade (api/__init__.py), which named it without its
    definition."""
    return sources.load(source)


def describe_imatrix(spec: dict) -> dict:
    """The entries of an importance matrix file, for the page's chooser."""
    def work():
        from quantcalc.readers import imatrix

        matrix = imatrix.read(*sources.file_bytes(spec))
        return {"entries": matrix.names(), "chunk_count": matrix.chunk_count,
                "datasets": matrix.datasets}
    return guarded(work)


def _result(config, source, analysis_id, progress=None):
    """The analysis kept under `analysis_id`, or a new one (kept under it)."""
    return kept_or_made(_kept, analysis_id, lambda: run(config, source, progress=progress))


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
    return guarded(work)


def figures_svg(config: dict, source: dict, analysis_id=None, on_figure=None, names=None,
                log_counts=False) -> dict:
    """{"figures": {name: svg text}, "titles": {name: title}} of the same analysis.

    `on_figure(name, title, svg_text, pointer_map)`, if given, is called as each figure is
    ready (the page passes a function that shows it at once; figures.pointer_map says what
    pointer_map holds). `names` draws only those figures (all by default); `log_counts` draws
    the histogram's counts on a log axis (the page's "log count" control).
    """
    def work():
        from quantcalc.reports import figures  # matplotlib loads only when figures are first asked for

        rendered = figures.render(_result(config, source, analysis_id), "svg",
                                  names=tuple(names) if names else figures.FIGURE_NAMES,
                                  on_figure=as_svg_text(on_figure, figures.TITLES),
                                  log_counts=bool(log_counts))
        return {"figures": {k: v.decode("utf-8") for k, v in rendered.items()},
                "titles": dict(figures.TITLES)}
    return guarded(work)


def readout(config: dict, source: dict, analysis_id, x) -> dict:
    """The code and reconstruction of one value x under the analysis' first segment: what the
    page shows under the pointer on the histogram and the transfer figure."""
    def work():
        from quantcalc.reports import figures
        value = float(x)
        if not math.isfinite(value):
            raise QuantcalcError("the pointer is outside the figure", "figures")
        return figures.readout(_result(config, source, analysis_id), value)
    return guarded(work)


def prepare_figures(theme=None) -> dict:
    """Import matplotlib and set up its fonts now, while the user reads the numbers; figures
    are drawn for a "light" or "dark" page (set_figure_theme changes it)."""
    def work():
        figures = importlib.import_module("quantcalc.reports.figures")  # importing is the work
        figures.set_theme(theme or "light")
        return {"ready": True}
    return guarded(work)


def set_figure_theme(theme: str) -> dict:
    """Draw the figures that follow for a "light" or "dark" page."""
    def work():
        try:  # figures.PALETTES knows the themes
            importlib.import_module("quantcalc.reports.figures").set_theme(theme)
        except ValueError as exc:
            raise QuantcalcError(f"{exc}: light or dark", "theme") from None
        return {"theme": theme}
    return guarded(work)


def export(config: dict, source: dict, kind: str, analysis_id=None) -> dict:
    """{"bytes": ..., "mime": ...} of one report of exports.ANALYSIS: csv (per value),
    summary_csv, json, pdf, or text (the command line's table)."""
    return guarded(lambda: exported(exports.ANALYSIS, kind,
                                    lambda: _result(config, source, analysis_id)))


def describe_file(source: dict) -> dict:
    """Names of the arrays in a multi-tensor file, so the page can offer a chooser."""
    path = sources.read_by_offset(source)
    if path is not None:
        from quantcalc.readers import checkpoint  # files read by offset: loaded on first use

        return guarded(lambda: _described([(e.name, e.shape, e.dtype) for e in
                                            checkpoint.open_checkpoint([path]).tensors]))
    return guarded(lambda: _described(inputs.tensor_details(*sources.file_bytes(source))))


def _described(details):
    """{"tensors": names, "details": "4096 × 4096 BF16" per name} for the page's chooser."""
    return {"tensors": [name for name, _, _ in details],
            "details": ["" if shape is None else
                        f"{' × '.join(map(str, shape)) or 'scalar'} {dtype}"
                        for _, shape, dtype in details]}
