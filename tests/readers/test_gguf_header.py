"""The GGUF header (issue 26, second round): read through one handle a megabyte at a time with
the tokenizer's arrays skipped, not read field by field; files that lie refused as llama.cpp's
gguf.cpp refuses them; tensors of types quantcalc cannot read refused in one line naming the
type, and listed by a scan with the reason."""

import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from quantcalc import QuantcalcError, api
from quantcalc.readers import checkpoint, file_parts
from quantcalc.readers import gguf as gguf_file
from quantcalc.scan import model_scan as scan
from tests.readers.gguf_builder import (ARRAY, BOOL, FLOAT32, INT32, STRING, UINT32, UINT64,
                                        gguf_bytes)
from tests.support.command import quantcalc as cli, refused

gguf = pytest.importorskip("gguf", reason="llama.cpp's gguf package is a test dependency")

F32 = np.arange(8, dtype="<f4").tobytes()


def write_tokenizer_gguf(path, tokens, merges):
    """A llama GGUF with a tokenizer of `tokens` tokens and `merges` merges, two tensors."""
    rng = np.random.default_rng(1)
    vocabulary = [f"t{i}" + "x" * int(n) for i, n in enumerate(rng.integers(0, 9, tokens))]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_uint32("llama.attention.head_count", 9)
    writer.add_token_list(vocabulary)
    writer.add_token_scores([0.0] * tokens)
    writer.add_token_types([1] * tokens)
    writer.add_token_merges([f"{vocabulary[i]} {vocabulary[i + 1]}" for i in range(merges)])
    writer.add_array("general.tags", ["small", "list"])
    tensors = {"token_embd.weight": rng.standard_normal((16, 64)).astype(np.float32),
               "output_norm.weight": np.ones(64, np.float32)}
    for name, values in tensors.items():
        writer.add_tensor(name, values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return tensors


# ---------------------------------------------------------------- A: one handle, large reads
def test_a_big_vocabulary_is_read_in_a_few_large_reads_and_skipped(tmp_path, monkeypatch):
    path = tmp_path / "vocab.gguf"
    tensors = write_tokenizer_gguf(path, tokens=30_000, merges=29_000)
    size = path.stat().st_size
    reads = []
    with open(path, "rb") as stream:
        def read(offset, count):
            reads.append(count)
            stream.seek(offset)
            return stream.read(count)
        header = gguf_file.read_header(read, size, path.name)
    assert len(reads) <= 2 and reads[0] >= min(size, 1 << 20)  # not one read per field
    tokens = header.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, gguf_file.SkippedArray) and len(tokens) == 30_000
    assert tokens.item_type == STRING and len(header.metadata["tokenizer.ggml.merges"]) == 29_000
    assert len(header.metadata["tokenizer.ggml.scores"]) == 30_000
    # what quantcalc uses stays readable; short arrays are read
    assert header.metadata["general.architecture"] == "llama"
    assert header.metadata["llama.attention.head_count"] == 9
    assert header.metadata["general.tags"] == ["small", "list"]
    theirs = gguf.GGUFReader(str(path))
    assert [(t.name, t.data_offset) for t in theirs.tensors] == [
        (info.name, info.offset) for info in header.tensors.values()]
    # the scan's listing opens the file once for the header (once per field before)
    opened = []
    real_open = file_parts.open_file
    monkeypatch.setattr(file_parts, "open_file", lambda p: opened.append(p) or real_open(p))
    model = checkpoint.open_checkpoint([path])
    assert len(opened) == 1
    assert [(e.name, e.offset, e.nbytes) for e in model.tensors] == [
        (t.name, t.data_offset, t.n_bytes) for t in theirs.tensors]
    for name, values in tensors.items():
        assert np.array_equal(checkpoint.read_tensor(str(path), name), values)


STRING_KINDS = st.sampled_from(["short", "empty", "long", "nuls", "utf8"])


def _strings(kinds, seed):
    rng = np.random.default_rng(seed)
    out = []
    for i, kind in enumerate(kinds):
        if kind == "short":
            out.append(bytes(rng.integers(1, 256, int(rng.integers(1, 20)), dtype=np.uint8)))
        elif kind == "empty":
            out.append(b"")
        elif kind == "long":
            out.append(b"L" * int(rng.integers(250, 700)))
        elif kind == "nuls":  # a byte then NULs: looks like a length prefix inside a string
            out.append(b"\x05" + b"\0" * int(rng.integers(1, 20)) + b"z")
        else:
            out.append(f"токен{i}✓".encode())
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(STRING_KINDS, min_size=1, max_size=40), repeat=st.integers(30, 120),
       seed=st.integers(0, 2 ** 16), chunk=st.sampled_from([None, 4096, 40_000]),
       region=st.sampled_from([None, 64, 1000]), by_words=st.booleans())
def test_skipping_string_arrays_lands_where_reading_them_would(kinds, repeat, seed, chunk,
                                                               region, by_words):
    """Any strings, skipped in numpy passes over pieces of any size, end where they end: the
    key after them and the tensor directory read as written. Prefixes found byte by byte (as in
    CPython) or word by word (as in Pyodide)."""
    strings = _strings(kinds * repeat, seed)
    if len(strings) <= gguf_file.KEPT_ITEMS:
        strings = strings * (gguf_file.KEPT_ITEMS // len(strings) + 1)
    data = gguf_bytes([("t", [8], 0, 0)],
                      [("vocabulary", ARRAY, (STRING, strings)), ("after", UINT64, 2 ** 40 + 7),
                       ("merges", ARRAY, (STRING, strings[::-1]))], F32)
    from quantcalc.readers import byte_window

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(byte_window, "CHUNK", chunk or byte_window.CHUNK)
        patch.setattr(byte_window, "REGION", region or byte_window.REGION)
        patch.setattr(byte_window, "BY_WORDS", by_words)
        header = gguf_file.read_bytes_header(data, "strings.gguf")
    assert header.metadata["after"] == 2 ** 40 + 7
    assert len(header.metadata["vocabulary"]) == len(header.metadata["merges"]) == len(strings)
    assert header.tensors["t"].offset == len(data) - len(F32)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=0, max_size=600), zeros=st.floats(0, 0.9), seed=st.integers(0, 99))
def test_prefixes_found_word_by_word_are_those_found_byte_by_byte(data, zeros, seed):
    """Pyodide's word-by-word search finds the byte-by-byte search's prefixes, except one whose
    next word is all zeros or that lies in the last word (the walk then goes on step by step)."""
    from quantcalc.readers import byte_window

    raw = np.frombuffer(data, np.uint8).copy()
    raw[np.random.default_rng(seed).random(raw.size) < zeros] = 0  # runs of zeros, prefixes
    by_bytes = set(byte_window._prefix_like(raw).tolist())
    by_words = byte_window._prefix_like_words(raw).tolist()
    assert by_words == sorted(by_words) and set(by_words) <= by_bytes
    words = raw[:raw.size // 8 * 8].view("<u8")
    missed = {int(p) for p in by_bytes - set(by_words)}
    assert all(p // 8 + 1 >= words.size or words[p // 8 + 1] == 0 for p in missed), missed


def test_a_string_array_that_runs_past_the_file_is_truncated():
    strings = [b"ab"] * 2000
    data = gguf_bytes([], [("v", ARRAY, (STRING, strings))], pad=False)
    for cut in (len(data) - 1, len(data) // 2, 50):
        with pytest.raises(QuantcalcError, match="truncated|more than the file holds"):
            gguf_file.read_bytes_header(data[:cut], "v.gguf")
    first = 24 + 8 + 1 + 4 + 4 + 8  # counts, the key "v", its type, the item type, the count
    assert data[first:first + 10] == struct.pack("<Q", 2) + b"ab"
    for length in (2 ** 63, 2 ** 64 - 1, 300):
        lie = data[:first] + struct.pack("<Q", length) + data[first + 8:]
        with pytest.raises(QuantcalcError, match="truncated"):
            gguf_file.read_bytes_header(lie, "v.gguf")


# ---------------------------------------------------------------- B, D: files that lie
def _aligned(alignment, key_type=UINT32):
    return gguf_bytes([("a", [8], 0, 0)], [("general.alignment", key_type, alignment)], F32,
                      alignment=alignment if isinstance(alignment, int) and alignment > 0 else 1)


LIES = {
    "alignment 3": (_aligned(3), "general.alignment (3): it must be a power of two"),
    "alignment 0": (_aligned(0), "general.alignment (0)"),
    "alignment true": (_aligned(True, BOOL), "general.alignment (True)"),
    "alignment 32.0": (_aligned(32.0, FLOAT32), "general.alignment (32.0)"),
    "unaligned offset": (gguf_bytes([("a", [4], 0, 0), ("b", [4], 0, 20)], [], F32 * 3),
                         "tensor 'b' starts at offset 20, which is not a multiple of the file's "
                         "alignment (32)"),
    "overlap": (gguf_bytes([("a", [16], 0, 0), ("b", [8], 0, 32)], [], F32 * 4),
                "tensors 'a' and 'b' overlap"),
    "same offset": (gguf_bytes([("a", [8], 0, 0), ("b", [8], 0, 0)], [], F32),
                    "tensors 'a' and 'b' overlap"),
    "duplicate name": (gguf_bytes([("a", [8], 0, 0), ("a", [8], 0, 32)], [], F32 * 2),
                       "two tensors named 'a'"),
    "duplicate key": (gguf_bytes([("a", [8], 0, 0)], [("k", UINT32, 1), ("k", UINT32, 2)], F32),
                      "the metadata key 'k' twice"),
    "beyond the end": (gguf_bytes([("a", [8], 0, 64)], [], F32),
                       "truncated: tensor 'a' ends at byte"),
    "dims of 2^64-1": (gguf_bytes([("a", [0, 2 ** 64 - 1, 2 ** 64 - 1], 0, 0)], [], F32),
                       "more elements than a tensor can have"),
    "bytes past 2^63": (gguf_bytes([("a", [2, 2 ** 61], 28, 0)], [], F32),
                        "more bytes than a file can hold"),
    "five dimensions": (gguf_bytes([("a", [1, 1, 1, 1, 8], 0, 0)], [], F32),
                        "claims 5 dimensions"),
    "Q4_K rows of 100": (gguf_bytes([("a", [100, 2], 12, 0)], [], bytes(320)),
                         "tensor 'a' is Q4_K with rows of 100 values, not a whole number of "
                         "its blocks of 256 values"),
    "Q8_0 rows of 33": (gguf_bytes([("a", [33, 2], 8, 0)], [], bytes(320)),
                        "tensor 'a' is Q8_0 with rows of 33 values, not a whole number of its "
                        "blocks of 32 values"),
}


@pytest.mark.parametrize("lie", list(LIES))
def test_a_gguf_that_lies_is_refused_when_its_header_is_read(lie, tmp_path):
    data, words = LIES[lie]
    path = tmp_path / "lie.gguf"
    path.write_bytes(data)
    for attempt in (lambda: checkpoint.open_checkpoint([path]),
                    lambda: gguf_file.read_bytes_header(data, "lie.gguf"),
                    lambda: checkpoint.read_tensor(str(path))):
        with pytest.raises(QuantcalcError) as err:
            attempt()
        assert words in err.value.message and err.value.field == "file"
        assert "\n" not in err.value.message


def test_lies_are_one_line_on_the_command_line(tmp_path):
    for lie in ("alignment 3", "dims of 2^64-1", "Q4_K rows of 100"):
        data, words = LIES[lie]
        (tmp_path / "lie.gguf").write_bytes(data)
        refused(cli("analyze", tmp_path / "lie.gguf", "--format", "q8_0"), words)
    refused(cli("scan", tmp_path / "lie.gguf", "--format", "q8_0"), "Q4_K")


def test_honest_layouts_stay_readable():
    """What gguf.cpp accepts: a zero-size tensor at the offset of the next one, alignment 1 or
    64, a 0-d tensor, an unknown type (listed), general.alignment written as any integer."""
    data = gguf_bytes([("e", [0, 4], 0, 0), ("a", [8], 0, 0), ("s", [], 0, 32)],
                      [("general.alignment", UINT64, 32)], F32 + F32)
    header = gguf_file.read_bytes_header(data, "ok.gguf")
    assert header.tensors["e"].shape == (4, 0) and header.tensors["s"].shape == ()
    for alignment in (1, 64):
        gguf_file.read_bytes_header(_aligned(alignment), "ok.gguf")


# ---------------------------------------------------------------- C: types quantcalc cannot read
# types ggml has that quantcalc does not decode, removed ones, an unknown one (the IQ, TQ and FP4
# types are decoded: test_gguf_decoded_types.py reads them)
UNREADABLE = {"I8": (24, [8]), "I32": (26, [8]), "Q8_1": (9, [32]), "Q8_K": (15, [256]),
              "Q1_0": (41, [128]), "Q4_2": (4, [32]), "IQ4_NL_8_8": (38, [32]),
              "ggml type 99": (99, [32]), "Q4_0_4_4": (31, [32])}


@pytest.mark.parametrize("kind", list(UNREADABLE))
def test_analyzing_a_tensor_of_a_type_quantcalc_cannot_read_names_the_type(kind, tmp_path):
    number, dims = UNREADABLE[kind]
    path = tmp_path / "m.gguf"
    path.write_bytes(gguf_bytes([("w", dims, number, 0)], [], bytes(1024)))
    reply = api.analyze({"format": "q8_0"}, {"file_path": str(path), "tensor": "w"})
    error = reply["error"]
    assert error["kind"] == "input" and error["field"] == "tensor", error
    assert kind in error["message"] and f"ggml type {number}" in error["message"]
    with pytest.raises(QuantcalcError, match=f"'w' is stored as {kind}"):
        checkpoint.read_tensor(str(path), "w")


def test_analyze_on_the_command_line_names_the_type(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(gguf_bytes([("w", [256], 15, 0)], [], bytes(1024)))
    refused(cli("analyze", path, "--format", "q8_0"), "Q8_K", "cannot decode")


def test_a_scan_lists_tensors_of_types_it_does_not_know_with_the_reason(tmp_path):
    values = np.linspace(-1, 1, 64, dtype=np.float32)
    entries = [("old", [32], 4, 0), ("repacked", [32], 31, 64), ("future", [32], 99, 128),
               ("w", [64], 0, 192)]
    path = tmp_path / "m.gguf"
    path.write_bytes(gguf_bytes(entries, [], bytes(192) + values.tobytes()))
    doc = scan.scan(checkpoint.open_checkpoint([path]), scan.formats_from_specs(["q8_0"]))
    rows = {row["name"]: row for row in doc["tensors"]}
    assert [rows[n]["dtype"] for n in ("old", "repacked", "future")] == [
        "Q4_2", "Q4_0_4_4", "ggml type 99"]
    for name in ("old", "repacked", "future"):
        assert rows[name]["results"] == [] and rows[name]["notes"], rows[name]
        assert any(rows[name]["dtype"] in note for note in rows[name]["notes"])
    assert rows["w"]["results"][0]["sqnr_db"] is not None
    out = cli("scan", path, "--format", "q8_0", "--json", "-")
    assert out.returncode == 0, out.stderr[-800:]
    assert [t["dtype"] for t in json.loads(out.stdout)["tensors"]][:3] == [
        "Q4_2", "Q4_0_4_4", "ggml type 99"]


def test_a_scan_lists_integer_and_undecoded_types_as_stored(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(gguf_bytes([("i", [8], 26, 0), ("q", [32], 9, 32)], [], bytes(96)))
    doc = scan.scan(checkpoint.open_checkpoint([path]), scan.formats_from_specs(["q8_0"]))
    for row in doc["tensors"]:
        assert row["results"] == [] and any("not decoded here" in n for n in row["notes"]), row


# the INT32 token types of a small vocabulary, read as a list: arrays up to KEPT_ITEMS are kept
def test_short_arrays_are_kept_and_long_ones_skipped_at_the_limit():
    keep = gguf_file.KEPT_ITEMS
    data = gguf_bytes([], [("kept", ARRAY, (INT32, list(range(keep)))),
                           ("skipped", ARRAY, (INT32, list(range(keep + 1)))),
                           ("nested", ARRAY, (ARRAY, [(UINT32, [1, 2])] * (keep + 1)))])
    metadata = gguf_file.read_bytes_header(data, "k.gguf").metadata
    assert metadata["kept"] == list(range(keep))
    assert metadata["skipped"] == gguf_file.SkippedArray(INT32, keep + 1)
    assert len(metadata["nested"]) == keep + 1
