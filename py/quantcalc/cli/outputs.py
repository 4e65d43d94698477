"""What a subcommand writes: one option per report of reports/exports.py's tables (--csv PATH,
--json PATH, ...), each report to its path or to stdout for "-", the table the terminal shows,
and the facade's error dicts turned into the command line's one-line messages.
"""

import sys
from pathlib import Path
from typing import NamedTuple

from quantcalc.errors import QuantcalcError

STDOUT = "-"


class InternalError(Exception):
    """A bug inside the facade (an error of kind "internal"): shown with its trace, and not
    passed off as bad input."""

    def __init__(self, message, trace):
        super().__init__(message)
        self.message, self.trace = message, trace


def answer(reply: dict) -> dict:
    """The facade's reply; its {"error": {kind, message, field}} raised instead, as the
    QuantcalcError main() prints on one line with exit status 2. The one place the command line
    reads the page's error convention."""
    error = reply.get("error")
    if error is None:
        return reply
    if error.get("kind") == "internal":
        raise InternalError(error["message"], error.get("trace", ""))
    raise QuantcalcError(error["message"], error.get("field") or "values")


class Output(NamedTuple):
    option: str   # as the user typed it: --plan-json
    export: object  # its record in reports.exports
    path: str     # a file, or "-" for stdout


def _option(export, prefix):
    return "--" + prefix + export.option[2:]


def _dest(export, prefix):
    return _option(export, prefix)[2:].replace("-", "_")


def add_options(parser, table, prefix=""):
    """--csv PATH, --json PATH, ... for each report of `table` that has an option (with a
    prefix: scan's --plan-json and the like)."""
    for export in table.values():
        if export.option:
            parser.add_argument(_option(export, prefix), metavar="PATH",
                                dest=_dest(export, prefix),
                                help=f"write {export.help} to PATH (- for stdout)")


def requested(args, table, prefix="") -> list:
    """The Outputs asked for on the command line, in the table's order."""
    return [Output(_option(e, prefix), e, getattr(args, _dest(e, prefix)))
            for e in table.values() if e.option and getattr(args, _dest(e, prefix))]


def stdout_taken(outputs) -> bool:
    """Whether a report goes to stdout (the terminal's table then stays out of it). Only one
    may: two would be interleaved into one stream no program could read."""
    on_stdout = [out.option for out in outputs if out.path == STDOUT]
    if len(on_stdout) > 1:
        raise QuantcalcError(f"only one report can go to stdout (-); choose one of "
                             f"{', '.join(on_stdout)}", "output")
    return bool(on_stdout)


def write(outputs, make):
    """Write each report, its bytes from make(kind), to its path or to stdout."""
    for out in outputs:
        data = make(out.export.kind)
        if out.path == STDOUT:
            _to_stdout(data, out.export)
            continue
        try:
            Path(out.path).write_bytes(data)
        except OSError as exc:
            raise QuantcalcError(f"cannot write {out.path}: {exc.strerror}", "output") from None


def _to_stdout(data: bytes, export):
    """The report's bytes as they are (a PDF too); text gets a final newline if it lacks one,
    so a shell prompt does not follow JSON on the same line."""
    sys.stdout.flush()  # what print() wrote before goes first
    if not export.binary and not data.endswith(b"\n"):
        data += b"\n"
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def show_table(make):
    """The feature's "text" report: the table the terminal shows."""
    print(make("text").decode("utf-8"))


def deliver(outputs, make, table=True):
    """Write the reports asked for, then show the table unless stdout carries a report."""
    write(outputs, make)
    if table:
        show_table(make)
