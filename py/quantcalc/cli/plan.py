"""`python -m quantcalc plan SCAN.json --target-bpw 4.5 | --target-size 4GB`: the best mix of
formats for a size, from a scan's JSON; `scan ... --plan-bpw/--plan-size` does both in one go."""

import json

from quantcalc.plan import allocate as planner
from quantcalc.plan import report as plan_report
from quantcalc.reports import tables as report
from quantcalc.scan import model_scan as scan
from quantcalc.errors import QuantcalcError, printable


def add_target_arguments(p, prefix=""):
    """--target-bpw / --target-size (plan) or --plan-bpw / --plan-size (scan)."""
    dest = "plan_" if prefix else "target_"
    p.add_argument(f"--{prefix or 'target-'}bpw", type=float, metavar="BITS", dest=dest + "bpw",
                   help="target average bits per weight over all tensors")
    p.add_argument(f"--{prefix or 'target-'}size", metavar="SIZE", dest=dest + "size",
                   help="target size, e.g. 4GB or 3.5GiB")
    p.add_argument("--keep", action="append", default=[], metavar="PATTERN",
                   help="keep tensors whose name matches this regular expression in F16 "
                   "(repeatable; 1-D tensors are always kept in F32)")
    p.add_argument("--min", action="append", default=[], metavar="ROLE=FORMAT", dest="minimum",
                   help="the smallest format a role may take, e.g. attn_v=Q6_K (repeatable)")
    p.add_argument("--plain-mse", action="store_true", help="plan on the plain MSE even when "
                   "the scan has importance-weighted errors")


def add_parser(commands):
    p = commands.add_parser("plan", help="the per-tensor mix of formats with the least total "
                            "error for a target size, from a scan's JSON")
    p.add_argument("scan_json", metavar="SCAN.json", help="quantcalc scan --json output")
    add_target_arguments(p)
    p.add_argument("--json", metavar="PATH", help="the recipe (- for stdout)")
    p.add_argument("--csv", metavar="PATH", help="tensor, format, bits and error")
    p.add_argument("--pdf", metavar="PATH", help="presets compared, the figure, the table")
    p.add_argument("--tensor-types", metavar="PATH",
                   help="PATTERN=TYPE lines for llama-quantize --tensor-type-file")
    return p


def _minimum(pairs):
    out = {}
    for pair in pairs:
        role, sep, label = pair.partition("=")
        if not sep or not role or not label:
            raise QuantcalcError(f"--min '{printable(pair)}' is not ROLE=FORMAT", "minimum")
        out[role.strip()] = label.strip().upper() if label.strip().lower().startswith(
            ("q", "iq")) else label.strip()
    return out


def make_plan(doc, bpw, size, args):
    if bpw is None and size is None:
        raise QuantcalcError("give a target: --target-bpw BITS or --target-size SIZE", "target")
    return plan_report.build(doc, target_bpw=bpw,
                             target_size=None if size is None else planner.parse_size(size),
                             keep=args.keep, minimum=_minimum(args.minimum),
                             weighted=not args.plain_mse)


def read_scan(path):
    try:
        with open(path, "rb") as stream:
            doc = json.loads(stream.read().decode("utf-8"))
    except OSError as exc:
        raise QuantcalcError(f"cannot read {path}: {exc.strerror}", "scan") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise QuantcalcError(f"{path} is not a scan's JSON ({exc})", "scan") from None
    if not isinstance(doc, dict) or doc.get("kind") != "quantcalc-scan":
        raise QuantcalcError(f"{path} is not the JSON of quantcalc scan", "scan")
    return scan.from_plain(doc)


def write(outputs, result):
    for path, kind in outputs:
        if path:
            report.save(path, plan_report.EXPORTS[kind](result))


def summary_text(result) -> str:
    lines = [f"plan: {result['bits_per_weight']:.4f} bits per weight, "
             f"{result['bytes'] / 1e9:.4g} GB, total error {result['total_error']:.4g} "
             f"({result['metric']})"]
    if result["presets"]:
        lines.append("llama.cpp presets, and this planner at each one's size:")
        for p in result["presets"]:
            better = "" if p["error_lower_db"] is None else f" ({p['error_lower_db']:+.2f} dB)"
            lines.append(f"  {p['preset']:7s} {p['bits_per_weight']:.3f} bits per weight: "
                         f"preset error {p['preset_error']:.4g}, plan {p['plan_error']:.4g}, "
                         f"{p['error_lower_percent']:.1f}% lower{better}")
    if result["presets_not_priced"]:
        lines.append("presets not priced (scan these formats too): "
                     + ", ".join(result["presets_not_priced"]))
    lq = result["llama_quantize"]
    if lq["base"]:
        lines.append(f"llama-quantize: base type {lq['base']}, {len(lq['tensor_types'])} "
                     f"--tensor-type overrides")
    return "\n".join(lines)


def run(args) -> int:
    result = make_plan(read_scan(args.scan_json), args.target_bpw, args.target_size, args)
    write([(args.json, "json"), (args.csv, "csv"), (args.pdf, "pdf"),
           (args.tensor_types, "tensor_types")], result)
    if args.json != "-":
        print(summary_text(result))
    return 0
