#!/usr/bin/env python3
"""quantcalc audit: time against the scan of the same original, and memory against model size,
measured in one run.

Writes two Llama-like originals in BF16 safetensors (with config.json) of --layers and 4 x
--layers blocks, and for each a Q4_K GGUF made as llama.cpp makes one (gguf-py's names and
writer, LlamaModel.permute of q/k, ggml's own quantization through libggml). Then, each in a
fresh process, in turns, the best of --repeats:

  scan    python -m quantcalc scan ORIGINAL --format q4_k --json OUT   (the one stored format)
  audit   python -m quantcalc audit ORIGINAL GGUF --json OUT

and prints: audit time / scan time on each model (target <= 2; the audit reads both files,
decodes the GGUF, quantizes the original as llama.cpp would and compares the blocks, where the
scan reads one file and quantizes), and the audit's peak RSS (VmHWM) on the large model / on the
small one (target: about 1, i.e. independent of the model's size). Needs the test dependencies
(.venv: gguf, libggml-python).

    .venv/bin/python bench/audit.py [--layers 2] [--hidden 1024] [--dir /tmp/quantcalc-audit]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "py"), str(ROOT)]
from tests.support import audit_pairs, checkpoints  # noqa: E402


def write_pair(folder: Path, layers: int, hidden: int):
    """An original (BF16 safetensors + config.json) and its Q4_K GGUF, once."""
    gguf_path = folder / "model-Q4_K.gguf"
    if gguf_path.exists():
        return folder / "hf", gguf_path
    arrays, config = audit_pairs.hf_llama(folder / "hf", seed=0, dtype="BF16", layers=layers,
                                          hidden=hidden, heads=hidden // 128,
                                          kv_heads=hidden // 512, ffn=hidden * 11 // 4,
                                          vocab=8192)
    tensors = audit_pairs.gguf_tensors(arrays, config)
    audit_pairs.write_gguf(gguf_path, tensors, config,
                           {n: "q4_K" for n, x in tensors.items() if x.ndim == 2})
    return folder / "hf", gguf_path


def measured(args):
    """(seconds, peak RSS bytes) of `python -m quantcalc ARGS` in a fresh process."""
    wrapper = ("import runpy, sys\n"
               "sys.argv = ['quantcalc'] + sys.argv[1:]\n"
               "try:\n"
               "    runpy.run_module('quantcalc', run_name='__main__')\n"
               "except SystemExit as e:\n"
               "    assert not e.code, e.code\n"
               "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
               "print(int(hwm.split()[1]), file=sys.stderr)\n")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", wrapper, *map(str, args)], capture_output=True,
                         text=True, env={"PYTHONPATH": str(ROOT / "py"), "PATH": "/usr/bin:/bin"})
    seconds = time.perf_counter() - start
    if out.returncode:
        raise SystemExit(out.stderr)
    return seconds, int(out.stderr.strip().splitlines()[-1]) * 1024


def compare(original, gguf, folder, repeats):
    """Best (seconds, RSS) of the scan and of the audit, run in turns."""
    scan = ["scan", original, "--format", "q4_k", "--json", folder / "scan.json", "--quiet"]
    audit = ["audit", original, gguf, "--json", folder / "audit.json", "--quiet"]
    best = {"scan": (float("inf"), 0), "audit": (float("inf"), 0)}
    for _ in range(repeats):
        for name, args in (("scan", scan), ("audit", audit)):
            seconds, rss = measured(args)
            best[name] = (min(best[name][0], seconds), max(best[name][1], rss))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=2, help="blocks of the small model")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dir", default="/tmp/quantcalc-audit")
    args = parser.parse_args()
    results = {}
    for label, layers in (("small", args.layers), ("large", 4 * args.layers)):
        folder = Path(args.dir) / f"{label}-{layers}x{args.hidden}"
        folder.mkdir(parents=True, exist_ok=True)
        original, gguf = write_pair(folder, layers, args.hidden)
        size = sum(p.stat().st_size for p in original.glob("*.safetensors"))
        print(f"{label}: {layers} blocks, original {size / 1e6:.0f} MB BF16, "
              f"{gguf.name} {gguf.stat().st_size / 1e6:.0f} MB", flush=True)
        results[label] = compare(original, gguf, folder, args.repeats)
        doc = json.loads((folder / "audit.json").read_text())
        totals = doc["totals"]
        print(f"  scan  {results[label]['scan'][0]:7.2f} s   peak RSS "
              f"{results[label]['scan'][1] / 2**20:6.0f} MB")
        print(f"  audit {results[label]['audit'][0]:7.2f} s   peak RSS "
              f"{results[label]['audit'][1] / 2**20:6.0f} MB   ({totals['tensors_measured']} "
              f"tensors, SQNR {totals['sqnr_db']:.2f} dB, reproduced "
              f"{totals['reproduced']['true']}/{totals['tensors_measured']})")
        print(f"  audit time / scan time: "
              f"{results[label]['audit'][0] / results[label]['scan'][0]:.2f} (target <= 2)",
              flush=True)
    ratio = results["large"]["audit"][1] / results["small"]["audit"][1]
    print(f"audit peak RSS, large / small model (4x the parameters): {ratio:.2f} "
          f"(target about 1)")
    return 0 if np.isfinite(ratio) else 1


if __name__ == "__main__":
    sys.exit(main())
