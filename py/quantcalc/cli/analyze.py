"""`python -m quantcalc analyze INPUT [settings] [--json PATH] [--csv PATH] ...`: one tensor,
its table on the terminal and the reports asked for."""

import sys

from quantcalc import api
from quantcalc.cli import inputs, outputs
from quantcalc.errors import QuantcalcError
from quantcalc.reports import exports
from quantcalc.schema import settings

# one analysis per command: its reports reuse the result kept under this id
ANALYSIS_ID = "command line"


def add_parser(commands):
    p = commands.add_parser("analyze", help="quantize one tensor and report the error")
    inputs.add_input_arguments(p)
    add_setting_arguments(p)
    p.add_argument("--imatrix", metavar="FILE", help="llama.cpp importance matrix (GGUF or "
                   "legacy .dat) for the llama.cpp types' weighted search")
    p.add_argument("--imatrix-entry", metavar="NAME", help="the tensor's name in the importance "
                   "matrix (default: --tensor, or the name)")
    p.add_argument("--conventions", action="store_true", help="also run the same settings "
                   "under every framework convention and print why their codes differ")
    outputs.add_options(p, exports.ANALYSIS)
    p.set_defaults(run=run)
    return p


def add_setting_arguments(p):
    """One option per setting of the schema (settings.SETTINGS): --key-with-dashes. Values stay
    text here and are converted and checked by Config, so the command line says exactly what the
    page says about a bad value. A custom range is --range MIN MAX rather than two options."""
    for setting in settings.SETTINGS:
        if setting.key in ("range_min", "range_max", "name"):
            continue
        flag = "--" + setting.key.replace("_", "-")
        default = "" if setting.default is None else f" (default {setting.default})"
        if setting.kind == "flag":
            p.add_argument(flag, action="store_const", const=True, default=None,
                           help=setting.help)
        elif setting.kind == "choice":
            p.add_argument(flag, choices=setting.values, help=setting.help + default)
        else:
            p.add_argument(flag, metavar=setting.key.upper(), help=setting.help + default)
    p.add_argument("--range", nargs=2, metavar=("MIN", "MAX"),
                   help="a custom range (values outside are clipped); the same as "
                   "--calibration custom with range_min / range_max")


def config_of(args, default_name) -> dict:
    """The settings given on the command line, and only those: Config supplies the defaults,
    and makes a range given without a calibration a custom range."""
    config = {s.key: getattr(args, s.key) for s in settings.SETTINGS
              if getattr(args, s.key, None) is not None}
    config["name"] = args.name or default_name
    if args.range is not None:
        # The page keeps a hidden range when another calibration is chosen; on the command
        # line both given is a contradiction, not a leftover.
        if config.get("calibration", "custom") != "custom":
            raise QuantcalcError("give either --range or --calibration, not both", "calibration")
        config["range_min"], config["range_max"] = args.range
    return config


def run(args) -> int:
    wanted = outputs.requested(args, exports.ANALYSIS)
    quiet = outputs.stdout_taken(wanted)
    outputs.check(wanted, inputs.files_of(args) + ([args.imatrix] if args.imatrix else []))
    source, default_name = inputs.source_of(args)
    config = config_of(args, default_name)
    if args.imatrix:
        source["imatrix"] = {"file_path": args.imatrix, "entry": args.imatrix_entry}
    elif args.imatrix_entry:
        raise QuantcalcError("--imatrix-entry needs --imatrix FILE", "imatrix")
    outputs.answer(api.analyze(config, source, ANALYSIS_ID))
    outputs.deliver(wanted, lambda kind: outputs.answer(
        api.export(config, source, kind, ANALYSIS_ID))["bytes"], table=not quiet)
    if args.conventions:
        from quantcalc.reports import conventions_table
        print(conventions_table.text(outputs.answer(api.conventions(config, source))),
              end="", file=sys.stderr if quiet else sys.stdout)
    return 0
