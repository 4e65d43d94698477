"""A plan as people use it: the tensor -> format table, totals, llama.cpp's presets at their own
sizes beside the plan at the same sizes, `llama-quantize --tensor-type` lines, a JSON recipe,
CSV, a figure of total error against bits per weight, a PDF and the summary the terminal shows
(reports/exports.py's PLAN table says which a user can ask for, and how)."""

import io
import re
from dataclasses import dataclass

from quantcalc.plan import llama_presets
from quantcalc.plan import allocate as planner
from quantcalc.errors import QuantcalcError
from quantcalc.engine.metrics import portable_log10
from quantcalc.reports.tables import _writer, format_number, json_text, safe_cell

GGUF_NAMES = [  # Hugging Face Llama-style name -> GGUF name (llama.cpp's convert_hf_to_gguf)
    (r"^model\.embed_tokens\.weight$", "token_embd.weight"),
    (r"^lm_head\.weight$", "output.weight"),
    (r"^model\.norm\.weight$", "output_norm.weight"),
    (r"^model\.layers\.(\d+)\.self_attn\.q_proj\.weight$", r"blk.\1.attn_q.weight"),
    (r"^model\.layers\.(\d+)\.self_attn\.k_proj\.weight$", r"blk.\1.attn_k.weight"),
    (r"^model\.layers\.(\d+)\.self_attn\.v_proj\.weight$", r"blk.\1.attn_v.weight"),
    (r"^model\.layers\.(\d+)\.self_attn\.o_proj\.weight$", r"blk.\1.attn_output.weight"),
    (r"^model\.layers\.(\d+)\.mlp\.gate_proj\.weight$", r"blk.\1.ffn_gate.weight"),
    (r"^model\.layers\.(\d+)\.mlp\.up_proj\.weight$", r"blk.\1.ffn_up.weight"),
    (r"^model\.layers\.(\d+)\.mlp\.down_proj\.weight$", r"blk.\1.ffn_down.weight"),
    (r"^model\.layers\.(\d+)\.input_layernorm\.weight$", r"blk.\1.attn_norm.weight"),
    (r"^model\.layers\.(\d+)\.post_attention_layernorm\.weight$", r"blk.\1.ffn_norm.weight"),
]
_GGUF = [(re.compile(p), r) for p, r in GGUF_NAMES]


def gguf_name(name):
    """The tensor's name in a GGUF file converted by llama.cpp, or None when not known."""
    if name.startswith(("blk.", "token_embd", "output")):
        return name
    for pattern, replacement in _GGUF:
        if pattern.match(name):
            return pattern.sub(replacement, name)
    return None


def _metric(doc, weighted):
    return "importance-weighted MSE" if weighted and any(
        r.get("weighted_mse") is not None for t in doc["tensors"] for r in t["results"]) \
        else "MSE"


def preset_points(doc, tensors):
    """Each llama.cpp preset the scan can price: its size and total error, measured with the
    same per-tensor error as the plan."""
    by_name = {t.name: t for t in tensors}
    labels = {f["label"] for f in doc["formats"]}
    out, missing = [], set()
    for preset in llama_presets.PRESETS:
        types = llama_presets.assign(doc["tensors"], preset)
        bits = error = 0.0
        priced = True
        for row in doc["tensors"]:
            tensor = by_name[row["name"]]
            kind = types.get(row["name"])
            if kind is None or kind == "F16":
                bits += (32.0 if len(row["shape"]) <= 1 else 16.0) * tensor.parameters
                continue
            option = next((o for o in tensor.options if o[0] == kind), None)
            if option is None:
                # a kept tensor (pattern) or a type the scan did not measure
                if kind not in labels:
                    missing.add(kind)
                    priced = False
                    break
                result = next((r for r in row["results"] if r["format"] == kind), None)
                if result is None or result["error"]:  # not measured for this tensor
                    priced = False
                    break
                option = (kind, result["bits_per_value"] * tensor.parameters,
                          result["mse"] * tensor.parameters)
            bits += option[1]
            error += option[2]
        if priced:
            out.append({"preset": preset, "bits": bits, "error": error, "types": types})
    return out, sorted(missing)


@dataclass
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


def prepare(doc, keep=(), minimum=None, weighted=True, curve_points=40) -> Prepared:
    tensors = planner.tensors_from_scan(doc, keep, minimum, weighted)
    params = sum(t.parameters for t in tensors)
    points, missing = preset_points(doc, tensors)
    comparisons = []
    for point in points:
        try:
            at_size = planner.allocate(tensors, point["bits"] * (1 + 1e-12))
        except QuantcalcError:  # a preset smaller than any plan: nothing to compare at its size
            continue
        lower = (point["error"] - at_size.error) / point["error"] if point["error"] else 0.0
        comparisons.append({
            "preset": point["preset"], "bits_per_weight": point["bits"] / params,
            "preset_error": point["error"], "plan_error": at_size.error,
            "plan_bits_per_weight": at_size.bits_per_weight,
            "error_lower_percent": 100.0 * lower,
            # the portable log10: the page (musl) must give the command line's last digit
            "error_lower_db": 10 * portable_log10(point["error"] / at_size.error)
            if at_size.error > 0 and point["error"] > 0 else None})
    curve = [{"bits_per_weight": b, "total_error": e}
             for b, e in planner.sweep(tensors, curve_points)]
    return Prepared(tensors, params, _metric(doc, weighted), curve, comparisons, missing,
                    {"keep": list(keep), "minimum": dict(minimum or {}), "weighted": weighted})


def build(doc, target_bpw=None, target_size=None, keep=(), minimum=None, weighted=True,
          prepared=None) -> dict:
    """The plan document: everything the reports, the page and the recipe need."""
    prepared = prepared or prepare(doc, keep, minimum, weighted)
    tensors, params = prepared.tensors, prepared.parameters
    budget = planner.target_bits(tensors, target_bpw, target_size)
    chosen = planner.allocate(tensors, budget)
    if chosen.bits > budget:  # the smallest plan, within allocate's rounding of the target
        raise QuantcalcError(f"the target is below the smallest plan the scanned formats allow "
                             f"({chosen.bits_per_weight:.6g} bits per weight)", "target")
    rows = []
    for t in tensors:
        kind = chosen.format_of(t)
        option = None if t.kept else t.options[chosen.choice[t.name]]
        rows.append({"name": t.name, "gguf_name": gguf_name(t.name), "role": t.role,
                     "layer": t.layer, "parameters": t.parameters, "format": kind,
                     "bits": t.kept_bits if t.kept else option[1],
                     "error": 0.0 if t.kept else option[2], "kept": t.reason or None})
    return {
        "kind": "quantcalc-plan", "version": 1, "metric": prepared.metric,
        "target_bits_per_weight": budget / params, "bits_per_weight": chosen.bits_per_weight,
        "bytes": chosen.bits / 8.0, "total_error": chosen.error, "parameters": params,
        "tensors": rows, "presets": prepared.presets,
        "presets_not_priced": prepared.missing, "curve": prepared.curve,
        "range_bits_per_weight": [prepared.curve[0]["bits_per_weight"],
                                  prepared.curve[-1]["bits_per_weight"]],
        "llama_quantize": llama_quantize(rows), "settings": prepared.settings,
    }


def llama_quantize(rows) -> dict:
    """The plan as llama-quantize arguments: the commonest type as the base and one
    --tensor-type override per tensor that differs (GGUF names, regex-escaped)."""
    counts = {}
    for row in rows:
        if not row["kept"]:
            counts[row["format"]] = counts.get(row["format"], 0) + row["parameters"]
    if not counts:
        return {"base": None, "tensor_types": [], "command": "", "unmapped": []}
    base = max(counts, key=counts.get)
    lines, unmapped = [], []
    for row in rows:
        if row["kept"] or row["format"] == base:
            continue
        name = row["gguf_name"]
        if name is None:
            unmapped.append(row["name"])
            name = row["name"]
        lines.append(f"{re.escape(name)}={row['format'].lower()}")
    command = "llama-quantize " + " ".join(f"--tensor-type '{line}'" for line in lines) + \
        f" model-f16.gguf model-{base}-plan.gguf {base}"
    return {"base": base, "tensor_types": lines, "command": command, "unmapped": unmapped}


def recipe_bytes(plan) -> bytes:
    return json_text(plan, indent=1).encode("utf-8")


CSV_HEADER = ("name", "gguf_name", "role", "layer", "parameters", "format", "bits_per_value",
              "error", "kept")


def csv_bytes(plan) -> bytes:
    buffer = io.StringIO()
    writer = _writer(buffer)
    writer.writerow(CSV_HEADER)
    for row in plan["tensors"]:
        values = {**row, "bits_per_value": row["bits"] / row["parameters"]}
        writer.writerow(["" if values[k] is None else safe_cell(values[k])
                         if isinstance(values[k], str) else format_number(values[k])
                         for k in CSV_HEADER])
    return buffer.getvalue().encode("utf-8")


def tensor_types_text(plan) -> bytes:
    """For llama-quantize --tensor-type-file: one PATTERN=TYPE per line."""
    return ("\n".join(plan["llama_quantize"]["tensor_types"]) + "\n").encode("utf-8")


def figure(plan):
    """Total error against bits per weight: the planner's curve, each preset as a point, the
    plan shown as a star."""
    from matplotlib.figure import Figure

    from quantcalc.reports.figures import ink, themed

    with themed():
        fig = Figure(figsize=(6.4, 4.0), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        ax.set_title("Total error against size")
        curve = plan["curve"]
        ax.plot([p["bits_per_weight"] for p in curve], [p["total_error"] for p in curve], "-",
                color=ink("original"), label="best mix (this planner)")
        for k, point in enumerate(plan["presets"]):
            ax.plot(point["bits_per_weight"], point["preset_error"], "o",
                    color=ink("reconstructed"))
            # neighbouring presets (Q5_K_S, Q5_K_M) sit close: labels alternate above and below
            ax.annotate(point["preset"], (point["bits_per_weight"], point["preset_error"]),
                        xytext=(4, 5 if k % 2 == 0 else -11), textcoords="offset points",
                        fontsize=8)
        if plan["presets"]:
            ax.plot([], [], "o", color=ink("reconstructed"), label="llama.cpp preset")
        ax.plot(plan["bits_per_weight"], plan["total_error"], "*", ms=12, color=ink("best"),
                label="this plan")
        ax.set_yscale("log")
        ax.set_xlabel("bits per weight (all tensors, scales included)")
        ax.set_ylabel(f"total error (sum of {plan['metric']} × parameters)")
        ax.legend(loc="upper right")
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
            f"{plan['bytes'] / 1e9:.3g} GB", rows,
            ("preset", "bits/weight", "preset error", "plan error", "lower by", "lower by"),
            subtitle=f"total error {plan['total_error']:.4g} ({plan['metric']}); llama.cpp's "
                     f"presets against this planner at their own size"))
        pdf_pages.figure_pages(pages, [figure(plan)])
        table = [(r["name"][-50:], r["format"], f"{r['bits'] / r['parameters']:.3f}",
                  f"{r['error']:.4g}") for r in plan["tensors"]]
        pdf_pages.paginated_table(pages, "Tensor → format", table,
                                  ("tensor", "format", "bits/value", "error"),
                                  widths=(0.55, 0.15, 0.15, 0.15))
    return buffer.getvalue()


def summary_text(plan) -> str:
    """The plan's size and error, each priced preset beside the plan at its size, and the
    llama-quantize base type: what the terminal shows."""
    lines = [f"plan: {plan['bits_per_weight']:.4f} bits per weight, "
             f"{plan['bytes'] / 1e9:.4g} GB, total error {plan['total_error']:.4g} "
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
    lq = plan["llama_quantize"]
    if lq["base"]:
        lines.append(f"llama-quantize: base type {lq['base']}, {len(lq['tensor_types'])} "
                     f"--tensor-type overrides")
    return "\n".join(lines)


def summary_bytes(plan) -> bytes:
    return summary_text(plan).encode("utf-8")
