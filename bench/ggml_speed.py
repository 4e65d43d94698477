#!/usr/bin/env python3
"""llama.cpp's types: quantcalc's bit-exact numpy transcription against ggml's own C, side by side.

For each type, on the same 4M float32 values (1024 rows of 4096), single thread, the best of
7 runs of each, ggml's and quantcalc's in turns, each after a warm-up (timing.side_by_side):
  ggml      ggml_quantize_chunk alone (the issue's "reference C quantizer"), and with the type's
            to_float after it (libggml-python's prebuilt ggml, ctypes): codes and reconstruction,
            what the analysis has before it measures anything
  quantcalc analyze(values, Config(format=...), keep=0): the same quantization plus every metric
  abs-max   one np.abs(x).max() pass, the unit of the analysis-speed targets
and the ratios of quantcalc's time to each; also SQNR on the standard normal tensor
and bits per value, the numbers the issue's note asks for. Needs the test dependencies (.venv).

    .venv/bin/python bench/ggml_speed.py [--rows N] [--imatrix] [--types q4_0,q4_1]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "py"), str(ROOT)]
from tests.support import ggml_reference as ggml  # noqa: E402
from quantcalc import Config, analyze
from quantcalc.engine import malloc as heap
from quantcalc.schema import registry  # noqa: E402
from timing import best_of, side_by_side  # noqa: E402  (bench/ is this script's own folder)

GGML_NAMES = {f.name: f.name.replace("_k", "_K") for f in registry.FORMATS
              if f.family == "ggml"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--imatrix", action="store_true", help="with an importance matrix")
    parser.add_argument("--types", help="comma-separated type names (default: all)")
    args = parser.parse_args()
    # as the command line runs: freed chunk buffers stay in the process (see quantcalc/heap.py)
    tuned = heap.keep_freed_memory()
    x = np.random.default_rng(0).standard_normal((args.rows, 4096)).astype(np.float32)
    weights = np.random.default_rng(1).uniform(0.1, 10, 4096).astype(np.float32) \
        if args.imatrix else None
    absmax = best_of(lambda: np.abs(x).max())
    print(f"{x.size:,} float32 values, one thread{', importance matrix' if args.imatrix else ''};"
          f" one np.abs(x).max() pass: {absmax * 1e3:.1f} ms; malloc thresholds "
          f"{'set as the command line sets them' if tuned else 'left alone (not glibc)'}")
    print(f"{'type':8s} {'bits/value':>10s} {'SQNR dB':>8s} {'ggml s':>8s} {'+to_float':>9s} "
          f"{'quantcalc s':>11s} {'÷ ggml':>7s} {'÷ +to_float':>11s} {'÷ abs-max':>9s}")
    for name, ggml_name in GGML_NAMES.items():
        if args.types and name not in args.types.split(","):
            continue
        if args.imatrix and not registry.get(name).uses_importance:
            continue
        native, both, ours = side_by_side([
            lambda: ggml.block_bytes(ggml_name, x, weights),
            lambda: ggml.quantize(ggml_name, x, weights),
            lambda: analyze(x, Config(format=name), keep=0, importance=weights)])
        result = analyze(x, Config(format=name), keep=0, importance=weights).summary()
        print(f"{name:8s} {result['bits_per_value']:10.4f} {result['sqnr_db']:8.2f} "
              f"{native:8.4f} {both:9.4f} {ours:11.4f} {ours / native:7.2f} {ours / both:11.2f} "
              f"{ours / absmax:9.1f}")


if __name__ == "__main__":
    main()
