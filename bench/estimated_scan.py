#!/usr/bin/env python3
"""Estimated scans (issue 28): exact against `--estimate 0.1` on a ~2 GB Llama-shaped checkpoint
under llama.cpp's types, on the command line and in the page, measured in one run.

Writes a BF16 safetensors checkpoint in a temporary folder (deleted at the end unless --keep):
as many Llama-7B layers as fit 2 GiB, each with 4096 x 4096 q/k/v/o projections, 11008 x 4096
gate and up, 4096 x 11008 down and two norms; normal values whose rows differ in magnitude
(log-normal spread, sigma 0.3), a few outlier input channels in q and k, Student-t tails in down.
Then, one after the other (the file read once first, so every run finds it in the page cache):

  estimate   python -m quantcalc scan FILE --preset llama.cpp --estimate 0.1 --estimate-seed 0
             --json OUT in a fresh process, before and after the exact scan (the faster counts:
             on a shared machine the load drifts over the exact scan's many minutes)
  exact      the same without --estimate
  page       the built page in Chromium: the file through the Scan section's file input, the
             measurement left at its default for a checkpoint over 1 GiB (Quick estimate), Scan
             pressed, timed until the table is final (the first scan: the helper worker's
             start-up included); its JSON compared with the CLI estimate's at the page's memory
             budget (--memory-values 2^24: the page streams the 11008-row matrices in slabs,
             whose moments are summed slab by slab, so only then are the digits the same)

and prints the wall and CPU times (CPU: the work done, whatever else the machine runs; the
page's is every browser process's), exact / estimate (target >= 10), the largest |estimate -
exact| SQNR per format, the share of estimated tensor x format results whose 95 % interval holds
the exact SQNR, page / CLI estimate (target <= 3; the page uses one worker per core, the CLI one
process), the values in which the page's JSON differs from the CLI's, and what a 7B model
(14 GB in BF16) would take in each mode at the rates measured.

    python3 bench/estimated_scan.py [--layers N] [--keep DIR] [--no-page] [--no-exact]
"""

import argparse
import json
import math
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "py"))
from bench.page_session import ready_page  # noqa: E402
from tests.support.checkpoints import to_bf16_bits  # noqa: E402

HIDDEN, FFN = 4096, 11008
BUDGET = 2 * 2 ** 30
SEVEN_B = 14e9  # bytes of a 7B model in BF16
ENV = {"PYTHONPATH": str(ROOT / "py"), "PATH": "/usr/bin:/bin"}
CHUNK_ROWS = 512
PAGE_VALUES = 1 << 24  # api/scanning.PAGE_WHOLE_VALUES: the page streams larger tensors


def layer_tensors(i):
    """[(name, shape)] of Llama layer i."""
    p = f"model.layers.{i}."
    return ([(p + "input_layernorm.weight", (HIDDEN,))]
            + [(p + f"self_attn.{k}_proj.weight", (HIDDEN, HIDDEN)) for k in "qkvo"]
            + [(p + "post_attention_layernorm.weight", (HIDDEN,)),
               (p + "mlp.gate_proj.weight", (FFN, HIDDEN)),
               (p + "mlp.up_proj.weight", (FFN, HIDDEN)),
               (p + "mlp.down_proj.weight", (HIDDEN, FFN))])


def layers_that_fit(budget=BUDGET):
    per_layer = sum(2 * math.prod(shape) for _, shape in layer_tensors(0))
    return max(1, budget // per_layer)


def values(name, shape, rng, rows):
    """`rows` rows of tensor `name` (float32): see the module's description."""
    if len(shape) == 1:
        return (1.0 + 0.05 * rng.standard_normal(shape[0])).astype(np.float32)
    columns = shape[1]
    if "down_proj" in name:
        x = rng.standard_t(5, (rows, columns)).astype(np.float32)
    else:
        x = rng.standard_normal((rows, columns), dtype=np.float32)
    x *= np.exp(rng.normal(0.0, 0.3, (rows, 1))).astype(np.float32)
    if "q_proj" in name or "k_proj" in name:
        x[:, rng.choice(columns, 8, replace=False)] *= 12.0
    return x * np.float32(1.0 / math.sqrt(columns))


def write_checkpoint(path, layers):
    """The safetensors file, written a chunk of rows at a time (never whole in memory)."""
    tensors = [t for i in range(layers) for t in layer_tensors(i)]
    header, offset = {}, 0
    for name, shape in tensors:
        size = 2 * math.prod(shape)
        header[name] = {"dtype": "BF16", "shape": list(shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text)
        for index, (name, shape) in enumerate(tensors):
            rng = np.random.default_rng(index)
            if len(shape) == 1:
                out.write(to_bf16_bits(values(name, shape, rng, 1)).tobytes())
                continue
            for start in range(0, shape[0], CHUNK_ROWS):
                rows = min(CHUNK_ROWS, shape[0] - start)
                out.write(to_bf16_bits(values(name, shape, rng, rows)).tobytes())
    return len(tensors)


def cli_scan(path, out, *extra):
    """(wall seconds, CPU seconds, document) of `quantcalc scan PATH --preset llama.cpp --json
    OUT EXTRA` in a fresh process."""
    args = [sys.executable, "-m", "quantcalc", "scan", str(path), "--preset", "llama.cpp",
            "--json", str(out), "--quiet", *extra]
    cpu = children_cpu()
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=ENV)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr)
    return seconds, children_cpu() - cpu, json.loads(Path(out).read_text())


def children_cpu():
    """User + system CPU seconds of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def descendants_cpu():
    """User + system CPU seconds of every running process below this one (the browser's, and
    Playwright's driver), from /proc: on a shared machine, the work done whatever the load."""
    parents, ticks = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
            ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    mine, total = {os.getpid()}, 0
    for pid in sorted(parents):  # children have larger pids here, but do not rely on it:
        chain, seen = pid, set()
        while chain in parents and chain not in mine and chain not in seen:
            seen.add(chain)
            chain = parents[chain]
        if chain in mine and pid != os.getpid():
            mine.add(pid)
            total += ticks[pid]
    return total / os.sysconf("SC_CLK_TCK")


def differences(page, cli):
    """[(tensor, format, key, page's value, CLI's value)] where the documents differ (JSON
    numbers compared as numbers: the page's 16 is the command line's 16.0)."""
    out = [("", "", key, page.get(key), cli.get(key)) for key in sorted(set(page) | set(cli))
           if key != "tensors" and page.get(key) != cli.get(key)]
    for a, b in zip(page["tensors"], cli["tensors"]):
        out += [(a["name"], "", k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
                if k != "results" and a.get(k) != b.get(k)]
        for x, y in zip(a["results"], b["results"]):
            out += [(a["name"], x["format"], k, x.get(k), y.get(k)) for k in x
                    if x.get(k) != y.get(k)]
    return out


def compared(exact, estimate):
    """Per format: (largest |estimate - exact| SQNR in dB, results estimated, of which the
    interval holds the exact SQNR, results in all)."""
    out = {}
    truth = {t["name"]: t for t in exact["tensors"]}
    for tensor in estimate["tensors"]:
        for est, ref in zip(tensor["results"], truth[tensor["name"]]["results"]):
            worst, sampled, covered, count = out.get(est["format"], (0.0, 0, 0, 0))
            if isinstance(est["sqnr_db"], float) and isinstance(ref["sqnr_db"], float):
                gap = abs(est["sqnr_db"] - ref["sqnr_db"])
                worst = max(worst, gap)
                if est["sqnr_ci_db"] > 0:
                    sampled += 1
                    covered += gap <= est["sqnr_ci_db"]
            out[est["format"]] = (worst, sampled, covered, count + 1)
    return out


def page_scan(path, download):
    """(wall seconds, CPU seconds of the browser, status line, whether Quick was the default,
    the page's JSON) of the built page scanning `path` as a user does."""
    with ready_page(accept_downloads=True) as tab:
        tab.set_input_files("#scan-files", [str(path)])
        quick_by_default = tab.is_checked("#scan-mode-quick")
        tab.check("#scan-mode-quick")
        tab.select_option("#scan-preset", "llama.cpp")
        cpu = descendants_cpu()
        start = time.perf_counter()
        tab.click("#scan-start")
        tab.wait_for_function("() => Number(document.body.dataset.scans || 0) > 0",
                              timeout=3_600_000, polling=1000)
        seconds = time.perf_counter() - start
        cpu = descendants_cpu() - cpu
        status = tab.text_content("#scan-status")
        with tab.expect_download() as info:
            tab.click("[data-scan-download=json]")
        info.value.save_as(download)
    return seconds, cpu, status, quick_by_default, json.loads(Path(download).read_text())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=layers_that_fit())
    parser.add_argument("--keep", metavar="DIR", help="write (or reuse) the checkpoint here and "
                        "keep it")
    parser.add_argument("--no-page", action="store_true")
    parser.add_argument("--no-exact", action="store_true", help="skip the exact scan (the page "
                        "against the CLI estimate only)")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="quantcalc-est-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        run(folder, args)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def run(folder, args):
    path = folder / f"llama-{args.layers}-layers.safetensors"
    if not path.exists():
        print(f"writing {args.layers} Llama-7B layers in BF16…", flush=True)
        start = time.perf_counter()
        count = write_checkpoint(path, args.layers)
        print(f"  {count} tensors in {time.perf_counter() - start:.0f} s", flush=True)
    size = path.stat().st_size
    print(f"checkpoint: {path.name}, {size / 1e9:.2f} GB", flush=True)
    with open(path, "rb") as stream:  # into the page cache for every contender
        while stream.read(64 << 20):
            pass
    print(f"load average (1, 5, 15 min) at the start: {os.getloadavg()} on {os.cpu_count()} "
          "cores", flush=True)
    shown = lambda what, wall, cpu: print(f"{what:28} {wall:7.1f} s  {size / wall / 1e6:6.1f} "
                                          f"MB/s  CPU {cpu:7.1f} s", flush=True)
    estimate_args = ("--estimate", "0.1", "--estimate-seed", "0")
    before_s, before_cpu, estimate = cli_scan(path, folder / "estimate.json", *estimate_args)
    shown("CLI estimate (±0.1 dB)", before_s, before_cpu)
    rates = {}
    if not args.no_exact:
        exact_s, exact_cpu, exact = cli_scan(path, folder / "exact.json")
        shown("CLI exact", exact_s, exact_cpu)
        rates["CLI exact"] = size / exact_s
    after_s, after_cpu, again = cli_scan(path, folder / "estimate-again.json", *estimate_args)
    shown("CLI estimate again", after_s, after_cpu)
    print(f"  the same document as the first: {'yes' if again == estimate else 'NO'}")
    est_s = min(before_s, after_s)
    rates["CLI estimate"] = size / est_s
    if not args.no_exact:
        print(f"\nratio exact / estimate, wall time: {exact_s / est_s:6.1f}   (target >= 10; "
              f"{exact_s / max(before_s, after_s):.1f} with the slower estimate run); CPU time: "
              f"{exact_cpu / min(before_cpu, after_cpu):.1f}")
        accuracy(exact, estimate)
    if not args.no_page:
        rates["page estimate"] = page(path, folder, size, after_s, after_cpu, shown)
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    print(f"\na 7B model ({SEVEN_B / 1e9:.0f} GB in BF16) at the rates measured here:")
    for mode, rate in rates.items():
        print(f"  {mode:14} {SEVEN_B / rate / 60:7.1f} min")


def accuracy(exact, estimate):
    print("\nformat      largest |estimate - exact|   interval holds the exact SQNR")
    all_sampled = all_covered = 0
    for fmt, (worst, sampled, covered, count) in compared(exact, estimate).items():
        all_sampled, all_covered = all_sampled + sampled, all_covered + covered
        print(f"  {fmt:8}  {worst:10.3f} dB               {covered:3} of {sampled:3} estimated "
              f"({count - sampled} of {count} measured exactly)")
    print(f"coverage over all tensor x format estimates: {all_covered} of {all_sampled} = "
          f"{all_covered / max(1, all_sampled):.1%}   (target >= 90 %)")


def page(path, folder, size, cli_s, cli_cpu, shown):
    """The page's scan, against the CLI estimate run just before it; the page's rate."""
    page_s, page_cpu, status, default, page_doc = page_scan(path, folder / "page.json")
    print()
    shown("page estimate (±0.1 dB)", page_s, page_cpu)
    print(f"  {status}")
    print(f"  Quick estimate was the default for this {size / 2 ** 30:.2f} GiB file: "
          f"{'yes' if default else 'NO'}")
    paged_s, paged_cpu, paged = cli_scan(path, folder / "estimate-16M.json", "--estimate", "0.1",
                                         "--estimate-seed", "0", "--memory-values",
                                         str(PAGE_VALUES))
    shown(f"CLI estimate at {PAGE_VALUES} values", paged_s, paged_cpu)
    differ = differences(page_doc, paged)
    results = sum(len(t["results"]) for t in paged["tensors"])
    print(f"  the page's JSON against this one: {len(differ)} values differ "
          f"({results} tensor x format results)")
    for name, fmt, key, a, b in differ[:12]:
        gap = abs(a - b) / abs(b) if isinstance(a, float) and isinstance(b, float) and b else None
        print(f"    {name} {fmt} {key}: page {a!r}, CLI {b!r}"
              + (f" (relative {gap:.1e})" if gap is not None else ""))
    print(f"ratio page / CLI estimate, wall time: {page_s / cli_s:6.2f}   (target <= 3; the CLI "
          f"run just before); CPU time: {page_cpu / cli_cpu:.2f} (the page's workers and "
          "browser against one process)")
    return size / page_s


if __name__ == "__main__":
    main()
