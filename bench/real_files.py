#!/usr/bin/env python3
"""Real model files (issue 23): scan -> plan -> llama-quantize arguments on each file of the test
corpus (tests/support/corpus.py: all-MiniLM-L6-v2 safetensors, SmolLM2 Q4_1 GGUF, Gemma 3 Q4_K_M
GGUF; the large entries only when cached), measured in one run.

For each file:
  scan     `python -m quantcalc scan FILE --preset llama.cpp --json OUT` in a fresh process
           (an already-quantized GGUF with --allow-requantize: there is nothing to plan
           otherwise): its wall time, and its peak RSS read with getrusage(RUSAGE_CHILDREN) in
           a small wrapper process whose only child is the scan; the totals' parameters
           measured of all, per format
  plan     at 4.5 and 6.0 bits per weight, and llama.cpp's presets (Q2_K ... Q6_K) each priced
           on the same scan at its own size beside the plan at that size: size and SQNR side by
           side (SQNR over the whole model: the tensors' signal energy, n * (std^2 + mean^2),
           over the total squared error)
  export   whether every `llama-quantize --tensor-type PATTERN=TYPE` line of each plan finds a
           tensor in the GGUF that convert_hf_to_gguf.py writes: a GGUF's own tensor names, or
           for a safetensors checkpoint the names schema/gguf_names (gguf-py's TensorNameMap)
           gives its tensors; and whether each TYPE is a ggml type

    python3 bench/real_files.py [--keys minilm-safetensors ...] [--dir /tmp/quantcalc-real]
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "py"))
from quantcalc import api  # noqa: E402
from quantcalc.readers import checkpoint  # noqa: E402
from quantcalc.schema import gguf_names  # noqa: E402
from tests.support import corpus  # noqa: E402

TARGETS = (4.5, 6.0)
MB = 1e6
# runs the scan as its only child, then reports the child's peak RSS (kB on Linux)
WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
print(json.dumps({"code": done.returncode, "seconds": time.perf_counter() - start,
                  "stderr": done.stderr.decode(errors="replace")[-2000:],
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def scan(path, out, requantize, preset) -> dict:
    """The scan in a fresh process: {"code", "seconds", "maxrss_kb", "stderr"}."""
    command = [sys.executable, "-m", "quantcalc", "scan", str(path), "--preset", preset,
               "--json", str(out)] + (["--allow-requantize"] if requantize else [])
    env = dict(os.environ, PYTHONPATH=str(ROOT / "py"))
    done = subprocess.run([sys.executable, "-c", WRAPPER, *command], capture_output=True,
                          text=True, env=env, check=True)
    return json.loads(done.stdout)


def signal_energy(doc) -> float:
    """Sum of x^2 over the tensors with statistics (n * (std^2 + mean^2))."""
    total = 0.0
    for row in doc["tensors"]:
        if row.get("std") is not None and row.get("mean") is not None:
            total += row["parameters"] * (row["std"] ** 2 + row["mean"] ** 2)
    return total


def sqnr(signal, error) -> str:
    return "inf" if error == 0 else f"{10 * math.log10(signal / error):.2f} dB"


def convert_names(path, doc) -> set:
    """The tensor names of the GGUF convert_hf_to_gguf.py writes for this checkpoint."""
    model = checkpoint.open_checkpoint([str(path)])
    if str(path).lower().endswith(".gguf"):
        return {e.name for e in model.tensors}
    facts = doc.get("model") or {}
    names = gguf_names.name_map(facts["architecture"], facts.get("block_count"))
    return {n for n in (names.get(e.name) for e in model.tensors) if n is not None}


def check_patterns(plan, names) -> str:
    """"12 of 12 patterns match a tensor, all ggml types" or what does not."""
    lq = plan["llama_quantize"]
    if not lq["made"]:
        return f"not made: {lq['reason']}"
    ggml = set(gguf_names.GGML_TYPES)
    lines = lq["tensor_types"]
    unmatched = [line for line in lines
                 if not any(re.search(line.rsplit("=", 1)[0], n) for n in names)]
    not_ggml = [line for line in lines if line.rsplit("=", 1)[1].upper() not in ggml]
    text = f"{len(lines) - len(unmatched)} of {len(lines)} --tensor-type patterns match a " \
           f"tensor of the GGUF ({len(names)} names), base {lq['base']}"
    text += "; every type a ggml type" if not not_ggml else f"; not ggml types: {not_ggml}"
    if unmatched:
        text += f"; unmatched: {unmatched[:5]}"
    return text


def report_plans(path, doc, signal):
    names = convert_names(path, doc)
    params = None
    for bpw in TARGETS:
        reply = api.plan(doc, {"target_bpw": bpw})
        if "error" in reply:
            print(f"  plan at {bpw}: {reply['error']['message']}")
            continue
        plan = reply["plan"]
        params = plan["parameters"]
        print(f"  plan at {bpw} bpw: {plan['bits_per_weight']:.4f} bpw, "
              f"{plan['bytes'] / MB:.2f} MB, SQNR {sqnr(signal, plan['total_error'])}")
        print(f"    {check_patterns(plan, names)}")
    if params is None:
        return
    print(f"  llama.cpp presets on the same scan, and the plan at each one's size:")
    print(f"    {'preset':7s} {'bpw':>7s} {'MB':>8s}  {'preset SQNR':>12s}  {'plan SQNR':>10s}  "
          f"{'gain':>8s}")
    for p in plan["presets"]:
        size = p["bits_per_weight"] * params / 8 / MB
        print(f"    {p['preset']:7s} {p['bits_per_weight']:7.3f} {size:8.2f}  "
              f"{sqnr(signal, p['preset_error']):>12s}  {sqnr(signal, p['plan_error']):>10s}  "
              f"{p['error_lower_db'] or 0:+7.2f} dB")
    for missing in plan["presets_not_priced"]:
        print(f"    not priced: scan {missing} too")
    for note in plan["notes"]:
        print(f"    note: {note}")


def run(item, folder, preset):
    path = corpus.corpus_file(item.key)
    out = folder / f"{item.key}.json"
    requantize = item.format == "gguf"
    done = scan(path, out, requantize, preset)
    print(f"{item.key}: {path.name}, {path.stat().st_size / MB:.1f} MB, {item.tensors} tensors"
          f"{' (--allow-requantize: it is stored quantized)' if requantize else ''}")
    if done["code"] != 0:
        print(f"  scan failed ({done['code']}): {done['stderr'].strip()[-500:]}")
        return
    print(f"  scan --preset {preset}: {done['seconds']:.1f} s, peak RSS "
          f"{done['maxrss_kb'] / 1024:.0f} MiB "
          f"({path.stat().st_size / MB / done['seconds']:.1f} MB/s of file)")
    doc = json.loads(out.read_text())
    totals = doc["totals"]
    print(f"  every total covers {totals[0]['parameters_total']:,} parameters; measured per "
          f"format: " + ", ".join(f"{t['format']} {t['parameters_covered']:,}"
                                  + (f" ({t['parameters_fallback']:,} fallback)"
                                     if t["parameters_fallback"] else "") for t in totals))
    report_plans(path, doc, signal_energy(doc))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", nargs="*", help="corpus keys (default: every file that is "
                        "cached or in the default set)")
    parser.add_argument("--dir", default="/tmp/quantcalc-real-files")
    parser.add_argument("--preset", default="llama.cpp")
    args = parser.parse_args(argv)
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    keys = args.keys or [e.key for e in corpus.ENTRIES if not e.large or corpus.is_cached(e.key)]
    started = time.perf_counter()
    for key in keys:
        try:
            run(corpus.entry(key), folder, args.preset)
        except corpus.CorpusError as exc:
            print(f"{key}: not available here ({exc})")
        print()
    print(f"{len(keys)} files in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
