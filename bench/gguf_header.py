#!/usr/bin/env python3
"""Listing a GGUF's tensors against reading its header bytes once, side by side in one run.

For each file: the time of `checkpoint.open_checkpoint([path])` (what `scan` and the page's
tensor chooser do: the header read through one handle a megabyte at a time, the tokenizer's
arrays skipped, every tensor checked) beside the time of one `f.read(header_size)` of the same
bytes into memory, and their ratio (the target: at most 2). Also how many reads the header
took and how many bytes they asked for.

Then where the listing's time goes (one more run, timed in parts): the strings skipped (the
tokenizer's tokens and merges: their number and the time per string), the tensor directory
(walked, then checked for all tensors at once), and the rest (the other metadata, the reads, the
entries made). The strings are the floor: each one's length must be read to find the next, and
numpy does that in about ten array passes (~13 ns a string here) where copying its bytes costs
~2 ns; see the issue note.

Each pair is also timed with the file not in the page cache (posix_fadvise DONTNEED before each
run), as when a model is opened for the first time: then the reads cost what they cost on the
disk and the listing's walk through the strings hides behind them.

Files: the real GGUFs of the test corpus (tests/support/corpus.py: SmolLM2 with a 49k-token
vocabulary and 49k merges; Gemma 3 with 262k tokens when cached or QUANTCALC_CORPUS_LARGE=1)
and a synthetic GGUF written here with a 152k-entry string vocabulary, its scores and types
and 150k merges (a Qwen-sized tokenizer) and a few small tensors.

    python3 bench/gguf_header.py [--repeats N]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "py"), str(ROOT)]

from bench.timing import side_by_side  # noqa: E402
from quantcalc.readers import byte_window, checkpoint, gguf, gguf_directory  # noqa: E402
from tests.support import corpus  # noqa: E402


def write_synthetic(path: Path, tokens=152_000, merges=150_000):
    """A GGUF with a large tokenizer (written by llama.cpp's gguf package when installed, else
    byte by byte) and 8 small F32 tensors."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 12, tokens)
    vocabulary = ["".join(chr(97 + int(c)) for c in rng.integers(0, 26, n)) + str(i)
                  for i, n in enumerate(lengths)]
    pairs = [f"{vocabulary[i]} {vocabulary[i + 1]}" for i in range(merges)]
    tensors = {f"blk.{i}.attn_q.weight": rng.standard_normal((64, 64)).astype(np.float32)
               for i in range(8)}
    try:
        import gguf as gguf_py
    except ImportError:
        gguf_py = None
    if gguf_py is not None:
        writer = gguf_py.GGUFWriter(str(path), "qwen2")
        writer.add_uint32("qwen2.attention.head_count", 14)
        writer.add_token_list(vocabulary)
        writer.add_token_scores(rng.standard_normal(tokens).astype(np.float32).tolist())
        writer.add_token_types([1] * tokens)
        writer.add_token_merges(pairs)
        for name, values in tensors.items():
            writer.add_tensor(name, values)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return
    from tests.readers.gguf_builder import ARRAY, FLOAT32, INT32, STRING, UINT32, gguf_bytes
    metadata = [("general.architecture", STRING, "qwen2"),
                ("qwen2.attention.head_count", UINT32, 14),
                ("tokenizer.ggml.tokens", ARRAY, (STRING, vocabulary)),
                ("tokenizer.ggml.scores", ARRAY, (FLOAT32, [0.0] * tokens)),
                ("tokenizer.ggml.token_type", ARRAY, (INT32, [1] * tokens)),
                ("tokenizer.ggml.merges", ARRAY, (STRING, pairs))]
    entries = [(name, [64, 64], 0, i * 64 * 64 * 4) for i, name in enumerate(tensors)]
    path.write_bytes(gguf_bytes(entries, metadata, b"".join(v.tobytes()
                                                            for v in tensors.values())))


def counted_reads(path: Path):
    """(reads, bytes asked for) of one header read through readers/gguf.py."""
    calls = []
    size = path.stat().st_size
    with open(path, "rb") as stream:
        def read(offset, count):
            calls.append(count)
            stream.seek(offset)
            return stream.read(count)
        header = gguf.read_header(read, size, path.name)
    return len(calls), sum(calls), header


def breakdown(path: Path):
    """(seconds, strings) skipping string arrays, seconds walking and checking the tensor
    directory, seconds in all, of the fastest of a few listings timed in parts."""
    parts = {}

    def timed(owner, name, key):
        original = getattr(owner, name)

        def wrapper(*args):
            start = time.perf_counter()
            try:
                return original(*args)
            finally:
                parts[key] = parts.get(key, 0.0) + time.perf_counter() - start
                if key == "strings":
                    parts["count"] = parts.get("count", 0) + args[1]
        setattr(owner, name, wrapper)
        return original

    originals = [(byte_window.Window, "skip_strings", timed(byte_window.Window, "skip_strings",
                                                            "strings")),
                 (gguf_directory, "read_entries", timed(gguf_directory, "read_entries",
                                                        "directory")),
                 (gguf_directory, "checked", timed(gguf_directory, "checked", "directory"))]
    best = None
    try:
        for _ in range(7):
            parts.clear()
            start = time.perf_counter()
            checkpoint.open_checkpoint([str(path)])
            total = time.perf_counter() - start
            if best is None or total < best[0]:
                best = (total, dict(parts))
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
    total, parts = best
    return parts.get("strings", 0.0), parts.get("count", 0), parts.get("directory", 0.0), total


def evicted(path: Path):
    """Drop the file's pages from the page cache (only this file's)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


def measure(label: str, path: Path, repeats: int, cold=False):
    reads, asked, header = counted_reads(path)
    header_size = header.data_start

    def list_tensors():
        if cold:
            evicted(path)
        checkpoint.open_checkpoint([str(path)])

    def read_once():
        if cold:
            evicted(path)
        with open(path, "rb") as stream:
            stream.read(header_size)

    listing, reading = side_by_side([list_tensors, read_once], repeats=repeats)
    if cold:
        print(f"  not in the page cache: list {listing * 1e3:8.2f} ms   read once "
              f"{reading * 1e3:8.2f} ms   ratio {listing / reading:5.2f}")
        return
    vocabulary = len(header.metadata.get("tokenizer.ggml.tokens", ()))
    print(f"{label}: {len(header.tensors)} tensors, {vocabulary:,} tokens, header "
          f"{header_size / 1e6:.2f} MB in {reads} reads ({asked / 1e6:.2f} MB asked for)")
    print(f"  list its tensors {listing * 1e3:8.2f} ms   read its header once "
          f"{reading * 1e3:8.2f} ms   ratio {listing / reading:5.2f}  (target <= 2)")
    strings, count, directory, total = breakdown(path)
    print(f"  of a listing's {total * 1e3:.2f} ms (each part with its reads): {count:,} strings "
          f"skipped {strings * 1e3:.2f} ms ({strings / max(count, 1) * 1e9:.1f} ns each), "
          f"{len(header.tensors)} directory entries {directory * 1e3:.2f} ms, the rest "
          f"{(total - strings - directory) * 1e3:.2f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    for key in ("smollm2-q4_1-gguf", "gemma3-q4_k_m-gguf"):
        entry = corpus.CORPUS[key]
        if entry.large and not corpus.large_wanted() and not corpus.is_cached(key):
            print(f"{key}: not cached (python -m tests.support.corpus --large, or "
                  f"{corpus.LARGE_ENV}=1)")
            continue
        try:
            path = corpus.corpus_file(key)
        except corpus.CorpusError as exc:
            print(f"{key}: not available here ({exc})")
            continue
        measure(key, Path(path), args.repeats)
        # evicting the header's pages costs nobody more than reading them again
        measure(key, Path(path), max(3, args.repeats // 3), cold=True)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "qwen-sized-tokenizer.gguf"
        write_synthetic(path)
        measure(f"synthetic ({os.path.getsize(path) / 1e6:.1f} MB)", path, args.repeats)
        measure("synthetic", path, max(3, args.repeats // 3), cold=True)


if __name__ == "__main__":
    main()
