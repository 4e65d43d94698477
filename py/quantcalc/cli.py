"""`python -m quantcalc analyze ...`: the command line on the same facade as the page.

Exit status 0 on success, 2 with one line on stderr for bad input or settings.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__, api, report
from .compare import PRESET_TITLES, PRESETS, bit_sweep, compare
from .config import CALIBRATIONS, DEFAULT_PERCENTILE, GRANULARITIES, MODES, ROUNDINGS
from .schemes import FORMATS
from .errors import QuantcalcError

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quantcalc", description="Quantization error calculator: scale, zero point, codes, "
        "reconstruction and error metrics of a tensor under integer quantization.")
    parser.add_argument("--version", action="version", version=f"quantcalc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("analyze", help="quantize one tensor and report the error")
    add_input_arguments(p)
    p.add_argument("--format", choices=FORMATS, default="int",
                   help="number format (default int)")
    p.add_argument("--block-size", type=int, help="values per block (nf4; default 64)")
    p.add_argument("--bits", type=int, default=8, help="bit depth, 2..16 (default 8)")
    p.add_argument("--mode", choices=MODES, default="symmetric")
    p.add_argument("--narrow-range", action="store_true",
                   help="symmetric only: q_min = -q_max (TensorRT / ONNX Runtime weights)")
    p.add_argument("--rounding", choices=ROUNDINGS, default="half-even")
    p.add_argument("--seed", type=int, default=0, help="seed for stochastic rounding")
    p.add_argument("--range", nargs=2, type=float, metavar=("MIN", "MAX"),
                   help="a custom range (values outside are clipped)")
    p.add_argument("--calibration", choices=[c for c in CALIBRATIONS if c != "custom"],
                   help="derive the range from the samples (default minmax)")
    p.add_argument("--percentile", type=float, default=DEFAULT_PERCENTILE)
    p.add_argument("--granularity", choices=GRANULARITIES, default="tensor")
    p.add_argument("--axis", type=int, default=0, help="channel axis for --granularity channel")
    p.add_argument("--group-size", type=int, default=32)
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
    return parser


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
        return {"text": sys.stdin.read()}, "stdin"
    path = Path(args.input)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise QuantcalcError(f"cannot read {args.input}: {exc.strerror}", "file") from None
    return {"file_name": path.name, "file_bytes": data, "tensor": args.tensor}, \
        args.tensor or path.stem

def _config(args, default_name):
    config = {"bits": args.bits, "mode": args.mode, "narrow_range": args.narrow_range,
              "rounding": args.rounding, "seed": args.seed, "percentile": args.percentile,
              "granularity": args.granularity, "axis": args.axis,
              "group_size": args.group_size, "name": args.name or default_name,
              "tensor": args.tensor, "format": args.format, "block_size": args.block_size}
    if args.range is not None:
        if args.calibration:
            raise QuantcalcError("give either --range or --calibration, not both", "calibration")
        config.update(calibration="custom", range_min=args.range[0], range_max=args.range[1])
    else:
        config["calibration"] = args.calibration or "minmax"
    return config

def _table(summary: dict) -> str:
    rows = [(k, v) for k, v in report.summary_rows(summary)]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

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
    lines = [f"{'configuration':34s} {'bits/value':>10s} {'SQNR dB':>8s} {'RMSE':>11s} "
             f"{'rel RMSE':>9s} {'max |err|':>10s} {'clipped':>8s}  Pareto"]
    for r in rows:
        lines.append(f"{r['label']:34s} {r['bits_per_value']:10.3f} {r['sqnr_db']:8.2f} "
                     f"{r['rmse']:11.4g} {r['rel_rmse']:9.4f} {r['max_abs_error']:10.4g} "
                     f"{r['clip_rate']:8.3%}  {'*' if r['pareto'] else ''}")
    return "\n".join(lines)


def run_analyze(args):
    source, default_name = _source(args)
    config = _config(args, default_name)
    result = api.run(config, source)
    problem = _write({"csv": lambda: report.per_value_csv(result),
                      "summary_csv": lambda: report.summary_csv(result),
                      "pdf": lambda: report.pdf(result)}, args)
    if problem:
        raise QuantcalcError(problem, "output")
    summary = result.summary()
    print(json.dumps(report.to_jsonable(summary)) if args.json else _table(summary))


def run_compare(args):
    source, default_name = _source(args)
    name = args.name or default_name
    specs = list(PRESETS.get(args.preset, [])) + args.config
    values = api.load(source)
    rows = compare(values, specs, name)
    sweep = bit_sweep(values, name=name) if args.sweep else None
    problem = _write({"csv": lambda: report.compare_csv(rows),
                      "pdf": lambda: report.compare_pdf(rows, sweep, name)}, args)
    if problem:
        raise QuantcalcError(problem, "output")
    if args.json:
        print(json.dumps(report.to_jsonable({"name": name, "rows": rows, "sweep": sweep})))
    else:
        print(_compare_table(rows))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
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
