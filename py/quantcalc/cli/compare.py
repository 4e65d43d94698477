"""`python -m quantcalc compare INPUT --config SETTINGS ... | --preset NAME`: several
configurations on one tensor, sorted by bits per value, and the reports asked for."""

from quantcalc import api
from quantcalc.cli import inputs, outputs
from quantcalc.reports import exports

COMPARISON_ID = "command line"


def add_parser(commands, presets):
    c = commands.add_parser("compare", help="several configurations on one tensor, sorted by "
                            "bits per value")
    inputs.add_input_arguments(c)
    c.add_argument("--config", action="append", default=[], metavar="SETTINGS",
                   help='one configuration as key=value pairs, e.g. "format=int bits=4 '
                   'granularity=group group_size=128" (repeatable)')
    inputs.add_preset_argument(c, presets)
    c.add_argument("--sweep", action="store_true",
                   help="also measure integer SQNR at 2..16 bits (JSON and PDF)")
    outputs.add_options(c, exports.COMPARISON)
    c.set_defaults(run=run)
    return c


def run(args) -> int:
    wanted = outputs.requested(args, exports.COMPARISON)
    quiet = outputs.stdout_taken(wanted)
    outputs.check(wanted, inputs.files_of(args))
    source, default_name = inputs.source_of(args)
    name = args.name or default_name
    specs = inputs.preset_specs(args.preset) + args.config
    outputs.answer(api.compare(source, specs, name, COMPARISON_ID, sweep=args.sweep))
    outputs.deliver(wanted, lambda kind: outputs.answer(api.compare_export(
        source, specs, name, kind, COMPARISON_ID, sweep=args.sweep))["bytes"], table=not quiet)
    return 0
