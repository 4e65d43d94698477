#!/usr/bin/env python3
"""Peak memory of the command line on hostile-size inputs, as ratios measured in one run.

Each case runs `python -m quantcalc analyze FILE --json` in a fresh process and reads its peak
resident set size (ru_maxrss of the finished child). Printed: peak memory, the input's size on
disk, and their ratio, beside the same command on a tiny file (the interpreter's own footprint).

  - a CSV of 10^7 lines (about 92 MB), parsed line by line into one float64 buffer;
  - an .npz whose 96 MB array of zeros is compressed to about 100 KB (a decompression bomb),
    refused before it is expanded.

    python3 bench/hostile_memory.py [--lines N]
"""

import argparse
import io
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def peak_of(path: Path):
    """(peak RSS in bytes, seconds, exit status, last stderr line) of one CLI run."""
    script = ("import resource, runpy, sys; sys.argv = ['quantcalc', 'analyze', sys.argv[1], "
              "'--json', '-'];\ntry:\n    runpy.run_module('quantcalc', run_name='__main__')\n"
              "except SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
              "sys.exit(code)")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                         text=True, env={"PYTHONPATH": str(ROOT / "py"), "PATH": "/usr/bin:/bin"})
    seconds = time.perf_counter() - start
    lines = out.stderr.strip().splitlines()
    peak_kib = int(lines[-1])
    message = lines[-2] if len(lines) > 1 else ""
    return peak_kib * 1024, seconds, out.returncode, message


def write_csv(path: Path, lines: int):
    rng = np.random.default_rng(0)
    with open(path, "w") as stream:
        for start in range(0, lines, 1_000_000):
            block = rng.standard_normal(min(1_000_000, lines - start))
            stream.write("\n".join(f"{v:.6f}" for v in block) + "\n")


def write_bomb(path: Path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("w.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {
                "descr": "<f8", "fortran_order": False, "shape": (12_000_000,)})
            for _ in range(12):
                member.write(bytes(8_000_000))
    path.write_bytes(buffer.getvalue())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        tiny, csv, bomb = folder / "tiny.csv", folder / "big.csv", folder / "bomb.npz"
        tiny.write_text("1\n2\n3\n")
        write_csv(csv, args.lines)
        write_bomb(bomb)
        base, *_ = peak_of(tiny)
        print(f"{'input':32s} {'on disk':>10s} {'peak RSS':>10s} {'peak/disk':>9s} "
              f"{'over tiny':>10s} {'seconds':>8s}  exit")
        for label, path in (("tiny CSV (3 lines)", tiny), (f"CSV, {args.lines:,} lines", csv),
                            ("npz bomb (96 MB of zeros)", bomb)):
            peak, seconds, status, message = peak_of(path)
            size = path.stat().st_size
            print(f"{label:32s} {size / 1e6:9.1f}M {peak / 1e6:9.1f}M {peak / size:9.2f} "
                  f"{(peak - base) / 1e6:9.1f}M {seconds:8.1f}  {status}")
            if status:
                print(f"    {message}")


if __name__ == "__main__":
    main()
