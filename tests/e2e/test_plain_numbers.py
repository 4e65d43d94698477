"""Numbers cross as numbers: an exact result's SQNR is Infinity from the worker to the page (no
"inf" string to turn back), survives the page's storage (a saved result, a saved scan) and goes
back to Python as a float; the JSON downloads keep spelling it "inf"."""

import json
from pathlib import Path

import numpy as np

from conftest import BOOT_TIMEOUT_MS
from helpers import shown_metrics
from tests.support import checkpoints as C

# 8-bit symmetric over -127..127: the scale is 1, so whole numbers are exact
EXACT_LINK = "?name=exact&bits=8&range_min=-127&range_max=127&values=1,2,-3"
SCAN_TIMEOUT_MS = 180_000


def sqnr_shown(page):
    card = page.locator("#metrics [data-metric=sqnr_db]")
    return (card.get_attribute("data-value"), card.locator(".qc-metric-value").inner_text(),
            page.locator("[data-verdict=sqnr_db] .qc-verdict-value").inner_text())


def test_an_exact_result_is_infinity_and_a_return_visit_keeps_it(browser, server):
    context = browser.new_context(service_workers="block")  # so page.route sees the wasm
    try:
        first = context.new_page()
        first.goto(server.url + EXACT_LINK)
        first.wait_for_selector("[data-figure=transfer] img", timeout=BOOT_TIMEOUT_MS)
        first.wait_for_selector("#figures-status:empty", state="attached")
        assert sqnr_shown(first) == ("Infinity", "∞ (no error)", "∞ (no error)")
        assert shown_metrics(first)["sqnr_db"] == float("inf")
        assert "no error" in first.inner_text("#results-announce")
        computed = shown_metrics(first)
        first.wait_for_timeout(500)  # the entry is written just after the last figure
        first.close()

        stalled = context.new_page()  # Python never starts: the saved result is shown
        stalled.route("**/pyodide.asm.wasm", lambda route: None)
        stalled.goto(server.url + EXACT_LINK)
        stalled.wait_for_selector("#results[data-origin=saved]", timeout=30_000)
        assert sqnr_shown(stalled) == ("Infinity", "∞ (no error)", "∞ (no error)")
        assert shown_metrics(stalled) == computed
        stalled.close()
    finally:
        context.close()


def exact_checkpoint(path):
    """Two tensors: one Q8_0 holds exactly (multiples of 1/128 with 127/128 in every block of
    32: its scale is exactly 1/128), and one it does not."""
    rng = np.random.default_rng(1)
    codes = rng.integers(-127, 128, (4, 64))
    codes[:, ::32] = 127
    C.write_safetensors(path, {"exact.weight": (codes / 128).astype(np.float32),
                               "noisy.weight": rng.standard_normal((4, 64)).astype(np.float32)})


def scan_cells(page):
    rows = page.locator("#scan-table tbody tr")
    return {row.get_attribute("data-tensor"): (
        row.locator("td[data-metric=sqnr_db]").get_attribute("data-value"),
        row.locator("td[data-metric=sqnr_db]").inner_text()) for row in rows.all()}


def test_a_scan_keeps_an_infinite_sqnr_through_storage_and_back_to_python(browser, server,
                                                                         tmp_path):
    exact_checkpoint(tmp_path / "model.safetensors")
    context = browser.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url)
        page.wait_for_selector("#engine-status[data-state=ready]", timeout=BOOT_TIMEOUT_MS)
        done = int(page.evaluate("() => document.body.dataset.scans || 0"))
        page.set_input_files("#scan-files", [str(tmp_path / "model.safetensors")])
        page.select_option("#scan-preset", "custom")
        page.fill("#scan-formats", "q8_0")
        page.click("#scan-start")
        page.wait_for_function("(n) => Number(document.body.dataset.scans || 0) > n", arg=done,
                               timeout=SCAN_TIMEOUT_MS)
        cells = scan_cells(page)
        assert cells["exact.weight"] == ("Infinity", "∞")
        assert float(cells["noisy.weight"][0]) < 60
        # the worst first: the finite SQNR above the infinite one
        assert page.locator("#scan-table tbody tr").first.get_attribute("data-tensor") == \
            "noisy.weight"
        with page.expect_download() as info:
            page.click("[data-scan-download=json]")
        doc = json.loads(Path(info.value.path()).read_text())
        exact = next(t for t in doc["tensors"] if t["name"] == "exact.weight")
        assert exact["results"][0]["sqnr_db"] == "inf"  # JSON text's one spelling

        page.reload()  # the saved scan comes back with its Infinity, and Python takes it
        page.wait_for_selector("#scan-saved-note:not([hidden])", timeout=BOOT_TIMEOUT_MS)
        assert scan_cells(page) == cells
        page.wait_for_function("() => document.querySelectorAll('#scan-figures img').length"
                               " === 4", timeout=SCAN_TIMEOUT_MS)
        assert page.text_content("#scan-download-status") == ""
        with page.expect_download() as info:
            page.click("[data-scan-download=json]")
        assert json.loads(Path(info.value.path()).read_text())["tensors"] == doc["tensors"]
        assert errors == []
    finally:
        context.close()
