#!/usr/bin/env python3
"""Speed of a full per-tensor 8-bit analysis, as a ratio to one np.abs(x).max() pass.

Both are timed in the same run on the same 10^7 float32 values (best of 5 each, after a warm-up),
so the ratio is about the code, not the machine. Target (issue 2): 10x or less.

    python3 bench/analysis_speed.py [--size N]
"""

import argparse
import sys
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "py"))
from quantcalc import Config, analyze
from quantcalc.engine import malloc as heap  # noqa: E402
from timing import best_of  # noqa: E402  (bench/ is this script's own folder)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10_000_000)
    args = parser.parse_args()
    # as the command line runs: freed chunk buffers stay in the process (quantcalc/heap.py)
    tuned = heap.keep_freed_memory()
    x = np.random.default_rng(0).standard_normal(args.size).astype(np.float32)
    baseline = best_of(lambda: np.abs(x).max())
    print(f"values: {args.size:,} float32 ({x.nbytes / 1e6:.0f} MB); malloc thresholds "
          f"{'set as the command line sets them' if tuned else 'left alone (not glibc)'}")
    print(f"np.abs(x).max():            {baseline * 1e3:8.1f} ms   1.00x")
    cases = {
        "per tensor, min-max": Config(),
        "per tensor, asymmetric": Config(mode="asymmetric"),
        "per channel (1000 ch)": None,
        "per group of 128": Config(granularity="group", group_size=128),
        "per tensor, percentile": Config(calibration="percentile"),
    }
    for label, config in cases.items():
        data = x
        if config is None:
            data, config = x.reshape(1000, -1), Config(granularity="channel")
        elapsed = best_of(lambda: analyze(data, config, keep=0))
        tracemalloc.start()
        analyze(data, config, keep=0)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"{label + ':':27s} {elapsed * 1e3:8.1f} ms  {elapsed / baseline:5.2f}x"
              f"   peak extra memory {peak / x.nbytes:4.2f}x the input")


if __name__ == "__main__":
    main()
