#!/usr/bin/env python3
"""Model scan: memory and throughput, as ratios measured side by side in one run.

Writes two BF16 safetensors checkpoints of Llama-8B-like tensors (4096 x 4096 projections and a
128256 x 4096 embedding of 1.05 GB, which no whole-tensor read fits in the page's memory): a
small one and one of --gb gigabytes. Then, each in a fresh process:

  floor   read every tensor once, slab by slab, and take np.abs(x).max() (the physical floor)
  cli     python -m quantcalc scan FILE --format "format=int bits=8 granularity=channel"
  page    the built page in Chromium scans the large file with the same format

and prints: CLI time / floor time (target <= 6), the CLI's peak RSS on the large file / on the
small one (target: about 1, i.e. independent of the file size), the page's peak wasm memory
(target < 512 MB), page time / CLI time (target <= 3) and the longest main-thread task while
the page scans (target <= 50 ms).

    python3 bench/scan_model.py [--gb 4] [--dir /tmp/quantcalc-bench] [--no-page]
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "py"))
from bench.page_session import ready_page  # noqa: E402
from tests.support.checkpoints import to_bf16_bits  # noqa: E402

FORMAT = "format=int bits=8 granularity=channel"
# Injected before any page script (Playwright init scripts are not subject to the page's CSP).
LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push([e.startTime, e.duration]);
}).observe({ type: "longtask", buffered: true });
"""
HIDDEN = 4096
EMBED_ROWS = 128_256
MB = 1 << 20


def write_checkpoint(path: Path, projections: int, embedding: bool):
    """A safetensors file written piece by piece (never whole in memory)."""
    import json
    import struct

    if path.exists():
        return
    rng = np.random.default_rng(0)
    block = to_bf16_bits(rng.standard_normal((HIDDEN, HIDDEN)).astype(np.float32) * 0.02)
    block[:, 7] = to_bf16_bits(np.full(HIDDEN, 0.9, np.float32))  # an outlier column
    raw = block.tobytes()
    tensors = [(f"model.layers.{i // 4}.mlp.{['up', 'gate', 'down', 'o'][i % 4]}_proj.weight",
                (HIDDEN, HIDDEN), 1) for i in range(projections)]
    if embedding:
        tensors.insert(0, ("model.embed_tokens.weight", (EMBED_ROWS, HIDDEN),
                           EMBED_ROWS // HIDDEN))
    header, offset = {}, 0
    for name, shape, _ in tensors:
        size = shape[0] * shape[1] * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset,
                                                                                offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text)
        for name, shape, copies in tensors:
            for _ in range(copies):
                out.write(raw)
            rest = shape[0] - copies * HIDDEN
            if rest:
                out.write(raw[:rest * HIDDEN * 2])


FLOOR = """
import sys, numpy as np
from quantcalc.readers import checkpoint
model = checkpoint.open_checkpoint([sys.argv[1]])
for entry in model.tensors:
    for _, slab in checkpoint.SlabReader(entry).slabs(max(1, (1 << 22) // entry.row_values)):
        float(np.abs(slab).max())
"""


def measured(code_args):
    """(seconds, peak RSS bytes) of `python -c WRAPPER ...` in a fresh process."""
    wrapper = ("import runpy, sys\n"
               "mode = sys.argv.pop(1)\n"
               "if mode == 'floor':\n"
               "    exec(sys.argv.pop(1))\n"
               "else:\n"
               "    sys.argv = ['quantcalc'] + sys.argv[1:]\n"
               "    try:\n"
               "        runpy.run_module('quantcalc', run_name='__main__')\n"
               "    except SystemExit as e:\n"
               "        assert not e.code, e.code\n"
               # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forked
               # parent (this script, after writing gigabytes), VmHWM belongs to the new image
               "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
               "print(int(hwm.split()[1]), file=sys.stderr)\n")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", wrapper, *code_args], capture_output=True,
                         text=True, env={"PYTHONPATH": str(ROOT / "py"), "PATH": "/usr/bin:/bin"})
    seconds = time.perf_counter() - start
    if out.returncode:
        raise SystemExit(out.stderr)
    return seconds, int(out.stderr.strip().splitlines()[-1]) * 1024


def floor(path):
    return measured(["floor", FLOOR, str(path)])


def cli(path, out, *extra):
    return measured(["cli", "scan", str(path), "--format", FORMAT, "--json", str(out), "--quiet",
                     *extra])


def page(path):
    """(seconds, peak wasm memory bytes, tensors) of the page scanning `path`."""
    # start-up finished (matplotlib in, the service worker's precache done), as when a user
    # has chosen the files: the long tasks counted are the scan's own
    with ready_page(init_script=LONG_TASKS) as tab:
        tab.set_input_files("#scan-files", [str(path)])
        tab.select_option("#scan-preset", "custom")
        tab.fill("#scan-formats", FORMAT)
        start = time.perf_counter()
        tab.evaluate("() => { window.__longTasks.length = 0; }")
        clicked = tab.evaluate("() => performance.now()")
        tab.click("#scan-start")
        tab.wait_for_function("() => Number(document.body.dataset.scans || 0) > 0",
                              timeout=3_600_000, polling=1000)
        seconds = time.perf_counter() - start
        memory = int(tab.evaluate("() => document.body.dataset.scanMemoryBytes || 0"))
        status = tab.text_content("#scan-status")
        tasks = tab.evaluate("() => window.__longTasks")
        longest = max([d for _, d in tasks], default=0)
        for start, duration in tasks:
            print(f"  long task {duration:.0f} ms at {(start - clicked) / 1000:.1f} s after "
                  f"Scan was pressed")
    return seconds, memory, status, longest


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gb", type=float, default=4.0, help="size of the large checkpoint")
    parser.add_argument("--dir", default="/tmp/quantcalc-bench")
    parser.add_argument("--no-page", action="store_true")
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    per = HIDDEN * HIDDEN * 2
    embed = EMBED_ROWS * HIDDEN * 2
    count = max(0, int((args.gb * 1e9 - embed) // per))
    small, large = folder / "small.safetensors", folder / f"large-{args.gb:g}GB.safetensors"
    print("writing the checkpoints (once)…", flush=True)
    write_checkpoint(small, 8, embedding=False)
    write_checkpoint(large, count, embedding=True)
    for path in (small, large):
        print(f"  {path.name}: {path.stat().st_size / 1e9:.2f} GB")

    # the same bytes from the page cache for every contender: one read to warm it, and the
    # floor measured before and after the CLI (the faster counts)
    with open(large, "rb") as stream:
        while stream.read(64 * MB):
            pass
    floor_s, floor_rss = floor(large)
    cli_s, cli_rss = cli(large, folder / "large.json")
    floor_s = min(floor_s, floor(large)[0])
    _, small_rss = cli(small, folder / "small.json")
    size = large.stat().st_size
    print(f"\nfloor (read + abs max): {floor_s:7.1f} s  {size / floor_s / 1e6:6.0f} MB/s  "
          f"peak RSS {floor_rss / MB:6.0f} MiB")
    print(f"CLI scan, {FORMAT}: {cli_s:7.1f} s  {size / cli_s / 1e6:6.0f} MB/s  "
          f"peak RSS {cli_rss / MB:6.0f} MiB")
    print(f"CLI peak RSS on the {small.stat().st_size / 1e9:.2f} GB file: {small_rss / MB:.0f} "
          f"MiB")
    jobs = max(2, min(os.cpu_count() or 1, 4))
    jobs_s, _ = cli(large, folder / "jobs.json", "--jobs", str(jobs))
    print(f"CLI scan with --jobs {jobs}: {jobs_s:7.1f} s  {size / jobs_s / 1e6:6.0f} MB/s")
    print(f"\nratio CLI / floor time:              {cli_s / floor_s:5.2f}   (target <= 6)")
    print(f"ratio CLI peak RSS large / small:     {cli_rss / small_rss:5.2f}   (target ~1: "
          f"independent of the file size)")
    if not args.no_page:
        page_s, memory, status, longest = page(large)
        print(f"\npage scan: {page_s:7.1f} s  {size / page_s / 1e6:6.0f} MB/s  peak wasm memory "
              f"{memory / MB:.0f} MiB  ({status})")
        print(f"ratio page / CLI time:               {page_s / cli_s:5.2f}   (target <= 3; the "
              f"page uses one worker per core, the CLI one process)")
        print(f"ratio page / CLI --jobs {jobs} time:       {page_s / jobs_s:5.2f}")
        print(f"page peak wasm memory:               {memory / MB:5.0f} MiB (target < 512)")
        print(f"longest main-thread task during the scan: {longest:.0f} ms (target <= 50)")


if __name__ == "__main__":
    main()
