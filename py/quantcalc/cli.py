"""`python -m quantcalc analyze ...`: the command line on the same facade as the page.

Exit status 0 on success, 2 with one line on stderr for bad input or settings.
"""

import argparse
import json
import math
import sys
from pathlib import Path

from . import __version__, api, report
from .config import CALIBRATIONS, DEFAULT_PERCENTILE, GRANULARITIES, MODES, ROUNDINGS
from .errors import QuantcalcError

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quantcalc", description="Quantization error calculator: scale, zero point, codes, "
        "reconstruction and error metrics of a tensor under integer quantization.")
    parser.add_argument("--version", action="version", version=f"quantcalc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("analyze", help="quantize one tensor and report the error")
    p.add_argument("input", nargs="?", help="a .npy/.npz/.safetensors/.csv/.txt file, or - for "
                   "text on stdin")
    p.add_argument("--values", help='inline values, e.g. "-1.25, 0.14, 1.46"')
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
    p.add_argument("--tensor", help="which array of a .npz / .safetensors file")
    p.add_argument("--name", help="tensor name for reports (default: the file or tensor name)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--csv", metavar="PATH", help="write the per-value CSV")
    p.add_argument("--summary-csv", metavar="PATH", help="write the summary CSV")
    p.add_argument("--pdf", metavar="PATH", help="write the PDF report")
    return parser

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
              "tensor": args.tensor}
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

def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        source, default_name = _source(args)
        config = _config(args, default_name)
        result = api.run(config, source)
    except QuantcalcError as exc:
        print(f"quantcalc: error: {exc.message}", file=sys.stderr)
        return 2
    outputs = {"csv": report.per_value_csv, "summary_csv": report.summary_csv, "pdf": report.pdf}
    for option, write in outputs.items():
        path = getattr(args, option)
        if path:
            try:
                Path(path).write_bytes(write(result))
            except OSError as exc:
                print(f"quantcalc: error: cannot write {path}: {exc.strerror}", file=sys.stderr)
                return 2
    summary = result.summary()
    if args.json:
        print(json.dumps(report.to_jsonable(summary)))
    else:
        print(_table(summary))
    return 0

if __name__ == "__main__":
    sys.exit(main())
