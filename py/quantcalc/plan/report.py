"""A plan as people use it: the tensor -> format table, totals, llama.cpp's presets at their own
sizes beside the plan at the same sizes, `llama-quantize --tensor-type` lines, a JSON recipe,
CSV, a figure of total error against bits per weight, a PDF and the summary the terminal shows
(reports/exports.py's PLAN table says which a user can ask for, and how)."""

import io
import math

from quantcalc.plan import allocate as planner
from quantcalc.plan import compressed_tensors, experts, kept, llama_quantize, naming, scan_checks
from quantcalc.plan.preset_prices import preset_points
from quantcalc.errors import QuantcalcError
from quantcalc.engine.estimate import DB_PER_LOG, Z95
from quantcalc.engine.metrics import portable_log10
from quantcalc.records import record
from quantcalc.reports.tables import _writer, format_number, json_text, safe_cell


def _metric(doc, weighted):
    return "importance-weighted MSE" if weighted and any(
        r.get("weighted_mse") is not None for t in doc["tensors"] for r in t["results"]) \
        else "MSE"


@record
class Prepared:
    """What does not depend on the target: the tensors' candidates, the planner's curve and the
    presets with the plan at each one's size (the page's slider then only allocates)."""

    tensors: list
    parameters: int
    metric: str
    curve: list
    presets: list
    missing: list
    settings: dict
    naming: dict = None
    notes: list = None
    doc: dict = None       # the scan as planned: each layer's experts one tensor (experts.py)


def prepare(doc, keep=(), minimum=None, weighted=True, curve_points=40,
            where="the scan") -> Prepared:
    """`where` names the scan (its file) in the one-line refusal of a scan with nothing to
    plan."""
    doc, stacking = experts.stacked(doc)
    names = naming.naming(doc)
    tensors = planner.tensors_from_scan(doc, keep, minimum, weighted, names["names"],
                                        None if names["guessed"] else names["architecture"])
    kept.nothing_to_plan(doc, tensors, where)
    params = sum(t.parameters for t in tensors)
    # without an architecture no tensor has a GGUF name: the presets go by the roles alone
    points, missing, notes = preset_points(
        doc, tensors, names["names"] if names["architecture"] is not None else None,
        names["block_count"])
    comparisons = [c for c in (_compared(point, tensors, params) for point in points) if c]
    curve = [{"bits_per_weight": b, "total_error": e}
             for b, e in planner.sweep(tensors, curve_points)]
    return Prepared(tensors, params, _metric(doc, weighted), curve, comparisons, missing,
                    {"keep": list(keep), "minimum": dict(minimum or {}), "weighted": weighted},
                    names, [stacking] * (stacking is not None) + notes, doc)


def _compared(point, tensors, params):
    """The preset beside the plan at its size, or None for a preset smaller than any plan."""
    try:
        at_size = planner.allocate(tensors, point["bits"] * (1 + 1e-12))
    except QuantcalcError:
        return None
    lower = (point["error"] - at_size.error) / point["error"] if point["error"] else 0.0
    return {
        "preset": point["preset"], "bits_per_weight": point["bits"] / params,
        "preset_error": point["error"], "plan_error": at_size.error,
        "plan_bits_per_weight": at_size.bits_per_weight,
        "error_lower_percent": 100.0 * lower,
        # the portable log10: the page (musl) must give the command line's last digit
        "error_lower_db": 10 * portable_log10(point["error"] / at_size.error)
        if at_size.error > 0 and point["error"] > 0 else None}


def build(doc, target_bpw=None, target_size=None, keep=(), minimum=None, weighted=True,
          prepared=None, where="the scan") -> dict:
    """The plan document: everything the reports, the page and the recipes need."""
    prepared = prepared or prepare(doc, keep, minimum, weighted, where=where)
    doc = prepared.doc or doc
    tensors, params = prepared.tensors, prepared.parameters
    names = prepared.naming or naming.naming(doc)
    budget = planner.target_bits(tensors, target_bpw, target_size)
    chosen = planner.allocate(tensors, budget)
    if chosen.bits > budget:  # the smallest plan, within allocate's rounding of the target
        raise QuantcalcError(f"the target is below the smallest plan the scanned formats allow "
                             f"({chosen.bits_per_weight:.6g} bits per weight)", "target")
    shapes = {row["name"]: list(row["shape"]) for row in doc["tensors"]}
    counts = {row["name"]: row["parameters"] for row in doc["tensors"]}  # a dropped one: 0 in t
    stacks = {row["name"]: row["experts"] for row in doc["tensors"] if row.get("experts")}
    rows = []
    for t in tensors:
        option = None if t.kept else t.options[chosen.choice[t.name]]
        rows.append({"name": t.name, "gguf_name": names["names"].get(t.name), "role": t.role,
                     "layer": t.layer, "shape": shapes[t.name],
                     "parameters": counts.get(t.name, t.parameters),
                     "format": chosen.format_of(t),
                     "bits": t.kept_bits if t.kept else option[1],
                     "error": 0.0 if t.kept else option[2], "kept": t.reason or None,
                     **({"experts": stacks[t.name]} if t.name in stacks else {})})
    plan = {
        "kind": "quantcalc-plan", "version": 1, "metric": prepared.metric,
        "target_bits_per_weight": budget / params, "bits_per_weight": chosen.bits_per_weight,
        "bytes": chosen.bits / 8.0, "total_error": chosen.error, "parameters": params,
        "tensors": rows, "presets": prepared.presets,
        "presets_not_priced": prepared.missing, "curve": prepared.curve,
        "range_bits_per_weight": [prepared.curve[0]["bits_per_weight"],
                                  prepared.curve[-1]["bits_per_weight"]],
        "settings": prepared.settings,
        "gguf": {key: names[key] for key in ("architecture", "source", "block_count",
                                             "gguf_py")},
        "notes": list(prepared.notes or []),
    }
    plan["total_error_ci"] = error_interval(doc, rows)
    if isinstance(doc.get("estimate"), dict):
        plan["notes"].append(
            f"planned on estimated errors (the scan sampled rows, ±{doc['estimate'].get('db')} "
            f"dB): the total error is {plan['total_error']:.4g} ± "
            f"{plan['total_error_ci']:.2g} at 95 %")
    plan.update(exports_of(doc, rows, plan["metric"]))
    return plan


def error_interval(doc, rows) -> float:
    """The 95 % half-width of a plan's total error where the scan estimated its results (0 for
    an exact scan): each chosen result's relative standard error, from its SQNR interval
    (half-width = 1.96 x 10/ln 10 x relative se), applied to the error the plan counts for it
    (MSE or importance-weighted: both estimated from the same sampled rows), summed in
    quadrature over independent tensors."""
    results = {}
    for row in doc["tensors"]:
        for result in row["results"]:
            for label in (result.get("format"), result.get("measured_as")):
                results.setdefault((row["name"], label), result)
    variance = 0.0
    for row in rows:
        found = results.get((row["name"], row["format"]))
        half = (found or {}).get("sqnr_ci_db") or 0.0
        if half and math.isfinite(half) and math.isfinite(row["error"]):
            variance += (half / (Z95 * DB_PER_LOG) * row["error"]) ** 2
    return Z95 * math.sqrt(variance)


def exports_of(doc, rows, metric) -> dict:
    """What each tool can make of the plan: llama-quantize's arguments, the llm-compressor
    recipe, and the formats no tool makes."""
    formats = {f["label"]: f for f in doc["formats"]}
    for row in rows:  # llama.cpp's fallback types the plan took (Q5_0 for Q4_K on rows of 384)
        if row["format"] in scan_checks.FALLBACK_TYPES and row["format"] != "F16":
            formats.setdefault(row["format"], {"label": row["format"],
                                               "settings": {"format": row["format"].lower()}})
    files = kept.source_files(doc)
    source = files[0] if len(files) == 1 else None
    gguf_source = any(n.lower().endswith(".gguf") for n in files)
    requantize = any(kept.stored_type(row) in kept.QUANTIZED and any(
        r["error"] is None for r in row["results"]) for row in doc["tensors"])
    lq = llama_quantize.arguments(rows, formats, source=source, requantize=requantize,
                                  weighted=metric != "MSE")
    ct = compressed_tensors.recipe(rows, formats, gguf_source=gguf_source)
    counts = {}
    for row in rows:
        label = row["format"]
        if not row["kept"] and not llama_quantize.makes(label, formats) and \
                not compressed_tensors.has_scheme(formats.get(label)):
            counts[label] = counts.get(label, 0) + 1
    return {"llama_quantize": lq, "compressed_tensors": ct,
            "not_made": [{"format": label, "tensors": n} for label, n in counts.items()]}


def recipe_bytes(plan) -> bytes:
    return json_text(plan, indent=1).encode("utf-8")


CSV_HEADER = ("name", "gguf_name", "role", "layer", "parameters", "format", "bits_per_value",
              "error", "kept")


def csv_bytes(plan) -> bytes:
    buffer = io.StringIO()
    writer = _writer(buffer)
    writer.writerow(CSV_HEADER)
    for row in plan["tensors"]:
        values = {**row, "bits_per_value": _per_value(row)}
        writer.writerow(["" if values[k] is None else safe_cell(values[k])
                         if isinstance(values[k], str) else format_number(values[k])
                         for k in CSV_HEADER])
    return buffer.getvalue().encode("utf-8")


def _per_value(row):
    """Bits per value of a plan row (None for a tensor of no values)."""
    return row["bits"] / row["parameters"] if row["parameters"] else None


def tensor_types_text(plan) -> bytes:
    """For llama-quantize --tensor-type-file: one PATTERN=TYPE per line; refused, with the
    reason, for a plan llama-quantize cannot make (the file has no room for a comment)."""
    lq = plan["llama_quantize"]
    if lq.get("made") is False:
        raise QuantcalcError(f"no llama-quantize tensor types: {lq.get('reason')}", "download")
    return ("\n".join(lq["tensor_types"]) + "\n").encode("utf-8")


def figure(plan):
    """Total error against bits per weight: the planner's curve, each preset as a point, the
    plan shown as a star."""
    from matplotlib.figure import Figure

    from quantcalc.reports.compare_figures import place_labels
    from quantcalc.reports.figures import ink, legend_below, themed

    with themed():
        fig = Figure(figsize=(6.4, 4.0), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        ax.set_title("Total error against size")
        curve = plan["curve"]
        ax.plot([p["bits_per_weight"] for p in curve], [p["total_error"] for p in curve], "-",
                color=ink("original"), label="best mix (this planner)")
        for point in plan["presets"]:
            ax.plot(point["bits_per_weight"], point["preset_error"], "o",
                    color=ink("reconstructed"))
        if plan["presets"]:
            ax.plot([], [], "o", color=ink("reconstructed"), label="llama.cpp preset")
        ax.plot(plan["bits_per_weight"], plan["total_error"], "*", ms=12, color=ink("best"),
                label="this plan")
        ax.set_yscale("log")
        ax.set_xlabel("bits per weight (all tensors, scales included)")
        ax.set_ylabel(f"total error (sum of {plan['metric']} × parameters)")
        ax.margins(x=0.08, y=0.1)  # room for labels beside the outermost presets
        legend_below(fig, ax)  # under the axes: over them it covered presets and their labels
        # neighbouring presets (Q4_K_S ... Q5_K_M within 0.4 bits) printed their names on top
        # of each other: each label goes where it covers no other label or point
        place_labels(fig, ax, [(p["bits_per_weight"], p["preset_error"], p["preset"])
                               for p in plan["presets"]])
    return fig


def pdf_bytes(plan) -> bytes:
    from matplotlib.backends.backend_pdf import PdfPages

    from quantcalc.reports import figures
    from quantcalc.reports import pdf_pages
    from quantcalc.reports.tables import text_page

    buffer = io.BytesIO()
    metadata = {"Title": "quantcalc plan", "Creator": "quantcalc", "Producer": "quantcalc",
                "CreationDate": None, "ModDate": None}
    with figures.paper(), PdfPages(buffer, metadata=metadata) as pages:
        rows = [(p["preset"], f"{p['bits_per_weight']:.3f}", f"{p['preset_error']:.4g}",
                 f"{p['plan_error']:.4g}", f"{p['error_lower_percent']:.1f} %",
                 "" if p["error_lower_db"] is None else f"{p['error_lower_db']:.2f} dB")
                for p in plan["presets"]]
        pages.savefig(text_page(
            f"Plan: {plan['bits_per_weight']:.3f} bits per weight, "
            f"{planner.size_text(plan['bytes'])}", rows,
            ("preset", "bits/weight", "preset error", "plan error", "lower by", "lower by"),
            subtitle=f"total error {plan['total_error']:.4g} ({plan['metric']}); llama.cpp's "
                     f"presets against this planner at their own size"))
        pdf_pages.figure_pages(pages, [figure(plan)])
        table = [(r["name"], r["format"], "" if _per_value(r) is None else
                  f"{_per_value(r):.3f}", f"{r['error']:.4g}") for r in plan["tensors"]]
        pdf_pages.paginated_table(pages, "Tensor → format", table,
                                  ("tensor", "format", "bits/value", "error"),
                                  widths=(0.55, 0.15, 0.15, 0.15), names=(0,))
    return buffer.getvalue()


def summary_text(plan) -> str:
    """The plan's size and error, each priced preset beside the plan at its size, and the
    llama-quantize base type: what the terminal shows."""
    lines = [f"plan: {plan['bits_per_weight']:.4f} bits per weight, "
             f"{planner.size_text(plan['bytes'])}, total error {plan['total_error']:.4g} "
             f"({plan['metric']})"]
    if plan["presets"]:
        lines.append("llama.cpp presets, and this planner at each one's size:")
        for p in plan["presets"]:
            better = "" if p["error_lower_db"] is None else f" ({p['error_lower_db']:+.2f} dB)"
            lines.append(f"  {p['preset']:7s} {p['bits_per_weight']:.3f} bits per weight: "
                         f"preset error {p['preset_error']:.4g}, plan {p['plan_error']:.4g}, "
                         f"{p['error_lower_percent']:.1f}% lower{better}")
    if plan["presets_not_priced"]:
        lines.append("presets not priced (scan these formats too): "
                     + ", ".join(plan["presets_not_priced"]))
    return "\n".join(lines + tool_lines(plan))


def tool_lines(plan) -> list:
    """What makes the plan: llama-quantize's base type and overrides, the llm-compressor
    recipe's groups, the formats no tool makes, and the plan's notes."""
    lines = []
    lq = plan["llama_quantize"]
    if lq["base"]:
        lines.append(f"llama-quantize: base type {lq['base']}, {len(lq['tensor_types'])} "
                     f"--tensor-type overrides")
    elif lq.get("reason") and lq.get("not_made"):
        lines.append(f"llama-quantize cannot make this plan: {lq['reason']}")
    ct = plan.get("compressed_tensors") or {}
    if ct.get("made"):
        lines.append("llm-compressor recipe: " + ", ".join(
            f"{g['format']} ({len(g['targets'])} tensor{'s' * (len(g['targets']) != 1)})"
            for g in ct["groups"]))
    elif ct.get("reason") and not lq.get("made", True):
        lines.append(f"llm-compressor cannot make this plan: {ct['reason']}")
    for item in plan.get("not_made") or []:
        lines.append(f"no known tool makes {item['format']} ({item['tensors']} tensor"
                     f"{'s' * (item['tensors'] != 1)}): the plan measures it, nothing exports it")
    lines += [f"note: {note}" for note in (plan.get("notes") or []) + (lq.get("notes") or [])]
    return lines


def summary_bytes(plan) -> bytes:
    return summary_text(plan).encode("utf-8")
