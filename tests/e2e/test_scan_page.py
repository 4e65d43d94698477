"""The model scan in the page: a sharded checkpoint chosen as files, scanned in the worker, every
row compared with the command line's JSON digit for digit; a tensor streamed in slabs; sorting,
filtering, opening a row in the calculator, downloads, cancel, and the scan kept over a reload."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support import checkpoints as C

ROOT = Path(__file__).resolve().parents[2]
FORMATS = ["q4_k", "format=int bits=8 granularity=channel", "nvfp4"]
SCAN_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ck")
    arrays = C.make_arrays(C.llama_tensors(layers=4, hidden=256, ffn=512, vocab=512))
    C.write_sharded(folder, arrays, shards=2, dtype="BF16")
    (folder / "config.json").write_text("{}")  # a model folder's other files are passed over
    return folder


def cli_scan(folder, out, *extra):
    args = [sys.executable, "-m", "quantcalc", "scan", str(folder), "--json", str(out), "--quiet"]
    for spec in FORMATS:
        args += ["--format", spec]
    done = subprocess.run(args + list(extra), capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT / "py"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return json.loads(Path(out).read_text())


def start_scan(page, files, formats=FORMATS):
    done = int(page.evaluate("() => document.body.dataset.scans || 0"))
    page.set_input_files("#scan-files", [str(f) for f in files])
    page.select_option("#scan-preset", "custom")
    page.fill("#scan-formats", "\n".join(formats))
    page.click("#scan-start")
    return done


def wait_scan(page, before):
    page.wait_for_function("(n) => Number(document.body.dataset.scans || 0) > n", arg=before,
                           timeout=SCAN_TIMEOUT_MS)


def downloaded_json(page, kind="json"):
    with page.expect_download() as info:
        page.click(f"[data-scan-download={kind}]")
    return Path(info.value.path())


def test_scanning_shards_in_the_page_equals_the_command_line_digit_for_digit(app, checkpoint,
                                                                           tmp_path):
    page = app.page
    files = sorted(checkpoint.iterdir())
    before = start_scan(page, files)
    page.wait_for_selector("#scan-table tbody tr", timeout=SCAN_TIMEOUT_MS)  # rows as they come
    wait_scan(page, before)
    status = page.text_content("#scan-status")
    assert "Scanned 39 tensors under 3 formats" in status
    page_doc = json.loads(downloaded_json(page).read_text())
    cli_doc = cli_scan(checkpoint, tmp_path / "cli.json")
    # the page's worker mounts the files in its own folder: only the files' place differs
    assert page_doc == cli_doc
    # the table shows the worst first (lowest SQNR), numbers as the engine gave them
    first = page.locator("#scan-table tbody tr").first
    shown = float(first.locator("td[data-metric=sqnr_db]").get_attribute("data-value"))
    lowest = min(r["sqnr_db"] for t in cli_doc["tensors"] for r in t["results"]
                 if isinstance(r["sqnr_db"], float))
    assert shown == lowest


def test_filters_sort_figures_and_reports(app, checkpoint):
    page = app.page
    if not page.locator("#scan-table tbody tr").count():
        before = start_scan(page, sorted(checkpoint.iterdir()))
        wait_scan(page, before)
    page.select_option("#scan-role-filter", "ffn_down")
    roles = page.locator("#scan-table tbody td[data-metric=role]").all_text_contents()
    assert roles and set(roles) == {"ffn_down"} and len(roles) == 4 * 3
    page.fill("#scan-layer-filter", "1-2")
    layers = page.locator("#scan-table tbody td[data-metric=layer]").all_text_contents()
    assert sorted(set(layers)) == ["1", "2"]
    page.select_option("#scan-role-filter", "")
    page.fill("#scan-layer-filter", "")
    page.click("button.qc-sort[data-sort=parameters]")
    assert page.get_attribute("th:has(button[data-sort=parameters])", "aria-sort") == "ascending"
    counts = [int(v.replace(",", "")) for v in
              page.locator("#scan-table tbody td[data-metric=parameters]").all_text_contents()]
    assert counts == sorted(counts)
    page.click("button.qc-sort[data-sort=sqnr_db]")
    page.wait_for_function("() => document.querySelectorAll('#scan-figures img').length === 4",
                           timeout=SCAN_TIMEOUT_MS)
    titles = page.locator("#scan-figures figcaption").all_text_contents()
    assert any("SQNR by layer and role" in t for t in titles)
    with page.expect_download() as info:
        page.click("[data-scan-download=csv]")
    lines = Path(info.value.path()).read_text().splitlines()
    assert lines[0].startswith("name,file,layer,role") and len(lines) == 1 + 39 * 3
    with page.expect_download() as info:
        page.click("[data-scan-download=pdf]")
    assert Path(info.value.path()).read_bytes()[:5] == b"%PDF-"


def test_a_row_opens_its_tensor_in_the_calculator(app, checkpoint):
    page = app.page
    if not page.locator("#scan-table tbody tr").count():
        before = start_scan(page, sorted(checkpoint.iterdir()))
        wait_scan(page, before)
    page.select_option("#scan-format-filter", "1")  # INT8 per-channel
    page.fill("#scan-name-filter", "layers.2.mlp.down_proj")
    row = page.locator("#scan-table tbody tr").first
    sqnr = float(row.locator("td[data-metric=sqnr_db]").get_attribute("data-value"))
    done = int(page.evaluate("() => document.body.dataset.calculations || 0"))
    row.locator("td[data-metric=name] button").click()
    page.wait_for_function("(n) => Number(document.body.dataset.calculations || 0) > n",
                           arg=done)
    assert page.input_value("#format") == "int" and page.input_value("#granularity") == "channel"
    card = page.locator("#metrics [data-metric=sqnr_db]").get_attribute("data-value")
    assert float(card) == sqnr
    assert "layers.2.mlp.down_proj" in page.text_content("#file-info")


def test_a_tensor_larger_than_the_memory_budget_is_streamed_with_the_same_scales(
        browser, server, tmp_path):
    """With the page's budget lowered to 4096 values, every 2-D tensor is read in slabs."""
    arrays = C.make_arrays(C.llama_tensors(layers=1, hidden=256, ffn=512, vocab=512))
    C.write_safetensors(tmp_path / "model.safetensors", arrays, "F16")
    context = browser.new_context(accept_downloads=True)
    # and one worker (the other tests use one per core)
    context.add_init_script("globalThis.quantcalcTestHooks = {scanWholeValues: 4096, scanWorkers: 1}")
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector("#engine-status[data-state=ready]", timeout=120_000)
    before = start_scan(page, [tmp_path / "model.safetensors"])
    wait_scan(page, before)
    streamed = json.loads(downloaded_json(page).read_text())
    whole = cli_scan(tmp_path / "model.safetensors", tmp_path / "cli.json")
    for a, b in zip(streamed["tensors"], whole["tensors"]):
        assert a["streamed"] == (len(a["shape"]) == 2 and a["parameters"] > 4096)
        for x, y in zip(a["results"], b["results"]):
            assert x["max_abs_error"] == y["max_abs_error"] and x["clip_rate"] == y["clip_rate"]
            if isinstance(x["sqnr_db"], float):
                assert math.isclose(x["sqnr_db"], y["sqnr_db"], rel_tol=1e-12)
    context.close()


def test_cancel_keeps_the_rows_done_and_a_reload_keeps_the_scan(browser, server, tmp_path):
    arrays = C.make_arrays(C.llama_tensors(layers=12, hidden=512, ffn=1024, vocab=1024))
    C.write_safetensors(tmp_path / "model.safetensors", arrays, "BF16")
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector("#engine-status[data-state=ready]", timeout=120_000)
    before = start_scan(page, [tmp_path / "model.safetensors"], ["q4_k", "q6_k", "q3_k"])
    page.wait_for_function("() => document.querySelectorAll('#scan-table tbody tr').length >= 3",
                           timeout=SCAN_TIMEOUT_MS)
    page.click("#scan-cancel")
    wait_scan(page, before)
    assert "Cancelled after" in page.text_content("#scan-status")
    kept = page.locator("#scan-table tbody tr").count()
    assert kept >= 3
    page.wait_for_selector("#engine-status[data-state=ready]", timeout=120_000)
    partial = json.loads(downloaded_json(page).read_text())
    assert 0 < len(partial["tensors"]) < len(arrays)
    assert partial["totals"][0]["format"] == "Q4_K"
    page.reload()
    page.wait_for_selector("#scan-saved-note:not([hidden])", timeout=120_000)
    assert page.locator("#scan-table tbody tr").count() == kept
    page.click("#scan-clear")
    page.wait_for_selector("#scan-results[hidden]", state="attached")
    page.reload()
    page.wait_for_selector("#engine-status[data-state=ready]", timeout=120_000)
    assert page.locator("#scan-results").is_hidden()
    context.close()


def test_a_pickle_is_refused_at_the_files_field(app, tmp_path):
    page = app.page
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x02}q\x00.")
    before = start_scan(page, [tmp_path / "pytorch_model.bin"], ["q8_0"])
    page.wait_for_selector("#error-scan-files:not([hidden])", timeout=SCAN_TIMEOUT_MS)
    assert "runs code" in page.text_content("#error-scan-files")
    assert page.input_value("#scan-formats") == "q8_0"
    del before


def test_the_planner_slider_replans_and_its_recipe_equals_the_command_line(app, tmp_path):
    """Scan under llama.cpp's types, move the target, download the recipe: the command line's
    plan of its own scan at the same target is the same document."""
    page = app.page
    folder = tmp_path / "ck"
    arrays = C.make_arrays(C.llama_tensors(layers=4, hidden=256, ffn=512, vocab=512), seed=3)
    C.write_sharded(folder, arrays, shards=2)
    before = start_scan(page, sorted(folder.iterdir()), ["q8_0", "q6_k", "q5_k", "q5_0", "q5_1",
                                                        "q4_k", "q4_0", "q3_k", "q2_k"])
    wait_scan(page, before)
    page.wait_for_selector("#planner:not([hidden]) #plan-presets tbody tr",
                           timeout=SCAN_TIMEOUT_MS)
    plans = int(page.evaluate("() => document.body.dataset.plans || 0"))
    page.fill("#plan-target", "4.2")
    page.wait_for_function("(n) => Number(document.body.dataset.plans || 0) > n", arg=plans)
    shown = float(page.get_attribute("#plan-summary", "data-bits-per-weight"))
    assert shown <= 4.2
    assert "Q4_K_M" in page.text_content("#plan-presets")
    assert page.text_content("#plan-verdict").startswith("At ")
    assert "llama-quantize --tensor-type" in page.text_content("#plan-command")
    with page.expect_download() as info:
        page.click("[data-plan-download=json]")
    recipe = json.loads(Path(info.value.path()).read_text())
    args = [sys.executable, "-m", "quantcalc", "scan", str(folder), "--quiet", "--plan-bpw",
            "4.2", "--plan-json", str(tmp_path / "cli.json")]
    for spec in ["q8_0", "q6_k", "q5_k", "q5_0", "q5_1", "q4_k", "q4_0", "q3_k", "q2_k"]:
        args += ["--format", spec]
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT / "py"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert recipe == json.loads((tmp_path / "cli.json").read_text())
    page.wait_for_selector("#plan-figures img")


def test_files_dropped_on_the_scan_are_taken(app, checkpoint):
    """Dropping the files (a script's DataTransfer: the entries API needs a real drag) gives the
    same checkpoint as choosing them."""
    page = app.page
    files = sorted(p for p in checkpoint.iterdir() if p.suffix != ".json" or "index" in p.name)
    payload = [{"name": p.name, "data": list(p.read_bytes()[:64])} for p in files]
    page.evaluate("""(files) => {
      const transfer = new DataTransfer();
      for (const f of files) transfer.items.add(new File([new Uint8Array(f.data)], f.name));
      document.querySelector('#scan-drop').dispatchEvent(
        new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }""", payload)
    page.wait_for_function("() => /2 files .* and an index/.test("
                           "document.querySelector('#scan-files-info').textContent)")


def test_the_calculator_opens_a_tensor_of_a_3_gib_safetensors_file(app, tmp_path):
    """Past Pyodide's 2 GiB file offset: the worker mounts the file in slices and Python reads
    the chosen tensor by offset (the file is sparse: no disk used for the big tensor)."""
    import struct

    from tests.e2e.helpers import assert_same_numbers, calculate, engine_summary, fill

    page = app.page
    small = (np.arange(64, dtype=np.float32) - 20) / 10
    big_bytes = 3 * 2 ** 30
    header = json.dumps({
        "big": {"dtype": "F32", "shape": [big_bytes // 4], "data_offsets": [0, big_bytes]},
        "small": {"dtype": "F32", "shape": [8, 8],
                  "data_offsets": [big_bytes, big_bytes + small.nbytes]}}).encode()
    path = tmp_path / "shard.safetensors"
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(header)) + header)
        out.seek(8 + len(header) + big_bytes)
        out.write(small.tobytes())
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#tensor option[value=small]", state="attached")
    page.select_option("#tensor", "small")
    settings = {"format": "int", "bits": "8", "mode": "symmetric", "granularity": "tensor",
                "calibration": "minmax", "rounding": "half-even"}
    fill(page, **settings)  # earlier tests in this module leave other settings in the form
    calculate(page)
    assert page.locator("#error-file").is_hidden()
    summary = engine_summary({**settings, "name": "small"},
                             {"file_path": str(path), "tensor": "small"})
    assert summary["count"] == 64
    assert_same_numbers(page, summary)
    page.click("#clear-file")
