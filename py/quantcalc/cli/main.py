"""`python -m quantcalc analyze | compare | scan | plan ...`: the command line on the same facade as the page.

Exit status 0 on success, 2 with one line on stderr for bad input or settings.
"""

import argparse
import os
import re
import stat
import sys
from pathlib import Path

from quantcalc import __version__
from quantcalc import api
from quantcalc.schema import fields
from quantcalc.engine import malloc as heap
from quantcalc.cli import plan as plan_cli
from quantcalc.reports import tables as report
from quantcalc.cli import scan as scan_cli
from quantcalc.schema import settings
from quantcalc.engine.compare import PRESET_TITLES, PRESETS, bit_sweep, compare
from quantcalc.errors import QuantcalcError, printable

# Settings the command line takes in another shape: --range MIN MAX stands for a custom range.
RANGE_KEYS = ("range_min", "range_max")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quantcalc", description="Quantization error calculator: scale, zero point, codes, "
        "reconstruction and error metrics of a tensor under integer, float and block formats.")
    parser.add_argument("--version", action="version", version=f"quantcalc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("analyze", help="quantize one tensor and report the error")
    add_input_arguments(p)
    add_setting_arguments(p)
    p.add_argument("--imatrix", metavar="FILE", help="llama.cpp importance matrix (GGUF or "
                   "legacy .dat) for the llama.cpp types' weighted search")
    p.add_argument("--imatrix-entry", metavar="NAME", help="the tensor's name in the importance "
                   "matrix (default: --tensor, or the name)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--csv", metavar="PATH", help="write the per-value CSV")
    p.add_argument("--summary-csv", metavar="PATH", help="write the summary CSV")
    p.add_argument("--pdf", metavar="PATH", help="write the PDF report")

    c = commands.add_parser("compare", help="several configurations on one tensor, sorted by "
                            "bits per value")
    add_input_arguments(c)
    c.add_argument("--config", action="append", default=[], metavar="SETTINGS",
                   help='one configuration as key=value pairs, e.g. "format=int bits=4 '
                   'granularity=group group_size=128" (repeatable)')
    c.add_argument("--preset", choices=sorted(PRESETS), help="a ready set: " + "; ".join(
        f"{k}: {PRESET_TITLES[k]}" for k in sorted(PRESETS)))
    c.add_argument("--sweep", action="store_true",
                   help="also measure integer SQNR at 2..16 bits (JSON and PDF)")
    c.add_argument("--json", action="store_true", help="print the rows as JSON")
    c.add_argument("--csv", metavar="PATH", help="write the comparison CSV")
    c.add_argument("--pdf", metavar="PATH", help="write the comparison PDF")
    scan_cli.add_parser(commands)
    plan_cli.add_parser(commands)
    return parser


def add_setting_arguments(p):
    """One option per setting of the schema (settings.SETTINGS): --key-with-dashes. Values stay
    text here and are converted and checked by Config, so the command line says exactly what the
    page says about a bad value."""
    for setting in settings.SETTINGS:
        if setting.key in RANGE_KEYS or setting.key == "name":
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


def add_input_arguments(p):
    p.add_argument("input", nargs="?", help="a .npy/.npz/.safetensors/.csv/.txt file, or - for "
                   "text on stdin")
    p.add_argument("--values", help='inline values, e.g. "-1.25, 0.14, 1.46"')
    p.add_argument("--tensor", help="which array of a .npz / .safetensors file")
    p.add_argument("--name", help="tensor name for reports (default: the file or tensor name)")

def _source(args):
    if args.values is not None:
        if args.input is not None:
            raise QuantcalcError("give either INPUT or --values, not both", "values")
        return {"text": args.values}, "values"
    if args.input is None:
        raise QuantcalcError("no input: give a file, - for stdin, or --values", "values")
    if args.input == "-":
        return {"text": _read_stdin()}, "stdin"
    path = Path(args.input)
    return {"file_path": str(path), "file_name": path.name, "tensor": args.tensor}, \
        args.tensor or path.stem

MAX_STDIN_BYTES = 1 << 30


def _read_stdin() -> str:
    """Text on standard input, at most MAX_STDIN_BYTES (`< /dev/zero` must not read forever)."""
    mode = os.fstat(sys.stdin.fileno()).st_mode
    if stat.S_ISCHR(mode) and not sys.stdin.isatty():
        raise QuantcalcError("standard input is a device such as /dev/zero, not text; pipe or "
                             "redirect a file of values", "values")
    data = sys.stdin.buffer.read(MAX_STDIN_BYTES + 1)
    if len(data) > MAX_STDIN_BYTES:
        raise QuantcalcError(f"more than {MAX_STDIN_BYTES >> 30} GiB on standard input; save "
                             f"the values to a file (.npy reads fastest)", "values")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise QuantcalcError(f"standard input is not UTF-8 text (byte {exc.start} cannot be "
                             f"decoded)", "values") from None


def _config(args, default_name):
    """The settings given on the command line (only those: Config supplies the defaults)."""
    config = {s.key: getattr(args, s.key) for s in settings.SETTINGS
              if getattr(args, s.key, None) is not None}
    config["name"] = args.name or default_name
    if args.range is not None:
        if config.get("calibration", "custom") != "custom":
            raise QuantcalcError("give either --range or --calibration, not both", "calibration")
        config.update(calibration="custom", range_min=args.range[0], range_max=args.range[1])
    elif config.get("calibration") == "custom":
        raise QuantcalcError("--calibration custom needs --range MIN MAX", "range_min")
    return config


def _table(summary: dict) -> str:
    # names come from files: escape control characters so none reaches the terminal
    rows = [(label, printable(value)) for _, value, label in report.summary_rows(summary)]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def _write(outputs, args):
    """Write each requested report; returns an error message or None."""
    for option, make in outputs.items():
        path = getattr(args, option, None)
        if path:
            try:
                Path(path).write_bytes(make())
            except OSError as exc:
                return f"cannot write {path}: {exc.strerror}"
    return None


def _compare_table(rows) -> str:
    keys = fields.COMPARE_KEYS
    width = max([len("configuration")] + [len(r["label"]) for r in rows])
    columns = [max(len(fields.heading(k)), 10) for k in keys]
    head = [f"{'configuration':{width}s}"] + [f"{fields.heading(k):>{w}s}" for k, w in
                                              zip(keys, columns)] + ["Pareto"]
    lines = ["  ".join(head)]
    for r in rows:
        cells = [f"{printable(r['label']):{width}s}"] + [f"{report.display(k, r[k]):>{w}s}" for k, w in
                                              zip(keys, columns)] + ["*" if r["pareto"] else ""]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def run_analyze(args):
    source, default_name = _source(args)
    config = _config(args, default_name)
    if args.imatrix:
        source["imatrix"] = {"file_path": args.imatrix, "entry": args.imatrix_entry}
    elif args.imatrix_entry:
        raise QuantcalcError("--imatrix-entry needs --imatrix FILE", "imatrix")
    result = api.run(config, source)
    problem = _write({"csv": lambda: report.per_value_csv(result),
                      "summary_csv": lambda: report.summary_csv(result),
                      "pdf": lambda: report.pdf(result)}, args)
    if problem:
        raise QuantcalcError(problem, "output")
    summary = result.summary()
    print(report.json_text(summary) if args.json else _table(summary))


def run_compare(args):
    source, default_name = _source(args)
    name = args.name or default_name
    specs = list(PRESETS.get(args.preset, [])) + args.config
    values = api.load(source)
    skipped, notes = [], []
    rows = compare(values, specs, name, skipped, notes)
    sweep = bit_sweep(values, name=name) if args.sweep else None
    problem = _write({"csv": lambda: report.compare_csv(rows),
                      "pdf": lambda: report.compare_pdf(rows, sweep, name)}, args)
    if problem:
        raise QuantcalcError(problem, "output")
    if args.json:
        print(report.json_text({"name": name, "rows": rows, "sweep": sweep,
                                "skipped": skipped, "notes": notes}))
    else:
        print(_compare_table(rows))
        for item in skipped:
            print(printable(f"skipped {item['label']}: {item['reason']}"))
        for note in notes:
            print(printable(f"note: {note}"))


# argparse takes "-1e-3" and "-x" for options; a value starting with "-" is the user's value
# (--range -1e-3 1e-3, --name -x). Numbers in any notation count as numbers...
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _value_options(parser):
    """Option strings that take exactly one value, in every command."""
    commands = parser._subparsers._group_actions[0].choices.values()
    return {option for command in commands for action in command._actions
            if action.option_strings and action.nargs is None and action.const is None
            for option in action.option_strings}


def _attach_dash_values(argv, parser):
    """...and any other value after an option that takes one is attached to it with "=", so
    argparse cannot mistake it for an option: ["--name", "-x"] -> ["--name=-x"]."""
    takes_value, known = _value_options(parser), set()
    for command in parser._subparsers._group_actions[0].choices.values():
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
    for command in parser._subparsers._group_actions[0].choices.values():
        command._negative_number_matcher = NEGATIVE_NUMBER
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(_attach_dash_values(argv, parser))
    try:
        if args.command in ("scan", "plan"):
            return (scan_cli if args.command == "scan" else plan_cli).run(args)
        (run_compare if args.command == "compare" else run_analyze)(args)
    except QuantcalcError as exc:
        print(f"quantcalc: error: {exc.message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
