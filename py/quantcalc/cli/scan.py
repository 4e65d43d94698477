"""`python -m quantcalc scan PATH...`: a whole checkpoint, every tensor under every format.

Locally in one process (default), in N worker processes (--jobs N), or as tasks on a running
Dask cluster (--dask tcp://scheduler:8786; the workers read the files from the same path). A
progress line goes to stderr on a terminal; Ctrl-C writes the reports of the tensors done.
"""

import json
import sys
import time

from quantcalc.readers import checkpoint as checkpoints
from quantcalc.engine import compare
from quantcalc.cli import plan as plan_cli
from quantcalc.reports import tables as report
from quantcalc.scan import model_scan as scan
from quantcalc.scan import jobs as scan_jobs
from quantcalc.errors import QuantcalcError, printable
from quantcalc.reports.tables import display
from quantcalc.scan.report import EXPORTS

WORST_SHOWN = 20


def add_parser(commands):
    p = commands.add_parser("scan", help="every tensor of a checkpoint (safetensors, shards, "
                            "GGUF, npz) under one or more formats")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, a folder, or a "
                   "model.safetensors.index.json")
    p.add_argument("--format", action="append", default=[], metavar="SPEC", dest="formats",
                   help='a format name (q4_k) or settings ("format=int bits=4 granularity=group '
                   'group_size=128"); repeatable')
    p.add_argument("--preset", choices=sorted(compare.PRESETS),
                   help="a ready set of formats: " + "; ".join(
                       f"{k}: {compare.PRESET_TITLES[k]}" for k in sorted(compare.PRESETS)))
    p.add_argument("--tensor", action="append", default=[], metavar="NAME",
                   help="scan only this tensor (repeatable)")
    p.add_argument("--imatrix", metavar="FILE", help="llama.cpp importance matrix: the "
                   "K-quants search with it and rows report the weighted error")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes")
    p.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster (pip install "
                   "'quantcalc[dask]'); the workers must see the files at the same paths")
    p.add_argument("--memory-values", type=int, default=scan.WHOLE_VALUES, metavar="N",
                   help="tensors with more values are streamed in slabs (default %(default)s)")
    p.add_argument("--csv", metavar="PATH", help="one row per tensor and format")
    p.add_argument("--json", metavar="PATH", help="the whole scan (- for stdout)")
    p.add_argument("--pdf", metavar="PATH", help="totals, figures and the worst tensors")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    plan_cli.add_target_arguments(p, prefix="plan-")
    p.add_argument("--plan-json", metavar="PATH", help="with --plan-bpw or --plan-size: the "
                   "plan's recipe, as quantcalc plan writes it")
    return p


def run(args) -> int:
    specs = list(compare.PRESETS.get(args.preset, [])) + list(args.formats)
    if not specs:
        raise QuantcalcError("choose formats: --format SPEC (repeatable) or --preset NAME",
                             "formats")
    if args.jobs < 1:
        raise QuantcalcError("--jobs must be 1 or more", "jobs")
    if args.memory_values < 1:
        raise QuantcalcError("--memory-values must be 1 or more", "memory")
    formats = scan.formats_from_specs(specs)
    model = checkpoints.open_checkpoint(args.paths)
    names = set(args.tensor) or None
    if names:
        for name in names:
            model.get(name)  # an unknown name is an error that lists the real ones
    rows = []
    bar = ProgressLine(enabled=not args.quiet and sys.stderr.isatty())
    common = dict(whole_values=args.memory_values, on_row=rows.append,
                  on_progress=bar.show, names=names)
    interrupted = False
    try:
        if args.dask or args.jobs > 1:
            _run_on_executor(args, model, specs, common)
        else:
            importance = None
            if args.imatrix:
                importance = scan_jobs.importance_from_path(args.imatrix)
            scan.scan(model, formats, importance, **common)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.done()
    order = {e.name: i for i, e in enumerate(model.tensors)}
    rows.sort(key=lambda r: order[r["name"]])
    doc = scan.document(model, formats, rows)
    _write_reports(doc, args)
    if args.json != "-":
        print(summary_text(doc))
    if not interrupted and (args.plan_bpw is not None or args.plan_size is not None):
        # through JSON, so the plan is the one `quantcalc plan scan.json` makes
        plain = scan.from_plain(json.loads(report.json_text(doc)))
        result = plan_cli.make_plan(plain, args.plan_bpw, args.plan_size, args)
        plan_cli.write([(args.plan_json, "json")], result)
        print(plan_cli.summary_text(result))
    if interrupted:
        print(f"quantcalc: interrupted after {len(rows)} tensors; the reports hold those",
              file=sys.stderr)
        return 130
    return 0


def _run_on_executor(args, model, specs, common):
    if args.dask:
        try:
            from dask.distributed import Client, as_completed
        except ImportError:
            raise QuantcalcError("--dask needs dask.distributed: pip install 'quantcalc[dask]'",
                                 "dask") from None
        with Client(args.dask) as client:
            scan_jobs.scan_parallel(model, specs, client.submit, as_completed, args.imatrix,
                               **common)
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed
    with ProcessPoolExecutor(args.jobs) as pool:
        scan_jobs.scan_parallel(model, specs, pool.submit, as_completed, args.imatrix, **common)


def _write_reports(doc, args):
    for option, make in EXPORTS.items():
        if getattr(args, option):
            report.save(getattr(args, option), make(doc))


def summary_text(doc) -> str:
    """Totals per format, then the worst tensors of the first format."""
    lines = [f"{len(doc['tensors'])} tensors; " + "; ".join(doc["notes"])
             if doc["notes"] else f"{len(doc['tensors'])} tensors"]
    width = max([len(t["format"]) for t in doc["totals"]] + [6])
    lines.append(f"{'format':{width}s}  {'bits/value':>10s}  {'MB':>10s}  {'total error':>12s}  "
                 f"refused")
    for t in doc["totals"]:
        bits = "n/a" if t["bits_per_value"] is None else f"{t['bits_per_value']:.4g}"
        lines.append(f"{printable(t['format']):{width}s}  {bits:>10s}  {t['bytes'] / 1e6:>10.4g}  "
                     f"{t['total_error']:>12.4g}  {t['refused']}")
    if doc["formats"]:
        first = doc["formats"][0]["label"]
        lines.append("")
        lines.append(f"worst tensors under {printable(first)} (lowest SQNR first):")
        for row in scan.worst_first(doc["tensors"])[:WORST_SHOWN]:
            result = row["results"][0] if row["results"] else None
            sqnr = display("sqnr_db", result["sqnr_db"]) if result and result["sqnr_db"] \
                is not None else (result["error"][:60] if result else "; ".join(row["notes"])[:60])
            lines.append(f"  {printable(row['name'])[:60]:60s}  {row['role']:9s}  {sqnr}")
    return "\n".join(lines)


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
