"""`python -m quantcalc plan SCAN.json --target-bpw 4.5 | --target-size 4GB`: the best mix of
formats for a size, from a scan's JSON; `scan ... --plan-bpw/--plan-size` does both in one go."""

from quantcalc import api
from quantcalc.cli import outputs
from quantcalc.errors import QuantcalcError, printable
from quantcalc.reports import exports


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
    outputs.add_options(p, exports.PLAN)
    p.set_defaults(run=run)
    return p


def _minimum(pairs) -> dict:
    """--min ROLE=FORMAT pairs as {role: format}, llama.cpp's type names in capitals."""
    out = {}
    for pair in pairs:
        role, sep, label = pair.partition("=")
        if not sep or not role or not label:
            raise QuantcalcError(f"--min '{printable(pair)}' is not ROLE=FORMAT", "minimum")
        out[role.strip()] = label.strip().upper() if label.strip().lower().startswith(
            ("q", "iq")) else label.strip()
    return out


def plan_options(args, bpw, size) -> dict:
    """The facade's plan options from the command line."""
    return {"target_bpw": bpw, "target_size": size, "keep": args.keep,
            "minimum": _minimum(args.minimum), "weighted": not args.plain_mse}


def deliver_plan(document, options, wanted, table=True, name="the scan"):
    """Plan over the scan document (`name`: its file, for messages), write the reports asked
    for and show the summary."""
    plan = outputs.answer(api.plan(document, options, name=name))["plan"]
    outputs.deliver(wanted, lambda kind: outputs.answer(api.plan_export(plan, kind))["bytes"],
                    table=table)


def run(args) -> int:
    wanted = outputs.requested(args, exports.PLAN)
    quiet = outputs.stdout_taken(wanted)
    if args.target_bpw is None and args.target_size is None:
        raise QuantcalcError("give a target: --target-bpw BITS or --target-size SIZE", "target")
    outputs.check(wanted, [args.scan_json])
    options = plan_options(args, args.target_bpw, args.target_size)
    document = outputs.answer(api.read_scan(args.scan_json))["document"]
    deliver_plan(document, options, wanted, table=not quiet, name=args.scan_json)
    return 0
