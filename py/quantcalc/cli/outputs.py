"""What a subcommand writes: one option per report of reports/exports.py's tables (--csv PATH,
--json PATH, ...), each report to its path or to stdout for "-", the table the terminal shows,
and the facade's error dicts turned into the command line's one-line messages.

Every output path is checked before any work (check): it can be written, no two reports share a
file, and none is an input. A report is written whole or not at all (write_file).
"""

import contextlib
import itertools
import os
import stat
import sys
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


def check(outputs, inputs=()):
    """Refuse, before any work, each output that cannot be written (its folder is missing or
    not writable, it is a folder), two outputs that are one file, and an output that is one of
    the `inputs` (file paths; stdin is no file). Paths are compared as files, not as text:
    a symlink, a hard link or another spelling of a path is the same file."""
    check_writable(outputs)
    check_not_inputs(outputs, inputs)


def check_writable(outputs):
    files = [out for out in outputs if out.path != STDOUT]
    for out in files:
        _check_folder(out)
    seen = {}
    for out in files:
        key = _identity(out.path) or os.path.realpath(out.path)
        if key in seen:
            first = seen[key]
            raise QuantcalcError(f"{first.option} {first.path} and {out.option} {out.path} are "
                                 f"the same file; give each report its own path", "output")
        seen[key] = out


def check_not_inputs(outputs, inputs):
    files = {}
    for path in inputs:
        files.setdefault(_identity(path), path)
    files.pop(None, None)
    for out in outputs:
        source = files.get(_identity(out.path)) if out.path != STDOUT else None
        if source is not None:
            raise QuantcalcError(f"{out.option} {out.path} is the input {source}: the report "
                                 f"would overwrite it; give another path", "output")


def _identity(path):
    """(device, inode) of the regular file `path` names, links followed; None if it names
    none (not there yet, a folder, a device such as /dev/null)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


def _check_folder(out):
    """The report can be written at out.path: a file (or a device) in a writable folder."""
    path, where = out.path, f"cannot write {out.option} {out.path}"
    if not path or path.endswith(os.sep) or os.path.isdir(path):
        raise QuantcalcError(f"{where}: it is a folder; give a file name", "output")
    if os.path.exists(path) and not os.path.isfile(path):
        return  # a device or a pipe (/dev/null): written in place
    real = os.path.realpath(path)  # a link is written through: the temporary file goes there
    folder = os.path.dirname(real)
    shown = folder if os.path.islink(path) else (os.path.dirname(path) or ".")
    if not os.path.exists(folder):
        raise QuantcalcError(f"{where}: the folder {shown} does not exist", "output")
    if not os.path.isdir(folder):
        raise QuantcalcError(f"{where}: {shown} is not a folder", "output")
    if os.path.exists(real) and not os.access(real, os.W_OK):
        raise QuantcalcError(f"{where}: the file is read-only", "output")
    if not os.path.exists(real) and not os.access(folder, os.W_OK | os.X_OK):
        raise QuantcalcError(f"{where}: the folder {shown} is not writable", "output")


def write(outputs, make):
    """Write each report, its bytes from make(kind), to its path or to stdout."""
    for out in outputs:
        data = make(out.export.kind)
        if out.path == STDOUT:
            _to_stdout(data, out.export)
            continue
        try:
            write_file(out.path, data)
        except OSError as exc:
            raise QuantcalcError(f"cannot write {out.path}: {exc.strerror}", "output") from None


def write_file(path, data: bytes):
    """`data` at `path`, whole or not at all: written to a temporary file beside the real file
    (a link is written through), then renamed over it, keeping an existing file's mode. A
    device or a pipe (/dev/null), or a file whose folder takes no new file, is written in
    place."""
    real = os.path.realpath(path)
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        mode = None
    folder, name = os.path.split(real)
    if mode is not None and (not stat.S_ISREG(mode) or not os.access(folder, os.W_OK | os.X_OK)):
        # a device, a pipe, or a writable file in a folder that takes no new file: in place
        with open(real, "wb") as stream:
            stream.write(data)
        return
    descriptor, temporary = _temporary(folder, name)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        if mode is not None:
            os.chmod(temporary, stat.S_IMODE(mode))
        os.replace(temporary, real)
    except BaseException:  # a full disk, Ctrl-C: the old file stays, the temporary goes
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _temporary(folder, name):
    """(descriptor, path) of a new file beside `name`: .NAME.PID-N.tmp, created with the
    permissions a new file gets (0o666 less the umask)."""
    for n in itertools.count():
        path = os.path.join(folder, f".{name[:200]}.{os.getpid()}-{n}.tmp")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
        except FileExistsError:
            continue


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
