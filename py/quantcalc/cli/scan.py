"""`python -m quantcalc scan PATH...`: a whole checkpoint, every tensor under every format.

Locally in one process (default), in N worker processes (--jobs N), or as tasks on a running
Dask cluster (--dask tcp://scheduler:8786; the workers read the files from the same path). A
progress line goes to stderr on a terminal; Ctrl-C writes the reports of the tensors done,
and a second Ctrl-C waits until they are written (interrupts.py). Every output path is checked
before the scan: it can be written and it is none of the files the scan reads.
"""

import os
import sys
import time

from quantcalc import api
from quantcalc.cli import inputs, interrupts, outputs
from quantcalc.cli import plan as plan_cli
from quantcalc.errors import QuantcalcError
from quantcalc.reports import exports


def add_parser(commands, presets):
    p = commands.add_parser("scan", help="every tensor of a checkpoint (safetensors, shards, "
                            "GGUF, npz) under one or more formats")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, a folder, or a "
                   "model.safetensors.index.json")
    p.add_argument("--format", action="append", default=[], metavar="SPEC", dest="formats",
                   help='a format name (q4_k) or settings ("format=int bits=4 granularity=group '
                   'group_size=128"); repeatable')
    inputs.add_preset_argument(p, presets)
    p.add_argument("--tensor", action="append", default=[], metavar="NAME",
                   help="scan only this tensor (repeatable)")
    p.add_argument("--imatrix", metavar="FILE", help="llama.cpp importance matrix: the "
                   "K-quants search with it and rows report the weighted error")
    p.add_argument("--allow-requantize", action="store_true", help="measure already-quantized "
                   "tensors (a GGUF in Q4_1) on their dequantized values, as llama-quantize "
                   "--allow-requantize re-quantizes them; without it they are listed, not "
                   "measured, and a plan of them has nothing to plan")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes")
    p.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster (pip install "
                   "'quantcalc[dask]'); the workers must see the files at the same paths")
    p.add_argument("--estimate", nargs="?", type=float, const=0.1, metavar="DB",
                   help="estimate each tensor x format's error from a sample of its rows, "
                   "grown until the 95 %% interval of its SQNR is within ±DB (default 0.1); "
                   "statistics and scale ranges stay exact. Without it every value is measured")
    p.add_argument("--estimate-seed", type=int, default=0, metavar="N",
                   help="the sample's seed (the same seed draws the same rows; default 0)")
    p.add_argument("--memory-values", type=int, metavar="N",
                   help="tensors with more values are streamed in slabs (default 2^26 = "
                   "67108864, 256 MB of float32)")
    outputs.add_options(p, exports.SCAN)
    p.add_argument("--quiet", action="store_true", help="no progress line")
    plan_cli.add_target_arguments(p, prefix="plan-")
    # the plan's reports, as quantcalc plan writes them: --plan-json, --plan-csv, ...
    outputs.add_options(p, exports.PLAN, prefix="plan-")
    p.set_defaults(run=run)
    return p


def _checked(args) -> list:
    """The format specs to scan with, once the arguments make sense."""
    specs = inputs.preset_specs(args.preset) + list(args.formats)
    if not specs:
        raise QuantcalcError("choose formats: --format SPEC (repeatable) or --preset NAME",
                             "formats")
    if args.jobs < 1:
        raise QuantcalcError("--jobs must be 1 or more", "jobs")
    if args.memory_values is not None and args.memory_values < 1:
        raise QuantcalcError("--memory-values must be 1 or more", "memory")
    return specs


def run(args) -> int:
    scan_outputs = outputs.requested(args, exports.SCAN)
    plan_outputs = outputs.requested(args, exports.PLAN, prefix="plan-")
    written = scan_outputs + plan_outputs
    quiet = outputs.stdout_taken(written)
    specs = _checked(args)
    outputs.check_writable(written)  # before any work: a bad path must not cost a scan
    listed = outputs.answer(api.scan_inputs(args.paths, args.tensor or None))
    outputs.check_not_inputs(written, listed["files"] + ([args.imatrix] if args.imatrix else []))
    jobs = _jobs(args, listed["tensors"])
    planned = args.plan_bpw is not None or args.plan_size is not None
    if planned and listed["plan_refusal"] and not args.allow_requantize:
        raise QuantcalcError(listed["plan_refusal"], "scan")  # before a scan it would waste
    options = plan_cli.plan_options(args, args.plan_bpw, args.plan_size) if planned else None
    with interrupts.CtrlC() as ctrl_c:
        doc, interrupted = _scan(args, specs, jobs)
        ctrl_c.hold()  # the reports are written whole, whatever Ctrl-C comes now
        outputs.deliver(scan_outputs, lambda kind: outputs.answer(
            api.scan_export(doc, kind))["bytes"], table=not quiet)
        if interrupted:
            mark = doc["interrupted"]
            print(f"quantcalc: interrupted after {mark['tensors_done']} of "
                  f"{mark['tensors_total']} tensors; the reports hold those", file=sys.stderr)
            return 130
        if planned and not ctrl_c.pressed:  # the plan of this very document: what
            plan_cli.deliver_plan(doc, options, plan_outputs, table=not quiet)  # `plan` makes
    if ctrl_c.pressed:
        print("quantcalc: interrupted while the reports were written; they were finished",
              file=sys.stderr)
        return 130
    return 0


def _scan(args, specs, jobs):
    """(the scan document, whether Ctrl-C ended it), with the progress line on a terminal."""
    bar = ProgressLine(enabled=not args.quiet and sys.stderr.isatty())
    try:
        reply = outputs.answer(api.scan_model(
            args.paths, specs, args.imatrix,
            api.WHOLE_VALUES if args.memory_values is None else args.memory_values,
            on_progress=bar.show, names=args.tensor or None, jobs=jobs, dask=args.dask,
            allow_requantize=args.allow_requantize, estimate_db=args.estimate,
            estimate_seed=args.estimate_seed))
    finally:
        bar.done()
    return reply["document"], reply["interrupted"]


def _jobs(args, tensors) -> int:
    """--jobs, capped at the tensors to scan and the cores (said on stderr when it is)."""
    if args.dask or args.jobs <= 1:
        return args.jobs
    used = api.workers(args.jobs, tensors)
    if used < args.jobs:
        cores = os.cpu_count() or 1
        print(f"quantcalc: --jobs {args.jobs}: using {used} worker "
              f"process{'' if used == 1 else 'es'} ({tensors} tensor{'' if tensors == 1 else 's'}"
              f" to scan, {cores} core{'' if cores == 1 else 's'})", file=sys.stderr)
    return used


class ProgressLine:
    """tensors 12/291 · 1.21/4.03 GB · 210 MB/s · 0:13 left, redrawn in place on stderr."""

    def __init__(self, enabled, stream=sys.stderr):
        self.enabled, self.stream, self.drawn = enabled, stream, False

    def show(self, state):
        if not self.enabled:
            return
        left = state["seconds_left"]
        eta = "" if left is None else f" · {time.strftime('%H:%M:%S', time.gmtime(left))} left"
        text = (f"tensors {state['tensors']}/{state['total_tensors']} · "
                f"{state['bytes'] / 1e9:.2f}/{state['total_bytes'] / 1e9:.2f} GB · "
                f"{state['bytes_per_second'] / 1e6:.0f} MB/s{eta}")
        self.stream.write("\r" + text.ljust(78)[:120])
        self.stream.flush()
        self.drawn = True

    def done(self):
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
