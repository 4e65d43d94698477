"""Several configurations on one tensor, side by side: rows, figures and downloads."""

from collections import OrderedDict

from quantcalc.api import stored
from quantcalc.api.common import as_svg_text, exported, guarded, kept_or_made
from quantcalc.engine import compare as comparison
from quantcalc.reports import exports
from quantcalc.reports import tables as report


def compare_presets() -> dict:
    """The ready sets of configurations: {preset: {"title", "configs": [{"spec", "label"}]}}."""
    return {name: {"title": comparison.PRESET_TITLES[name],
                   "configs": [{"spec": spec, "label": comparison.label_of(
                       comparison.parse_spec(spec))} for spec in specs]}
            for name, specs in comparison.PRESETS.items()}


_kept_comparisons = OrderedDict()


def _compared(source, specs, name, comparison_id=None, sweep=True) -> dict:
    """The comparison {"name", "rows", "sweep", "skipped", "notes"} (the document its reports
    are made from); kept under `comparison_id` like analyses, so its figures and downloads do not
    run every configuration again. `sweep`: also the integer format at 2..16 bits (the page
    always shows it; the command line on --sweep)."""
    def make():
        loaded = stored.load(source)
        values = loaded.values
        skipped, notes = [], []
        tensor_name = str(name or "tensor")
        rows = comparison.compare(values, list(specs), tensor_name, skipped, notes)
        notes[:0] = loaded.notes  # dequantized values, or integers the scan keeps as stored
        return {"name": tensor_name, "rows": rows,
                "sweep": comparison.bit_sweep(values) if sweep else None,
                "skipped": skipped, "notes": notes}
    return kept_or_made(_kept_comparisons, comparison_id, make)


def compare(source: dict, specs: list, name: str = "tensor", comparison_id=None, *,
            sweep=True) -> dict:
    """{"rows", "sweep", "skipped", "notes", "choices"}: each configuration's metrics, the
    integer sweep, the configurations that do not fit these values with the reason, notes on the
    whole, and the best configuration at each common size."""
    def work():
        _kept_comparisons.pop(comparison_id, None)
        done = _compared(source, specs, name, comparison_id, sweep)
        return report.to_jsonable({key: done[key] for key in ("rows", "sweep", "skipped",
                                                              "notes")}
                                  | {"choices": comparison.choices(done["rows"])})
    return guarded(work)


def compare_figures(source: dict, specs: list, name: str = "tensor", comparison_id=None,
                    on_figure=None) -> dict:
    """The SQNR-against-bits figure and the sweep, as SVG text (streamed like figures_svg)."""
    def work():
        from quantcalc.reports import compare_figures, figures

        done = _compared(source, specs, name, comparison_id)
        rendered = figures.render_each(
            {"tradeoff": lambda: compare_figures.tradeoff_figure(done["rows"]),
             "sweep": lambda: compare_figures.sweep_figure(done["sweep"])},
            "svg", as_svg_text(on_figure, compare_figures.COMPARE_TITLES))
        return {"figures": {k: v.decode("utf-8") for k, v in rendered.items()},
                "titles": dict(compare_figures.COMPARE_TITLES)}
    return guarded(work)


def compare_export(source: dict, specs: list, name: str, kind: str, comparison_id=None, *,
                   sweep=True) -> dict:
    """{"bytes", "mime"} of one report of exports.COMPARISON: csv, json, pdf, or text (the
    command line's table)."""
    return guarded(lambda: exported(exports.COMPARISON, kind, lambda: _compared(
        source, specs, name, comparison_id, sweep)))
