"""`python -m quantcalc analyze | compare | scan | plan | audit ...`: the command line on the same facade as
the page.

Exit status 0 on success, 2 with one line on stderr for bad input or settings, 130 when Ctrl-C
ends a command (a scan's reports then hold the tensors done, and say so).
"""

import argparse
import os
import re
import sys

from quantcalc import __version__
from quantcalc import api
from quantcalc.cli import analyze, audit, compare, outputs, plan, scan
from quantcalc.engine import malloc as heap
from quantcalc.errors import QuantcalcError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quantcalc", description="Quantization error calculator: scale, zero point, codes, "
        "reconstruction and error metrics of a tensor under integer, float and block formats.")
    parser.add_argument("--version", action="version", version=f"quantcalc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    presets = api.compare_presets()
    analyze.add_parser(commands)
    compare.add_parser(commands, presets)
    scan.add_parser(commands, presets)
    plan.add_parser(commands)
    audit.add_parser(commands)
    return parser


# argparse takes "-1e-3" and "-x" for options; a value starting with "-" is the user's value
# (--range -1e-3 1e-3, --name -x). Numbers in any notation count as numbers...
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _subcommands(parser):
    return parser._subparsers._group_actions[0].choices.values()


def _value_options(parser):
    """Option strings that take exactly one value, in every command."""
    return {option for command in _subcommands(parser) for action in command._actions
            if action.option_strings and action.nargs is None and action.const is None
            for option in action.option_strings}


def _attach_dash_values(argv, parser):
    """...and any other value after an option that takes one is attached to it with "=", so
    argparse cannot mistake it for an option: ["--name", "-x"] -> ["--name=-x"]. A lone "-"
    (stdin, or stdout for --json -) is a value to argparse already."""
    takes_value, known = _value_options(parser), set()
    for command in _subcommands(parser):
        known |= set(command._option_string_actions)
    out, i = [], 0
    while i < len(argv):
        token = argv[i]
        following = argv[i + 1] if i + 1 < len(argv) else None
        if token in takes_value and following is not None and following.startswith("-") \
                and following not in known and following != "-":
            out.append(f"{token}={following}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def main(argv=None) -> int:
    heap.keep_freed_memory()
    parser = build_parser()
    for command in _subcommands(parser):
        command._negative_number_matcher = NEGATIVE_NUMBER
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(_attach_dash_values(argv, parser))
    try:
        return args.run(args)
    except QuantcalcError as exc:  # the facade's error dicts arrive here too (outputs.answer)
        print(f"quantcalc: error: {exc.message}", file=sys.stderr)
        return 2
    except outputs.InternalError as exc:  # a bug: its trace, for the report
        print(exc.trace, end="", file=sys.stderr)
        print(f"quantcalc: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C outside a scan's own handling: one line, no trace
        print("quantcalc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into head: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
