"""The audit in the page: a small Llama in Hugging Face's layout and its Q4_K/Q8_0 GGUF (made with
ggml and gguf-py, tests/support/audit_pairs.py) chosen as a user chooses them, audited in the
worker; the JSON download equals `quantcalc audit ORIGINAL QUANTIZED --json -` field for field, the
worst row reads its SQNR and "reproduced", and two unrelated models get a plain message at the
field."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import axe_violations
from tests.support import checkpoints as C

ap = pytest.importorskip("tests.support.audit_pairs")
ROOT = Path(__file__).resolve().parents[2]
AUDIT_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audit")
    arrays, config = ap.hf_llama(folder / "hf", seed=3, layers=2)
    tensors = ap.gguf_tensors(arrays, config)
    types = {name: "q8_0" if ".attn_" in name else "q4_K" for name in tensors}
    ap.write_gguf(folder / "model-Q4_K.gguf", tensors, config, types)
    C.write_safetensors(folder / "unrelated.safetensors",
                        {"encoder.dense.weight": np.ones((64, 64), np.float32)}, "F32")
    return folder


def cli_audit(original, quantized):
    done = subprocess.run([sys.executable, "-m", "quantcalc", "audit", str(original),
                           str(quantized), "--json", "-"], capture_output=True, text=True,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT / "py"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def choose(page, original, quantized):
    page.set_input_files("#audit-original-files", [str(f) for f in original])
    page.set_input_files("#audit-quantized-files", [str(f) for f in quantized])


def test_the_pages_audit_is_the_command_lines_and_rows_read_sqnr_and_reproduced(app, pair,
                                                                              axe_source):
    page = app.page
    before = int(page.evaluate("() => document.body.dataset.audits || 0"))
    choose(page, sorted((pair / "hf").iterdir()), [pair / "model-Q4_K.gguf"])
    page.click("#audit-start")
    page.wait_for_selector(f"body[data-audits='{before + 1}']", state="attached",
                           timeout=AUDIT_TIMEOUT_MS)
    assert "Audited 21 of 21 tensors" in page.text_content("#audit-status")
    with page.expect_download() as info:
        page.click("[data-audit-download=json]")
    page_doc = json.loads(Path(info.value.path()).read_text())
    assert page_doc == cli_audit(pair / "hf", pair / "model-Q4_K.gguf")
    # worst first: the first row is the lowest SQNR, shown as the engine gave it, and reproduced
    first = page.locator("#audit-table tbody tr").first
    lowest = min((r for r in page_doc["tensors"] if isinstance(r["sqnr_db"], float)),
                 key=lambda r: r["sqnr_db"])
    assert first.get_attribute("data-tensor") == lowest["name"]
    sqnr = first.locator("td[data-metric=sqnr_db]")
    assert float(sqnr.get_attribute("data-value")) == lowest["sqnr_db"]
    assert float(sqnr.inner_text()) == pytest.approx(lowest["sqnr_db"], rel=1e-5)  # 6 digits
    assert first.locator("td[data-metric=reproduced]").inner_text() == "yes"
    assert first.locator("td[data-metric=stored_format]").inner_text() == "Q4_K"
    assert first.locator("td[data-metric=original_name]").inner_text() == \
        lowest["original_name"]
    # the figures of audit_figures, and the section as axe sees it
    page.wait_for_selector("#audit-figures figure[data-figure=gain] img", timeout=60_000)
    assert page.locator("#audit-figures figure").count() == 4
    assert "Bits per weight" in page.text_content("#audit-totals")
    assert axe_violations(page, axe_source) == []


def test_two_unrelated_models_get_a_plain_message_at_the_field_and_keep_what_was_chosen(app,
                                                                                     pair):
    page = app.page
    choose(page, [pair / "unrelated.safetensors"], [pair / "model-Q4_K.gguf"])
    page.click("#audit-start")
    error = page.locator("#error-audit-quantized")
    error.wait_for(state="visible", timeout=AUDIT_TIMEOUT_MS)
    assert "has a partner" in error.inner_text() and "one model" in error.inner_text()
    assert page.locator("#error-audit-original").is_hidden()
    # nothing chosen is lost: both sides still named, Audit can run again
    assert "unrelated.safetensors" in page.text_content("#audit-original-info")
    assert "model-Q4_K.gguf" in page.text_content("#audit-quantized-info")
    assert page.locator("#audit-start").is_enabled()


def test_the_audit_split_over_three_workers_is_the_command_lines(browser, server, pair):
    """The page's audit on the scan's worker pool: three engines, one pair per request (batches
    of one byte), the rows put in order and totalled by the page's engine: the JSON is still
    the command line's, field for field."""
    context = browser.new_context(accept_downloads=True)
    context.add_init_script("globalThis.quantcalcTestHooks = {scanWorkers: 3, scanBatchBytes: 1}")
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector("#engine-status[data-state=ready]", timeout=120_000)
    choose(page, sorted((pair / "hf").iterdir()), [pair / "model-Q4_K.gguf"])
    page.click("#audit-start")
    page.wait_for_selector("body[data-audits='1']", state="attached", timeout=AUDIT_TIMEOUT_MS)
    assert "Audited 21 of 21 tensors" in page.text_content("#audit-status")
    workers_used = page.evaluate("() => document.body.dataset.auditWorkers")
    assert int(workers_used) >= 2  # the helpers boot while the page's engine starts
    with page.expect_download() as info:
        page.click("[data-audit-download=json]")
    page_doc = json.loads(Path(info.value.path()).read_text())
    assert page_doc == cli_audit(pair / "hf", pair / "model-Q4_K.gguf")
    context.close()


def test_totals_say_not_measured_for_a_format_without_an_sqnr(app):
    """A format whose tensors are kept as they are (an I64 buffer in a W4A16 checkpoint) has
    sqnr_db null in the JSON: the totals said "SQNR −∞ dB" and "1 tensors"."""
    page = app.page
    texts = page.evaluate("""async () => {
      const base = document.querySelector('script[type=module]').src.replace(/app\\.js$/, '');
      const { renderTotals } = await import(base + 'audit-table.js');
      renderTotals({ totals: { tensors: 3, tensors_measured: 2, tensors_not_paired: 1,
        bytes: 1024, bits_per_value: 4.5, sqnr_db: null, weighted_sqnr_db: null,
        reproduced: { true: 1, false: 0, null: 1 },
        by_format: [{ stored_format: 'I64', tensors: 1, bits_per_value: 64, sqnr_db: null },
                    { stored_format: 'int4 group 128 symmetric', tensors: 2,
                      bits_per_value: 4.125, sqnr_db: 21.3 }] } });
      return [...document.querySelectorAll('#audit-totals tbody tr')].map((r) => r.textContent);
    }""")
    i64 = next(t for t in texts if t.startswith("I64"))
    assert "not measured" in i64 and "∞" not in i64 and "1 tensor," in i64
    assert any("2 tensors, 4.125 bits/value, SQNR 21.3 dB" in t for t in texts)
    whole = next(t for t in texts if t.startswith("SQNR of the whole model"))
    assert whole.endswith("not measured")
