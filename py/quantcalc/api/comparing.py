"""Several configurations on one tensor, side by side: rows, figures and downloads."""

from collections import OrderedDict

from quantcalc.api.common import as_svg_text, guarded, kept_or_made
from quantcalc.engine import compare as comparison
from quantcalc.errors import QuantcalcError
from quantcalc.readers.sources import load
from quantcalc.reports import tables as report


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
    return kept_or_made(_kept_comparisons, comparison_id, make)


def compare(source: dict, specs: list, name: str = "tensor", comparison_id=None) -> dict:
    """{"rows", "sweep", "skipped", "notes"}: each configuration's metrics, the integer sweep,
    the configurations that do not fit these values with the reason, and notes on the whole."""
    def work():
        _kept_comparisons.pop(comparison_id, None)
        rows, skipped, sweep, notes = _compared(source, specs, name, comparison_id)
        return report.to_jsonable({"rows": rows, "sweep": sweep, "skipped": skipped,
                                   "notes": notes, "choices": comparison.choices(rows)})
    return guarded(work)


def compare_figures(source: dict, specs: list, name: str = "tensor", comparison_id=None,
                    on_figure=None) -> dict:
    """The SQNR-against-bits figure and the sweep, as SVG text (streamed like figures_svg)."""
    def work():
        from quantcalc.reports import figures

        rows, _, sweep, _ = _compared(source, specs, name, comparison_id)
        rendered = figures.render_each(
            {"tradeoff": lambda: figures.tradeoff_figure(rows),
             "sweep": lambda: figures.sweep_figure(sweep)},
            "svg", as_svg_text(on_figure, figures.COMPARE_TITLES))
        return {"figures": {k: v.decode("utf-8") for k, v in rendered.items()},
                "titles": dict(figures.COMPARE_TITLES)}
    return guarded(work)


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
    return guarded(work)
