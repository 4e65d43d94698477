"""Hostile checkpoints in the page (issue 26, second round), clicked and read as a user does.

Item 2: one bad tensor never sinks a scan. In the Scan section, a GGUF whose tensors include
one of 1e38 values (llama.cpp's types store their scales as fp16: refused), one of a ggml type
llama.cpp no longer reads (Q4_2) and one of a type number nobody knows (99), and an .npz with a
member whose CRC fails: each bad tensor's row says what is wrong, every other row is measured,
the scan finishes, and its downloads work (the JSON is the command line's, digit for digit).

Item 8: in the calculator, a GGUF tensor stored in a type quantcalc cannot decode (I8, I32,
Q8_1, Q8_K, Q1_0, a type number it does not know) gives one plain message at the tensor
field naming the type, not "internal error", and the page goes on: the file's float tensor
then calculates.

Item 5 in the page: a tokenizer of awkward strings is skipped as on the command line (the page
finds their length prefixes word by word, CPython byte by byte).
"""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import calculate, engine_summary, field_error, fill, shown_metrics
from tests.readers.gguf_builder import ARRAY, STRING, UINT32, gguf_bytes

ROOT = Path(__file__).resolve().parents[2]
SCAN_TIMEOUT_MS = 180_000
FORMATS = ["q4_k", "q8_0", "format=int bits=8"]


def _f32(rows, seed):
    return np.random.default_rng(seed).standard_normal((rows, 256)).astype(np.float32)


def hostile_gguf(path):
    """A GGUF at `path` (returned) of blk.0.attn_q (fine), blk.0.attn_k (every value 1e38),
    blk.0.old (Q4_2, a removed type), blk.0.future (ggml type 99) and blk.0.attn_v (fine), each
    tensor's data 32-byte aligned."""
    tensors = [("blk.0.attn_q.weight", _f32(4, 1)), ("blk.0.attn_k.weight",
                                                     np.full((4, 256), 1e38, np.float32)),
               ("blk.0.old.weight", None), ("blk.0.future.weight", None),
               ("blk.0.attn_v.weight", _f32(4, 2))]
    entries, data = [], b""
    for name, values in tensors:
        kind = {"blk.0.old.weight": 4, "blk.0.future.weight": 99}.get(name, 0)
        raw = values.tobytes() if values is not None else bytes(64)
        entries.append((name, [256, 4] if values is not None else [32], kind, len(data)))
        data += raw + bytes(-len(raw) % 32)
    path.write_bytes(gguf_bytes(entries, [], data))
    return path


def damaged_npz(path):
    """Members a (fine), w (its values changed after writing: the CRC fails at its end), b."""
    buffer = io.BytesIO()
    rng = np.random.default_rng(5)
    np.savez(buffer, a=rng.standard_normal((4, 256)).astype(np.float32),
             w=rng.standard_normal((256, 1024)).astype(np.float32),
             b=rng.standard_normal((4, 256)).astype(np.float32))
    raw = bytearray(buffer.getvalue())
    at = raw.index(b"w.npy") + 4096  # inside w's values
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


def cli_scan(path, out):
    args = [sys.executable, "-m", "quantcalc", "scan", str(path), "--json", str(out), "--quiet"]
    for spec in FORMATS:
        args += ["--format", spec]
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT / "py"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return json.loads(Path(out).read_text())


def scan_in_page(page, path):
    before = int(page.evaluate("() => document.body.dataset.scans || 0"))
    page.set_input_files("#scan-files", str(path))
    page.select_option("#scan-preset", "custom")
    page.fill("#scan-formats", "\n".join(FORMATS))
    page.click("#scan-start")
    page.wait_for_function("(n) => Number(document.body.dataset.scans || 0) > n", arg=before,
                           timeout=SCAN_TIMEOUT_MS)


def row_text(page, tensor, format_label, metric):
    cell = page.locator(f"#scan-table tbody tr[data-tensor='{tensor}'][data-format='{format_label}']"
                        f" td[data-metric={metric}]")
    return cell.inner_text()


def download(page, kind):
    with page.expect_download() as info:
        page.click(f"[data-scan-download={kind}]")
    return Path(info.value.path()).read_bytes()


def test_a_gguf_with_bad_tensors_is_scanned_with_an_error_on_their_rows(app, tmp_path):
    page = app.page
    path = hostile_gguf(tmp_path / "hostile.gguf")
    scan_in_page(page, path)
    assert page.is_hidden("#error-scan-files") and page.is_hidden("#error-scan-formats")
    assert "Scanned 5 tensors under 3 formats" in page.inner_text("#scan-status")
    for label in ("Q4_K", "Q8_0"):  # llama.cpp's types refuse 1e38: fp16 scales overflow
        notes = row_text(page, "blk.0.attn_k.weight", label, "notes")
        assert "stores its scales as fp16" in notes and "internal error" not in notes
        assert row_text(page, "blk.0.attn_k.weight", label, "sqnr_db") == ""
    assert row_text(page, "blk.0.attn_k.weight", "INT8", "sqnr_db") != ""  # int8 takes them
    for tensor in ("blk.0.attn_q.weight", "blk.0.attn_v.weight"):  # the others are measured
        for label in ("Q4_K", "Q8_0", "INT8"):
            assert float(row_text(page, tensor, label, "sqnr_db")) > 0
    old = page.locator("#scan-table tbody tr[data-tensor='blk.0.old.weight'] "
                       "td[data-metric=notes]").inner_text()
    future = page.locator("#scan-table tbody tr[data-tensor='blk.0.future.weight'] "
                          "td[data-metric=notes]").inner_text()
    assert "Q4_2" in old and "ggml type 99" in future
    # the totals count the refusals; the downloads work and say the same as the command line
    refused = page.locator("#scan-totals-table tbody tr[data-format=Q4_K] td").nth(4)
    assert refused.inner_text() == "1"
    page_doc = json.loads(download(page, "json"))
    assert page_doc == cli_scan(path, tmp_path / "cli.json")
    csv = download(page, "csv").decode()
    assert csv.splitlines()[0].startswith("name,") and "stores its scales as fp16" in csv
    assert download(page, "pdf")[:5] == b"%PDF-"


def test_a_gguf_that_llama_cpp_refuses_is_one_message_at_the_files_field(app, tmp_path):
    """Q4_K rows of 100 values: gguf.cpp refuses the whole file (issue 26 item 6), so the scan
    says so at the files field, in one plain line, and the page scans the next file."""
    page = app.page
    path = tmp_path / "rows.gguf"
    path.write_bytes(gguf_bytes([("blk.0.ffn_up.weight", [100, 2], 12, 0)], [], bytes(320)))
    page.set_input_files("#scan-files", str(path))
    page.select_option("#scan-preset", "custom")
    page.fill("#scan-formats", "q8_0")
    page.click("#scan-start")
    page.wait_for_selector("#error-scan-files:not([hidden])", timeout=SCAN_TIMEOUT_MS)
    message = page.inner_text("#error-scan-files")
    assert "is Q4_K with rows of 100 values, not a whole number of its blocks of 256" in message
    assert "internal error" not in message.lower() and "\n" not in message.strip()
    scan_in_page(page, hostile_gguf(tmp_path / "after.gguf"))
    assert "Scanned 5 tensors" in page.inner_text("#scan-status")


def test_an_npz_member_with_a_bad_crc_is_a_row_with_the_reason(app, tmp_path):
    page = app.page
    path = damaged_npz(tmp_path / "damaged.npz")
    scan_in_page(page, path)
    assert page.is_hidden("#error-scan-files")
    assert "Scanned 3 tensors under 3 formats" in page.inner_text("#scan-status")
    notes = page.locator("#scan-table tbody tr[data-tensor=w] td[data-metric=notes]").inner_text()
    assert "damaged.npz[w.npy] is damaged" in notes and "CRC" in notes
    for tensor in ("a", "b"):
        assert float(row_text(page, tensor, "Q8_0", "sqnr_db")) > 0
    assert json.loads(download(page, "json")) == cli_scan(path, tmp_path / "cli.json")


def test_a_tokenizer_of_awkward_strings_is_skipped_in_the_page_as_on_the_command_line(
        app, tmp_path):
    """Pyodide finds the strings' length prefixes word by word (byte_window.BY_WORDS), CPython
    byte by byte: a vocabulary with empty, long, NUL-holding and multi-byte strings lands on the
    same tensor directory and the same numbers in the page."""
    rng = np.random.default_rng(8)
    kinds = [b"", b"L" * 300, b"\x05" + b"\0" * 9 + b"z", "токен✓".encode(), b"ab", b"\0"]
    vocabulary = [kinds[i % len(kinds)] if i % 7 == 0 else f"t{i}".encode() for i in range(6000)]
    values = rng.standard_normal((8, 64)).astype(np.float32)
    entries = [("token_embd.weight", [64, 8], 0, 0), ("output_norm.weight", [64], 0, 2048)]
    data = values.tobytes() + np.ones(64, np.float32).tobytes()
    path = tmp_path / "vocab.gguf"
    path.write_bytes(gguf_bytes(entries, [("tokenizer.ggml.tokens", ARRAY, (STRING, vocabulary)),
                                          ("after", UINT32, 7),
                                          ("tokenizer.ggml.merges", ARRAY, (STRING, vocabulary))],
                                data))
    page = app.page
    page.set_input_files("#file", str(path))
    page.wait_for_selector(".qc-tensor-choice:visible")
    assert page.locator("#tensor option").all_inner_texts() == [
        "token_embd.weight — 8 × 64 F32", "output_norm.weight — 64 F32"]
    page.select_option("#tensor", "token_embd.weight")
    fill(page, format="q8_0")
    calculate(page)
    summary = engine_summary({"format": "q8_0", "name": "token_embd.weight"},
                             {"file_path": str(path), "tensor": "token_embd.weight"})
    assert shown_metrics(page)["sqnr_db"] == summary["sqnr_db"]
    page.click("#clear-file")


# ggml type number: the type's name, the GGUF dimensions (fastest first) of one whole row
# (IQ2_XXS and TQ1_0 were here until quantcalc learned to decode them: formats/ggml/iq_decode)
UNDECODED = {"I8": (24, [8]), "I32": (26, [8]), "Q8_1": (9, [32]), "Q8_K": (15, [256]),
             "Q1_0": (41, [128]), "ggml type 99": (99, [32])}


def undecoded_gguf(path):
    entries, offset = [], 0
    for name, (kind, dims) in UNDECODED.items():
        entries.append((f"{name.replace(' ', '_')}.weight", dims, kind, offset))
        offset += 512
    floats = np.linspace(-2, 2, 64, dtype=np.float32)
    entries.append(("floats.weight", [64], 0, offset))
    path.write_bytes(gguf_bytes(entries, [], bytes(offset) + floats.tobytes()))


def test_a_file_of_one_undecodable_tensor_says_so_at_the_tensor_field(app, tmp_path):
    """No chooser (one tensor): the message is still at the tensor field, and typed values
    then calculate."""
    page = app.page
    path = tmp_path / "one.gguf"
    path.write_bytes(gguf_bytes([("tok_embd.weight", [256, 2], 15, 0)], [], bytes(584)))
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#clear-file:visible")
    fill(page, format="q8_0")
    calculate(page)
    message = field_error(page, "tensor") or field_error(page, "file")
    assert message == ("'tok_embd.weight' is stored as Q8_K (ggml type 15), which quantcalc "
                       "cannot decode")
    page.click("#clear-file")
    fill(page, values="1 2 3", format="int", bits="8")
    calculate(page)
    assert shown_metrics(page)["q_max"] == 127


@pytest.mark.parametrize("kind", list(UNDECODED))
def test_a_tensor_of_a_type_quantcalc_cannot_decode_is_one_plain_message(app, tmp_path, kind):
    page = app.page
    path = tmp_path / "types.gguf"
    undecoded_gguf(path)
    page.set_input_files("#file", str(path))
    page.wait_for_selector(".qc-tensor-choice:visible")
    tensor = f"{kind.replace(' ', '_')}.weight"
    page.select_option("#tensor", tensor)
    fill(page, format="q8_0")
    calculate(page)
    message = field_error(page, "tensor") or field_error(page, "file")
    assert message, "no message at the file or tensor field"
    assert kind in message and "internal error" not in message.lower()
    assert "\n" not in message.strip() and "Traceback" not in message
    assert field_error(page, "values") is None
    # the page goes on: the file's float tensor calculates
    page.select_option("#tensor", "floats.weight")
    calculate(page)
    assert field_error(page, "tensor") is None and field_error(page, "file") is None
    assert "64 values" in page.inner_text("#results-name")
    assert shown_metrics(page)["sqnr_db"] > 30
    page.click("#clear-file")
