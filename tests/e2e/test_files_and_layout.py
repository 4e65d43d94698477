"""File input of every type, the responsive grid, boot failure and retry, accessibility basics."""

import io
import json
import struct

import numpy as np
import pytest

from conftest import BOOT_TIMEOUT_MS
from helpers import (assert_same_numbers, calculate, engine_summary, field_error, fill,
                     shown_metrics)

BASE = {"name": "f", "bits": "6", "mode": "asymmetric", "narrow_range": False,
        "rounding": "half-even", "calibration": "minmax", "granularity": "tensor"}
MATRIX = np.random.default_rng(21).standard_normal((6, 8)).astype(np.float32)


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def safetensors(**arrays):
    header, blobs, offset = {}, [], 0
    for name, array in arrays.items():
        raw = array.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


FILES = {
    "weights.npy": (npy(MATRIX), None),
    "model.npz": (npz(first=np.ones(3), second=MATRIX), "second"),
    "model.safetensors": (safetensors(**{"a.weight": MATRIX, "b.bias": np.arange(4.0)}),
                          "a.weight"),
    "values.csv": (b"x,y\n" + b"\n".join(b"%r,%r" % (float(a), float(b))
                                         for a, b in MATRIX[:, :2]), None),
    "values.txt": (" ".join(repr(float(v)) for v in MATRIX.reshape(-1)).encode(), None),
}


@pytest.mark.parametrize("file_name", sorted(FILES))
def test_each_file_type_gives_the_engines_result(app, file_name):
    page = app.page
    data, tensor = FILES[file_name]
    page.set_input_files("#file", files=[{"name": file_name, "mimeType":
                                          "application/octet-stream", "buffer": data}])
    page.wait_for_selector("#clear-file:visible")
    assert file_name in page.inner_text("#file-info")
    if tensor:
        page.wait_for_selector(".qc-tensor-choice:not([hidden])")
        page.select_option("#tensor", tensor)
    fill(page, **BASE)
    calculate(page)
    summary = engine_summary(BASE, {"file_name": file_name, "file_bytes": data, "tensor": tensor})
    assert_same_numbers(page, summary)
    assert page.inner_text("#results-name").startswith(f"f · {summary['count']} values")
    page.click("#clear-file")


def test_a_broken_file_is_reported_and_kept(app):
    page = app.page
    page.fill("#values", "1 2 3")
    page.set_input_files("#file", files=[{"name": "broken.safetensors", "mimeType":
                                          "application/octet-stream", "buffer": b"\x10\0\0"}])
    page.wait_for_selector("#error-file:visible")
    assert "too short" in field_error(page, "file")
    fill(page, **BASE)
    calculate(page)
    assert "broken.safetensors" in field_error(page, "file")
    assert "broken.safetensors" in page.inner_text("#file-info")  # the chosen file stays
    assert page.input_value("#values") == "1 2 3"
    page.click("#clear-file")


def test_a_gguf_file_offers_its_tensors_and_gives_the_engines_result(app, tmp_path):
    """The calculator takes what the file type table says it takes, .gguf included: the file
    input offers it, the chooser lists its tensors, and the chosen one (a Q8_0 tensor,
    dequantized) is read by offset as the command line reads it."""
    from quantcalc import api
    from quantcalc.schema import file_types
    from tests.support import checkpoints as C

    page = app.page
    assert page.get_attribute("#file", "accept") == file_types.accept("calculator")
    assert ".gguf" in page.get_attribute("#file", "accept").split(",")
    rng = np.random.default_rng(8)
    arrays = {"token_embd.weight": rng.standard_normal((8, 64)).astype(np.float32),
              "blk.0.ffn_down.weight": rng.standard_normal((4, 64)).astype(np.float32),
              "output_norm.weight": np.ones(64, np.float32)}
    path = tmp_path / "model.gguf"
    C.write_gguf(path, arrays, {"blk.0.ffn_down.weight": "Q8_0"})
    page.set_input_files("#file", str(path))
    page.wait_for_selector(".qc-tensor-choice:not([hidden])")
    described = api.describe_file({"file_path": str(path)})
    assert page.locator("#tensor option").all_inner_texts() == [
        f"{name} — {detail}" for name, detail in zip(described["tensors"], described["details"])]
    assert "blk.0.ffn_down.weight — 4 × 64 Q8_0" in page.locator("#tensor option").all_inner_texts()
    page.select_option("#tensor", "blk.0.ffn_down.weight")
    fill(page, **BASE)
    calculate(page)
    assert page.locator("#error-file").is_hidden()
    source = {"file_path": str(path), "tensor": "blk.0.ffn_down.weight"}
    summary = engine_summary(BASE, source)
    assert summary["count"] == 4 * 64
    assert_same_numbers(page, summary)
    # a GGUF file's bytes in memory give the same values as the file read by offset
    in_memory = {"file_name": "model.gguf", "file_bytes": path.read_bytes(),
                 "tensor": "blk.0.ffn_down.weight"}
    assert np.array_equal(api.load(in_memory), api.load(source))
    page.click("#clear-file")


@pytest.mark.parametrize("width, columns", [(1280, 3), (800, 2), (400, 1)])
def test_the_grid_has_3_2_1_columns(app, width, columns):
    page = app.page
    page.set_viewport_size({"width": width, "height": 900})
    template = page.locator("#calculator .qc-grid").evaluate(
        "e => getComputedStyle(e).gridTemplateColumns")
    assert len(template.split()) == columns
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
    page.set_viewport_size({"width": 1280, "height": 900})


def test_every_control_has_a_label(app):
    unlabelled = app.page.locator("input, select, textarea").evaluate_all(
        "els => els.filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length))"
        ".map(e => e.id || e.name)")
    assert unlabelled == []


def test_keyboard_only_calculation(fresh):
    page = fresh.open()
    page.focus("#values")
    page.keyboard.press("Control+A")  # a first visit holds the example's values
    page.keyboard.type("0.5 -0.25 1")
    page.keyboard.press("Enter")  # a newline in the text area, not a submit
    page.focus("#calculate")
    before = int(page.evaluate("document.body.dataset.calculations || 0"))
    page.keyboard.press("Enter")
    page.wait_for_selector(f"body[data-calculations='{before + 1}']", state="attached")
    assert page.locator("[data-metric=scale]").get_attribute("data-value") == repr(1 / 127)
    # Ctrl+Enter in the values box calculates too
    page.focus("#values")
    page.keyboard.press("Control+A")
    page.keyboard.type("0.5 -0.25 2")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(f"body[data-calculations='{before + 2}']", state="attached")
    assert page.locator("[data-metric=scale]").get_attribute("data-value") == repr(2 / 127)
    assert page.evaluate("document.activeElement.id") == "results-title"
    assert fresh.errors == []


def test_calculate_waits_for_the_engine_with_a_reason(fresh):
    page = fresh.page
    fresh.context.route("**/quantcalc.zip", lambda route: None)  # hold the engine back
    page.goto(fresh.base_url)
    assert page.locator("#calculate").is_disabled()
    assert "Waiting" in page.inner_text("#calculate-reason")


def test_a_failed_boot_shows_an_error_and_retry_recovers(fresh):
    page = fresh.page
    fresh.context.route("**/pyodide.asm.wasm",
                        lambda route: route.fulfill(status=404, body="gone"))
    page.goto(fresh.base_url)
    page.wait_for_selector("#engine-error:visible", timeout=60_000)
    assert "HTTP 404" in page.inner_text("#engine-error")
    assert page.locator("#calculate").is_disabled()
    fresh.context.unroute("**/pyodide.asm.wasm")
    page.click("#engine-retry")
    page.wait_for_selector("#engine-status[data-state=ready]", timeout=120_000)
    assert not page.locator("#calculate").is_disabled()


def test_a_wrong_wasm_mime_type_is_named(fresh):
    page = fresh.page
    fresh.context.route("**/pyodide.asm.wasm", lambda route: route.fulfill(
        status=200, body=b"\0asm", headers={"Content-Type": "text/plain"}))
    page.goto(fresh.base_url)
    page.wait_for_selector("#engine-error:visible", timeout=60_000)
    assert "must send application/wasm" in page.inner_text("#engine-error")


def test_a_stuck_boot_times_out_visibly(fresh):
    page = fresh.page
    fresh.context.route("**/pyodide.mjs", lambda route: None)  # never answered
    # the test hook is set by the test, out of reach of a shared link
    fresh.context.add_init_script("globalThis.quantcalcTestHooks = {bootTimeoutMs: 3000}")
    page.goto(fresh.base_url)
    page.wait_for_selector("#engine-error:visible", timeout=30_000)
    assert "did not start within 3 s" in page.inner_text("#engine-error")


def test_a_worker_that_dies_after_start_up_is_replaced_and_the_form_kept(fresh):
    page = fresh.open()
    fill(page, values="1 2 3 4", bits="5", name="kept")
    worker = page.workers[0]
    # the next request makes the worker throw outside any handler: a crash, as after an
    # out-of-memory abort; the page used to leave that request waiting forever
    worker.evaluate("() => { self.onmessage = () => { throw new Error('simulated crash'); }; }")
    before = int(page.evaluate("document.body.dataset.calculations || 0"))
    page.click("#calculate")
    page.wait_for_selector(f"body[data-calculations='{before + 1}']", state="attached")
    assert "stopped" in page.inner_text("#error-values")
    assert page.input_value("#values") == "1 2 3 4" and page.input_value("#bits") == "5"
    page.wait_for_selector("#engine-status[data-state=ready]", timeout=BOOT_TIMEOUT_MS)
    calculate(page)
    assert shown_metrics(page)["q_max"] == 15
    assert "kept" in page.inner_text("#results-name")
    fresh.errors.clear()  # the simulated crash is logged, as a real one would be


def test_a_link_cannot_reach_the_test_hooks(fresh):
    page = fresh.open("?boot_timeout=1")  # once made the engine "fail" for whoever opened it
    assert page.get_attribute("#engine-status", "data-state") == "ready"
    assert "Unknown link parameter “boot_timeout”" in page.inner_text("#link-problems")


def test_drag_and_drop_a_file(app):
    page = app.page
    data = npy(MATRIX)
    transfer = page.evaluate_handle(
        """bytes => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], "dropped.npy"));
            return transfer;
        }""", list(data))
    page.dispatch_event("#dropzone", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("#clear-file:visible")
    assert "dropped.npy" in page.inner_text("#file-info")
    fill(page, **BASE)
    calculate(page)
    summary = engine_summary(BASE, {"file_name": "dropped.npy", "file_bytes": data})
    assert_same_numbers(page, summary)
    page.click("#clear-file")
