#!/usr/bin/env python3
"""The audit's SQNR table on pairs of one REAL model: the real all-MiniLM-L6-v2 (float32 BERT
from the test corpus) against quantized sides made with each format's own tools
(tests/support/real_pairs.py: ggml's Q8_0 / Q4_K / Q6_K written by gguf-py, compressed-tensors'
W4A16 and W8A8-int compressors, torch's FP8 per tensor and in 128x128 tiles).

Prints one line per format: quantized tensors, tensors paired and measured, whether quantcalc's
decoding equals the independent one bit for bit (and which library that is), the audit's SQNR
of the whole model and of its worst tensor, and how many quantized tensors the format's plain
rule reproduces. Needs the test dependencies (.venv: gguf, libggml-python, torch,
compressed-tensors) and the corpus file (downloaded once).

    .venv/bin/python bench/audit_real_pairs.py [--dir /tmp/quantcalc-real-pairs]
"""

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "py"), str(ROOT)]
from quantcalc import api  # noqa: E402
from tests.support import real_pairs  # noqa: E402

LIBRARY = {"Q8_0": "gguf-py dequantize", "Q4_K": "gguf-py dequantize",
           "Q6_K": "gguf-py dequantize", "W4A16": "compressed-tensors decompress",
           "W8A8-int": "compressed-tensors decompress", "FP8 per tensor": "torch",
           "FP8 128x128": "torch"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/tmp/quantcalc-real-pairs")
    args = parser.parse_args()
    original = real_pairs.original_folder()
    print(f"original: {original / 'model.safetensors'} (all-MiniLM-L6-v2, float32)")
    head = (f"{'format':16s} {'quantized':>9s} {'paired':>6s}  {'bit-exact vs':34s} "
            f"{'SQNR total':>10s}  {'worst tensor (SQNR)':52s} {'reproduced':>10s} {'s':>5s}")
    print(head)
    for kind in real_pairs.FORMATS:
        started = time.perf_counter()
        folder = Path(args.dir) / kind.replace(" ", "_")
        reference = real_pairs.make(kind, folder, original)
        exact = real_pairs.bit_exact(real_pairs.decoded(folder), reference)
        doc = api.audit_model([str(original)], [str(folder)])["document"]
        quantized = [r for r in doc["tensors"] if r["name"] in reference]
        worst = min(quantized, key=lambda r: r["sqnr_db"])
        reproduced = sum(1 for r in quantized if r["reproduced"] is True)
        stored = Counter(r["stored_format"] for r in quantized)
        print(f"{kind:16s} {len(quantized):9d} {doc['totals']['tensors_measured']:6d}  "
              f"{('yes, ' if exact else 'NO, ') + LIBRARY[kind]:34s} "
              f"{doc['totals']['sqnr_db']:8.2f} dB  "
              f"{worst['name'][:40]:40s} {worst['sqnr_db']:6.2f} dB "
              f"{reproduced:>4d} of {len(quantized):<3d} {time.perf_counter() - started:5.1f}")
        print(f"{'':16s} stored as: " + ", ".join(f"{k} x{n}" for k, n in stored.items()))
    print("SQNR total: 10 log10(sum x^2 / sum e^2) over every paired tensor (float ones "
          "included, error 0); reproduced: quantized tensors whose stored codes and scales the "
          "format's plain rule remakes bit for bit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
