"""`python -m quantcalc audit ORIGINAL QUANTIZED`: a quantized checkpoint (GGUF, FP8,
compressed-tensors, GPTQ/AWQ) against its original, tensor by tensor.

ORIGINAL and QUANTIZED are each one path: a file, a model.safetensors.index.json or a model
folder (with its config.json); the same checks and outputs as `scan` (every output path checked
before any work and never an input, --jobs / --dask, a progress line on a terminal, Ctrl-C
writes the reports of the tensors done).
"""

import sys

from quantcalc import api
from quantcalc.cli import interrupts, outputs
from quantcalc.cli.scan import ProgressLine
from quantcalc.errors import QuantcalcError
from quantcalc.reports import exports


def add_parser(commands):
    p = commands.add_parser("audit", help="a quantized checkpoint against its original: the "
                            "error each tensor really carries")
    p.add_argument("original", metavar="ORIGINAL", help="the original checkpoint: a file, an "
                   "index or a folder")
    p.add_argument("quantized", metavar="QUANTIZED", help="the quantized one: a GGUF, or "
                   "safetensors with its config.json (FP8, compressed-tensors, GPTQ, AWQ)")
    p.add_argument("--imatrix", metavar="FILE", help="llama.cpp importance matrix: rows report "
                   "the importance-weighted error, and llama.cpp's types are also reproduced "
                   "with it")
    p.add_argument("--tensor", action="append", default=[], metavar="NAME",
                   help="audit only this tensor (the quantized side's name; repeatable)")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes")
    p.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster (pip install "
                   "'quantcalc[dask]'); the workers must see the files at the same paths")
    p.add_argument("--memory-values", type=int, metavar="N", help="values per slab read from "
                   "each side (default 2^20 = 1048576)")
    outputs.add_options(p, exports.AUDIT)
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    written = outputs.requested(args, exports.AUDIT)
    quiet = outputs.stdout_taken(written)
    if args.jobs < 1:
        raise QuantcalcError("--jobs must be 1 or more", "jobs")
    if args.memory_values is not None and args.memory_values < 1:
        raise QuantcalcError("--memory-values must be 1 or more", "memory")
    outputs.check_writable(written)  # before any work: a bad path must not cost an audit
    listed = outputs.answer(api.audit_inputs([args.original], [args.quantized], args.imatrix))
    outputs.check_not_inputs(written, listed["files"])
    bar = ProgressLine(enabled=not args.quiet and sys.stderr.isatty())
    with interrupts.CtrlC() as ctrl_c:
        try:
            reply = outputs.answer(api.audit_model(
                [args.original], [args.quantized], args.imatrix, on_progress=bar.show,
                names=args.tensor or None, slab_values=args.memory_values,
                jobs=args.jobs, dask=args.dask))
        finally:
            bar.done()
        ctrl_c.hold()
        doc = reply["document"]
        outputs.deliver(written, lambda kind: outputs.answer(
            api.audit_export(doc, kind))["bytes"], table=not quiet)
        if reply["interrupted"]:
            mark = doc["interrupted"]
            print(f"quantcalc: interrupted after {mark['tensors_done']} of "
                  f"{mark['tensors_total']} tensors; the reports hold those", file=sys.stderr)
            return 130
    if ctrl_c.pressed:
        print("quantcalc: interrupted while the reports were written; they were finished",
              file=sys.stderr)
        return 130
    return 0
