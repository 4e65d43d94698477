"""The bit-budget plan over a scan document: the plan for a target, its figure and downloads."""

from collections import OrderedDict

from quantcalc.api.common import as_svg_text, exported, guarded, kept_or_made
from quantcalc.errors import QuantcalcError
from quantcalc.reports import exports
from quantcalc.reports import tables as report

_kept_plans = OrderedDict()


def plan(document: dict, options: dict, scan_id=None, name: str = "the scan") -> dict:
    """{"plan"}: the plan for options {"target_bpw" | "target_size", "keep": [patterns],
    "minimum": {role: format}, "weighted"} over the scan document. What does not depend on the
    target (candidates, curve, presets) is kept per scan and settings, so moving the page's
    slider only allocates. The document is checked first (plan/scan_checks.py): a hand-edited
    one is refused at its first bad place, `name` (its file) leading the message."""
    return guarded(lambda: {"plan": _planned(document, options, scan_id, name)})


def _planned(document, options, scan_id, name) -> dict:
    """The plan document (see plan); raises QuantcalcError."""
    if not isinstance(options, dict):
        raise QuantcalcError("the plan's options must be a mapping such as "
                             "{\"target_bpw\": 4.5}", "target")
    from quantcalc.plan import allocate as planner
    from quantcalc.plan import report as plan_report
    from quantcalc.plan import scan_checks
    from quantcalc.scan import model_scan as scan

    keep = options.get("keep") or []
    keep = [str(p) for p in ([keep] if isinstance(keep, str) else keep) if str(p).strip()]
    minimum = options.get("minimum") or {}
    if not isinstance(minimum, dict):
        raise QuantcalcError("the minimum formats must be given as {role: format}",
                             "minimum")
    minimum = {str(k): str(v) for k, v in minimum.items()}
    weighted = bool(options.get("weighted", True))
    key = None if scan_id is None else (scan_id, tuple(keep), tuple(sorted(minimum.items())),
                                        weighted)
    scan_checks.check(document, str(name))
    doc = scan.from_plain(document)
    prepared = kept_or_made(_kept_plans, key, lambda: plan_report.prepare(
        doc, keep, minimum, weighted, where=str(name)))
    size = options.get("target_size")
    result = plan_report.build(
        doc, target_bpw=_bits_per_weight(options.get("target_bpw")),
        target_size=None if size in (None, "") else planner.parse_size(size),
        prepared=prepared)
    return report.to_jsonable(result)


def _bits_per_weight(value):
    """The target in bits per weight as a float (None when not given)."""
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise QuantcalcError(f"the target {value!r} is not a number of bits per weight",
                             "target") from None


def plan_figure(plan_document: dict, on_figure=None) -> dict:
    """The plan's figure (total error against bits per weight) as SVG text."""
    def work():
        from quantcalc.reports import figures
        from quantcalc.plan import report as plan_report

        titles = {"plan": "Total error against size"}
        rendered = figures.render_each({"plan": lambda: plan_report.figure(plan_document)},
                                       "svg", as_svg_text(on_figure, titles))
        return {"figures": {k: v.decode("utf-8") for k, v in rendered.items()}, "titles": titles}
    return guarded(work)


def plan_export(plan_document: dict = None, kind: str = "json", document: dict = None,
                options: dict = None, scan_id=None, name: str = "the scan") -> dict:
    """{"bytes", "mime"} of one report of exports.PLAN: json (the recipe), csv, pdf,
    tensor_types (refused, with the reason, for a plan llama-quantize cannot make),
    llm_compressor, or text (the command line's summary).

    The page gives the scan `document` and the plan's `options` (and `scan_id`, as to plan)
    instead of the plan: the plan is made again here, the per-scan part kept, so the report
    spells its numbers as the command line does (a plan that went to the page and came back has
    lost float against int: 64.0 comes back as 64)."""
    def made():
        if document is None:
            return plan_document
        return _planned(document, options, scan_id, name)
    return guarded(lambda: exported(exports.PLAN, kind, made))
