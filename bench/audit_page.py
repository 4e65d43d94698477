#!/usr/bin/env python3
"""The audit in the page on a file over 2 GiB (issue 24): the page's JSON against the command
line's on the same pair, and the page's time against the CLI's, measured in one run.

Writes (or reuses, with --keep DIR) a pair the way the real tools make one, never holding either
file whole in memory:

  original   original/model.safetensors + config.json: --layers Llama-7B layers in BF16 (4096 x
             4096 q/k/v/o, 11008 x 4096 gate and up, 4096 x 11008 down, two norms), written by
             bench/estimated_scan.py's writer a chunk of rows at a time; the default 6 layers make
             2.43 GB, over 2 GiB, so the page mounts it in three 1 GiB slices (web/worker-files.js)
             and its last layers are read at offsets Pyodide's CPython cannot seek to in one file
  quantized  model-Q8_0.gguf (--q4k: the FFN matrices in Q4_K, the rest Q8_0) of the same values
             as convert_hf_to_gguf.py writes it: gguf-py's names (TensorNameMap), q and k rows
             through LlamaModel.permute, head counts in the metadata, gguf-py's GGUFWriter with
             the tensor infos first and the tensors written one at a time, each quantized by ggml
             itself (libggml's ggml_quantize_chunk, tests/support/ggml_reference.py)

Then, the files read once first (so both contenders find them in the page cache):

  CLI    python -m quantcalc audit ORIGINAL QUANTIZED --json OUT in a fresh process: wall and CPU
         time, peak RSS (the child's own, from wait4)
  page   the built page in Chromium: both sides chosen through the Audit section's file inputs,
         Audit pressed, timed until the audit is final (body[data-audits]; the helper worker's
         start-up included), its JSON downloaded

and prints the sizes, both times, page / CLI, the CLI's peak RSS, and how many values of the
page's JSON differ from the CLI's (numbers compared as numbers), with the tensors that lie past
2 GiB in the original (read through the slices) named apart. The page and the command line read
slabs of the same size (api/auditing.PAGE_SLAB_VALUES is the CLI's default); were the documents
to differ, the CLI is run again at that budget (--memory-values) and the bench says which matched.
Needs the test dependencies (.venv: gguf, libggml-python, playwright).

    .venv/bin/python bench/audit_page.py [--layers 6] [--q4k] [--keep DIR] [--no-page]
"""

import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "py"), str(ROOT)]
import estimated_scan as es  # noqa: E402
from page_session import ready_page  # noqa: E402
from tests.support import audit_pairs, checkpoints  # noqa: E402
from tests.support import ggml_reference as ggml  # noqa: E402

gguf = audit_pairs.gguf
TWO_GIB = 2 ** 31
PART = 2 ** 30  # web/worker-files.js: a file over 1 GiB is mounted in slices of this size
HEADS = KV_HEADS = 32  # Llama-7B: no grouped-query attention
HEAD_ROWS = es.HIDDEN // HEADS


def layers_over_2_gib():
    per_layer = sum(2 * math.prod(shape) for _, shape in es.layer_tensors(0))
    return TWO_GIB // per_layer + 1


def config(layers):
    return audit_pairs.llama_config(layers=layers, hidden=es.HIDDEN, heads=HEADS,
                                    kv_heads=KV_HEADS, ffn=es.FFN, vocab=32000)


def write_original(folder, layers):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config(layers)))
    return es.write_checkpoint(folder / "model.safetensors", layers)


def stored_type(name, shape, q4k):
    if len(shape) == 1:
        return "F32"
    return "q4_K" if q4k and ".ffn_" in name else "q8_0"


def gguf_chunks(name, shape, rng):
    """Tensor `name`'s rows a chunk at a time, as the original holds them (BF16, drawn from `rng`
    in estimated_scan.write_checkpoint's order) and as the converter hands them to ggml: float32,
    q and k rows permuted into GGUF order (within each head of 128 rows: a chunk of whole heads
    is permuted on its own)."""
    as_stored = lambda x: (checkpoints.to_bf16_bits(x).astype(np.uint32) << 16).view(np.float32)
    if len(shape) == 1:
        yield as_stored(es.values(name, shape, rng, 1))
        return
    for start in range(0, shape[0], es.CHUNK_ROWS):
        rows = min(es.CHUNK_ROWS, shape[0] - start)
        x = as_stored(es.values(name, shape, rng, rows))
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            assert rows % HEAD_ROWS == 0
            x = audit_pairs.permute(x, rows // HEAD_ROWS, rows // HEAD_ROWS)
        yield x


def write_quantized(path, layers, q4k):
    """The GGUF, one tensor in memory at a time (its quantized bytes: at most 48 MB)."""
    tensors = [t for i in range(layers) for t in es.layer_tensors(i)]
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, layers)
    gguf_names = [names.get_name(n, try_suffixes=(".weight", ".bias")) for n, _ in tensors]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(layers)
    writer.add_context_length(4096)
    writer.add_embedding_length(es.HIDDEN)
    writer.add_feed_forward_length(es.FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    kinds = []
    for (name, shape), out_name in zip(tensors, gguf_names):
        kind = stored_type(out_name, shape, q4k)
        kinds.append(kind)
        if kind == "F32":
            writer.add_tensor_info(out_name, shape, np.dtype(np.float32), 4 * shape[0])
            continue
        block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[kind.upper()]]
        byte_shape = (shape[0], shape[1] // block * size)
        writer.add_tensor_info(out_name, byte_shape, np.dtype(np.uint8), math.prod(byte_shape),
                               raw_dtype=gguf.GGMLQuantizationType[kind.upper()])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for index, ((name, shape), kind) in enumerate(zip(tensors, kinds)):
        rng = np.random.default_rng(index)  # estimated_scan.write_checkpoint's seeds
        chunks = list(gguf_chunks(name, shape, rng)) if kind == "F32" else \
            [ggml.block_bytes(kind, x) for x in gguf_chunks(name, shape, rng)]
        writer.write_tensor_data(np.concatenate(chunks))
    writer.close()
    return {kind: kinds.count(kind) for kind in sorted(set(kinds))}


def beyond(path, limit=TWO_GIB):
    """{tensor: (first byte, last byte + 1)} of the safetensors tensors that end past `limit`."""
    with open(path, "rb") as stream:
        length = struct.unpack("<Q", stream.read(8))[0]
        header = json.loads(stream.read(length))
    base = 8 + length
    return {name: (base + info["data_offsets"][0], base + info["data_offsets"][1])
            for name, info in header.items() if name != "__metadata__"
            and base + info["data_offsets"][1] > limit}


def cli_audit(original, quantized, out, *extra):
    """(wall seconds, CPU seconds, peak RSS bytes, document) of `quantcalc audit ORIGINAL
    QUANTIZED --json OUT` in a fresh process. The child's own resource usage (wait4), not
    getrusage(RUSAGE_CHILDREN), whose ru_maxrss is the largest of every child reaped so far."""
    args = [sys.executable, "-m", "quantcalc", "audit", str(original), str(quantized),
            "--json", str(out), "--quiet", *extra]
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=errors, cwd=ROOT,
                                 env=es.ENV)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if child.returncode:
            errors.seek(0)
            raise SystemExit(f"the CLI audit failed: {errors.read().decode(errors='replace')}")
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, usage.ru_maxrss * 1024, json.loads(Path(out).read_text())  # KiB


def differences(page, cli, where=""):
    """[(path, page's value, CLI's value)] of every leaf where the documents differ; JSON numbers
    compared as numbers (the page's 16 is the command line's 16.0)."""
    if isinstance(page, dict) and isinstance(cli, dict):
        out = []
        for key in sorted(set(page) | set(cli)):
            out += differences(page.get(key, "<missing>"), cli.get(key, "<missing>"),
                               f"{where}.{key}")
        return out
    if isinstance(page, list) and isinstance(cli, list):
        out = [] if len(page) == len(cli) else [(f"{where} length", len(page), len(cli))]
        for i, (a, b) in enumerate(zip(page, cli)):
            label = a.get("name", i) if isinstance(a, dict) else i
            out += differences(a, b, f"{where}[{label}]")
        return out
    strict = isinstance(page, bool) or isinstance(cli, bool)  # True is not the number 1
    return [] if (page is cli if strict else page == cli) else [(where, page, cli)]


def leaves(value):
    if isinstance(value, dict):
        return sum(leaves(v) for v in value.values())
    if isinstance(value, list):
        return sum(leaves(v) for v in value)
    return 1


# In a worker: the files mounted for the audit ({folder: [[name, bytes]]}), as Python sees them.
# The same module instance as the worker's own (one module map per worker), so its `runtime`.
MOUNTS_JS = """async () => {
  const { runtime } = await import(new URL("./worker-boot.js", self.location.href).href);
  const FS = runtime.pyodide?.FS;
  if (!FS) return null;
  const names = (dir) => FS.readdir(dir).filter((n) => n !== "." && n !== "..");
  const out = {};
  for (const slot of ["original", "quantized"]) {
    if (!FS.analyzePath(`/${slot}`).exists) continue;
    for (const dir of names(`/${slot}`)) {
      const path = `/${slot}/${dir}`;
      out[path] = names(path).map((n) => [n, FS.stat(`${path}/${n}`).size]);
    }
  }
  return out;
}"""


def mounts_in(worker):
    """What the audit mounted in one of the page's workers, or None (not an engine)."""
    try:
        return worker.evaluate(MOUNTS_JS)
    except Exception as exc:  # noqa: BLE001 - a worker that is not the engine: said, not fatal
        print(f"  (a worker's mounts could not be read: {str(exc).splitlines()[0]})")
        return None


def page_audit(original_files, quantized, download, log_every=60):
    """(wall seconds, CPU seconds of the browser, status line, workers used, the page's JSON or
    None, the message at a field if the page refused, what each engine mounted) of the built
    page auditing the pair as a user does."""
    with ready_page(console_errors=True, accept_downloads=True) as tab:
        tab.set_input_files("#audit-original-files", [str(f) for f in original_files])
        tab.set_input_files("#audit-quantized-files", [str(quantized)])
        cpu = es.descendants_cpu()
        start = last = time.perf_counter()
        tab.click("#audit-start")
        errors = "#error-audit-original, #error-audit-quantized, #error-audit-imatrix"
        while True:  # polled: a refusal shows at a field instead of finishing
            if tab.evaluate("() => document.body.dataset.audits") == "1":
                break
            shown = [e.inner_text() for e in tab.locator(errors).all() if e.is_visible()]
            if shown:
                return time.perf_counter() - start, 0.0, "", 0, None, shown[0], []
            if time.perf_counter() - last > log_every:
                last = time.perf_counter()
                print(f"  page, {last - start:5.0f} s: {tab.text_content('#audit-status')}",
                      flush=True)
            time.sleep(1)
        seconds = time.perf_counter() - start
        cpu = es.descendants_cpu() - cpu
        status = tab.text_content("#audit-status")
        used = tab.evaluate("() => document.body.dataset.auditWorkers")
        mounted = [m for w in tab.workers for m in [mounts_in(w)] if m]
        with tab.expect_download() as info:
            tab.click("[data-audit-download=json]")
        info.value.save_as(download)
    return seconds, cpu, status, used, json.loads(Path(download).read_text()), None, mounted


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=layers_over_2_gib())
    parser.add_argument("--q4k", action="store_true", help="the FFN matrices in Q4_K")
    parser.add_argument("--keep", metavar="DIR", help="write (or reuse) the pair here and keep it")
    parser.add_argument("--no-page", action="store_true")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="quantcalc-audit-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return run(folder, args)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def run(folder, args):
    original = folder / f"llama-{args.layers}-layers"
    weights = original / "model.safetensors"
    quantized = folder / f"llama-{args.layers}-layers-{'Q8_0-Q4_K' if args.q4k else 'Q8_0'}.gguf"
    if not weights.exists():
        print(f"writing {args.layers} Llama-7B layers in BF16…", flush=True)
        start = time.perf_counter()
        count = write_original(original, args.layers)
        print(f"  {count} tensors in {time.perf_counter() - start:.0f} s", flush=True)
    if not quantized.exists():
        print(f"writing their GGUF ({'FFN in Q4_K, the rest' if args.q4k else 'all in'} Q8_0, "
              "ggml's quantization, q/k permuted)…", flush=True)
        start = time.perf_counter()
        kinds = write_quantized(quantized.with_suffix(".part"), args.layers, args.q4k)
        quantized.with_suffix(".part").rename(quantized)
        print(f"  {kinds} in {time.perf_counter() - start:.0f} s", flush=True)
    size, q_size = weights.stat().st_size, quantized.stat().st_size
    slices = lambda n: f"{math.ceil(n / PART)} slices" if n > PART else "whole"
    print(f"original : {weights.name}, {size:,} bytes = {size / 2 ** 30:.2f} GiB "
          f"({'over' if size > TWO_GIB else 'NOT over'} 2 GiB; {slices(size)} in the page)")
    print(f"quantized: {quantized.name}, {q_size:,} bytes = {q_size / 2 ** 30:.2f} GiB "
          f"({slices(q_size)} in the page)")
    far = beyond(weights)
    print(f"  {len(far)} tensors of the original end past 2 GiB, "
          f"{sum(1 for a, b in far.values() if a < TWO_GIB)} of them across it", flush=True)
    for path in (weights, quantized):  # into the page cache for both contenders
        with open(path, "rb") as stream:
            while stream.read(64 << 20):
                pass
    print(f"load average (1, 5, 15 min) at the start: {os.getloadavg()} on {os.cpu_count()} "
          "cores", flush=True)
    cli_s, cli_cpu, rss, cli = cli_audit(original, quantized, folder / "cli.json")
    totals = cli["totals"]
    rate = (size + q_size) / cli_s / 1e6
    print(f"CLI audit   {cli_s:7.1f} s  ({rate:5.1f} MB/s of both files)  CPU {cli_cpu:7.1f} s  "
          f"peak RSS {rss / 2 ** 20:5.0f} MiB", flush=True)
    print(f"  {totals['tensors_measured']} of {totals['tensors']} tensors measured, SQNR "
          f"{totals['sqnr_db']:.2f} dB, reproduced {totals['reproduced']}")
    if args.no_page:
        return 0
    files = [weights, original / "config.json"]
    page_s, page_cpu, status, used, page_doc, refused, mounted = page_audit(
        files, quantized, folder / "page.json")
    if refused:
        print(f"page audit REFUSED after {page_s:.0f} s: {refused}")
        return 1
    print(f"page audit  {page_s:7.1f} s  ({(size + q_size) / page_s / 1e6:5.1f} MB/s)  CPU "
          f"{page_cpu:7.1f} s (every browser process)  {used} workers")
    print(f"  {status}")
    for number, folders in enumerate(mounted, 1):  # the slices the audit really read
        for where, names in folders.items():
            print(f"  engine {number} mounted {where}: " + ", ".join(
                f"{name} ({size / 2 ** 30:.2f} GiB)" for name, size in names))
    originals = [names for folders in mounted for where, names in folders.items()
                 if where.startswith("/original/")]
    sliced = bool(originals) and all(any(n.startswith(f"{weights.name}.qcpart-") for n, _ in names)
                                     for names in originals)
    print(f"  the original read through 1 GiB slices in every engine: {'yes' if sliced else 'no'} "
          f"({'as' if sliced == (size > PART) else 'NOT as'} worker-files.js mounts a file of "
          "this size)")
    print(f"ratio page / CLI, wall time: {page_s / cli_s:.2f}; CPU time: {page_cpu / cli_cpu:.2f}")
    return compare(page_doc, cli, far, original, quantized, folder)


def compare(page_doc, cli, far, original, quantized, folder):
    from quantcalc.api.auditing import PAGE_SLAB_VALUES

    differ = differences(page_doc, cli)
    print(f"the page's JSON against the CLI's: {len(differ)} of {leaves(cli)} values differ")
    names = {t["original_name"]: t["name"] for t in cli["tensors"]}
    far_rows = [names[n] for n in far if n in names]
    far_differ = [d for d in differ if any(f"[{n}]" in d[0] for n in far_rows)]
    same_far = [r for r in far_rows if any(t["name"] == r for t in page_doc["tensors"])]
    print(f"  of the {len(far_rows)} rows of tensors past 2 GiB ({len(same_far)} in the page's "
          f"JSON): {len(far_differ)} values differ")
    for where, a, b in differ[:12]:
        print(f"    {where}: page {a!r}, CLI {b!r}")
    if differ:
        print(f"  the CLI again at the page's budget (--memory-values {PAGE_SLAB_VALUES})…")
        *_, paged = cli_audit(original, quantized, folder / "cli-page-budget.json",
                              "--memory-values", str(PAGE_SLAB_VALUES))
        again = differences(page_doc, paged)
        print(f"  the page's JSON against that one: {len(again)} values differ; "
              f"{'the page-budget run' if len(again) < len(differ) else 'neither'} matches better")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
