"""The scan as a user meets it (issue 27): totals that say how much of the model each format
measured and in which fallback types, a table that shows all its rows when asked, focus that
stays somewhere sensible, a way back from an opened tensor, its statistics explained, and a
restored scan that keeps its formats."""

import json
import re
from pathlib import Path

import pytest

from tests.support import checkpoints as C

# rows of 384 values: Q4_K (256 per block) falls back to Q5_0 for the down projections
FORMATS = ["q4_k", "q8_0", "format=int bits=8 granularity=channel"]
SCAN_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("polish")
    arrays = C.make_arrays(C.llama_tensors(layers=12, hidden=256, ffn=384, vocab=256))
    C.write_safetensors(folder / "model.safetensors", arrays, "F32")
    return folder


def scan(page, folder, formats=FORMATS):
    before = int(page.evaluate("() => document.body.dataset.scans || 0"))
    page.set_input_files("#scan-files", [str(f) for f in sorted(folder.iterdir())])
    page.select_option("#scan-preset", "custom")
    page.fill("#scan-formats", "\n".join(formats))
    page.click("#scan-start")
    return before


def wait_scan(page, before):
    page.wait_for_function("(n) => Number(document.body.dataset.scans || 0) > n", arg=before,
                           timeout=SCAN_TIMEOUT_MS)


def scanned(page, folder):
    if not page.locator("#scan-totals-table tbody tr").count():
        before = scan(page, folder)
        wait_scan(page, before)


def document_json(page):
    with page.expect_download() as info:
        page.click("[data-scan-download=json]")
    return json.loads(Path(info.value.path()).read_text())


def test_focus_stays_on_the_scan_while_and_after_it_runs(app, checkpoint):
    page = app.page
    before = scan(page, checkpoint)
    # the Scan button is disabled while it runs: focus must not fall to <body>
    assert page.evaluate("() => document.activeElement !== document.body")
    wait_scan(page, before)
    assert page.evaluate("() => document.activeElement !== document.body")
    assert page.evaluate("() => document.activeElement.closest('#scan') !== null")


def test_totals_show_coverage_and_a_fallback_says_so_in_its_row(app, checkpoint):
    page = app.page
    scanned(page, checkpoint)
    doc = document_json(page)
    q4k = next(t for t in doc["totals"] if t["format"] == "Q4_K")
    assert 0 < q4k["parameters_fallback"] < q4k["parameters_covered"]
    coverage = page.text_content("#scan-totals-table tbody tr[data-format=Q4_K] "
                                 "[data-metric=coverage]")
    n, m, k = (f"{q4k[key]:,}" for key in
               ("parameters_covered", "parameters_total", "parameters_fallback"))
    assert f"measured {n} of {m} parameters ({k} in fallback types)" in coverage
    fallback = next((t, r) for t in doc["tensors"] for r in t["results"] if r.get("measured_as"))
    page.fill("#scan-name-filter", fallback[0]["name"])
    row = page.locator(f"#scan-table tbody tr[data-format='{fallback[1]['format']}']").first
    assert f"measured as {fallback[1]['measured_as']}" in row.text_content()
    page.fill("#scan-name-filter", "")


def test_show_all_rows_and_the_statistics_are_explained(app, checkpoint):
    page = app.page
    scanned(page, checkpoint)
    total = page.get_attribute("#scan-table", "data-rows")
    assert page.locator("#scan-table tbody tr").count() == 300
    button = page.locator("#scan-show-all")
    assert button.is_visible() and total in button.text_content().replace(",", "")
    button.click()
    assert page.locator("#scan-table tbody tr").count() == int(total)
    for metric in ("amax_over_std", "kurtosis", "beyond_6_sigma", "worst_channel"):
        th = page.locator(f"#scan-table th[data-metric={metric}]")
        assert th.locator("[title]").count() or th.get_attribute("title")
        described = th.locator("button").get_attribute("aria-describedby")
        assert described and page.text_content(f"#{described}").strip()
    faq = page.text_content("#faq-scan-statistics")
    for words in ("amax/std", "Kurtosis", "Beyond 6σ", "Worst channel"):
        assert words in faq


def test_back_to_the_scan_from_an_opened_tensor(app, checkpoint):
    page = app.page
    scanned(page, checkpoint)
    page.fill("#scan-name-filter", "layers.3.mlp.up_proj")
    name = page.locator("#scan-table tbody tr td[data-metric=name] button").first
    name.click()
    back = page.locator("#scan-back")
    back.wait_for(state="visible", timeout=60_000)
    back.click()
    assert page.evaluate("() => document.activeElement.closest('#scan-results') !== null")
    page.fill("#scan-name-filter", "")


def test_a_restored_scan_shows_its_formats(browser, server, checkpoint):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector("#engine-status[data-state=ready]", timeout=120_000)
    kept = int(page.evaluate("() => document.body.dataset.scansKept || 0"))
    wait_scan(page, scan(page, checkpoint, ["q8_0", "q6_k"]))
    page.wait_for_function("(n) => Number(document.body.dataset.scansKept || 0) > n", arg=kept)
    page.reload()
    page.wait_for_selector("#scan-saved-note:not([hidden])", timeout=120_000)
    page.wait_for_selector("#engine-status[data-state=ready]", timeout=120_000)
    page.set_input_files("#scan-files", [str(f) for f in sorted(checkpoint.iterdir())])
    assert page.input_value("#scan-formats") == "q8_0\nq6_k"
    assert page.input_value("#scan-preset") == "custom"
    assert re.search("chosen again", page.text_content("#scan-saved-note"))
    context.close()


def test_a_download_status_does_not_outlive_its_result(app):
    page = app.page
    page.fill("#values", "1, 2, 3, 4")
    page.click("#calculate")
    page.wait_for_selector("#results:not([hidden])", timeout=60_000)
    with page.expect_download():
        page.click("[data-download=csv]")
    page.wait_for_function("() => /Saved/.test(document.querySelector('#download-status')"
                           ".textContent)")
    page.fill("#values", "1, 2, 3, 5")
    page.click("#calculate")
    page.wait_for_function("() => document.querySelector('#download-status').textContent === ''",
                           timeout=60_000)


def test_a_layer_filter_that_is_no_layer_says_so_at_the_field(app, checkpoint):
    """"zz" in the Layer field was silently ignored: every row stayed, with no word."""
    page = app.page
    scanned(page, checkpoint)
    page.fill("#scan-layer-filter", "zz")
    page.dispatch_event("#scan-layer-filter", "input")
    error = page.locator("#error-scan-layer")
    error.wait_for(state="visible")
    assert "not a layer number or range" in error.text_content()
    assert page.get_attribute("#scan-layer-filter", "aria-invalid") == "true"
    page.fill("#scan-layer-filter", "1")
    page.dispatch_event("#scan-layer-filter", "input")
    error.wait_for(state="hidden")
    assert page.get_attribute("#scan-layer-filter", "aria-invalid") is None
    layers = page.eval_on_selector_all(
        "#scan-table tbody tr td[data-metric=layer]", "cells => cells.map(c => c.textContent)")
    assert layers and set(layers) == {"1"}
    page.fill("#scan-layer-filter", "")
    page.dispatch_event("#scan-layer-filter", "input")
