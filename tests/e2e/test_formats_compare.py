"""Number formats and the compare view in the page, against the CPython engine."""

import csv
import io

import numpy as np
import pytest

from helpers import assert_same_numbers, calculate, engine_summary, fill, shown_metrics
from quantcalc.engine.compare import PRESETS, compare

MATRIX = np.random.default_rng(5).standard_normal((4, 64))
TEXT = "[" + ", ".join("[" + ", ".join(f"{v:.5g}" for v in row) + "]" for row in MATRIX) + "]"
BASE = {"name": "m", "mode": "symmetric", "narrow_range": False, "rounding": "half-even",
        "calibration": "minmax", "granularity": "tensor"}


@pytest.mark.parametrize("fmt", ["fp8_e4m3", "fp6_e2m3", "fp4_e2m1", "nf4", "mxfp4", "nvfp4",
                                 "q4_0", "q8_0"])
def test_each_format_gives_the_engines_result_and_says_what_it_is(app, fmt):
    page = app.page
    fields = {**BASE, "format": fmt}
    fill(page, values=TEXT, **fields)
    calculate(page)
    summary = engine_summary({k: v for k, v in fields.items() if k in ("name", "format")},
                             {"text": TEXT})
    assert_same_numbers(page, summary)
    assert shown_metrics(page)["bits_per_value"] == summary["bits_per_value"]
    # the heading says what the format is (it said "8-bit symmetric" for every format)
    heading = page.inner_text("#results-name")
    assert summary["description"] in heading and "8-bit symmetric" not in heading
    # the bit depth shows the format's element bits, disabled, with the reason
    assert page.is_disabled("#bits")
    assert page.input_value("#bits") == str(summary["bits"])
    assert f"{summary['bits']}-bit elements" in page.inner_text("#off-bits")
    assert page.is_disabled("#mode") and "symmetric by definition" in page.inner_text("#off-mode")
    fill(page, format="int")
    assert page.input_value("#bits") == "8" and not page.is_disabled("#bits")  # the user's again


def test_the_form_offers_exactly_the_engines_choices(app):
    # built from the generated schema.js: the select lists are the registry's and the schema's
    from quantcalc.schema import fields
    from quantcalc.schema import settings
    page = app.page
    for key in ("format", "mode", "rounding", "calibration", "granularity"):
        options = page.locator(f"#{key} option").evaluate_all("os => os.map(o => o.value)")
        assert tuple(options) == settings.BY_KEY[key].values, key
    headings = page.locator("#compare-table thead th").all_inner_texts()
    assert headings[1:-1] == [fields.heading(k) for k in fields.COMPARE_KEYS]


def test_controls_follow_the_format(app):
    page = app.page
    fill(page, **{**BASE, "format": "q4_0"})
    for key in ("mode", "rounding", "calibration", "granularity"):
        assert page.is_disabled(f"#{key}"), key
        assert "Q4_0" in page.inner_text(f"#off-{key}"), key
    # what the format does, not the user's kept "Per tensor" / "Half to even"
    shown = "s => s.selectedOptions[0].textContent"
    assert page.eval_on_selector("#granularity", shown) == "Blocks of 32"
    assert page.eval_on_selector("#rounding", shown) == "The format's own rule"
    assert page.input_value("#mode") == "symmetric"  # Q4_0's fixed value, shown as such
    fill(page, format="q4_k")
    assert page.eval_on_selector("#mode", shown) == "Asymmetric (a scale and a min)"
    assert page.eval_on_selector("#granularity", shown) == "Blocks of 32"
    fill(page, format="q4_0")
    assert page.input_value("#mode") == "symmetric"
    assert page.locator("#mode option[data-instead]").count() == 0
    assert page.is_hidden("#narrow_range")
    fill(page, format="fp8_e4m3")
    assert not page.is_disabled("#rounding") and not page.is_disabled("#calibration")
    # entropy calibration is integer-only: offered, but not selectable, for FP8
    assert page.locator("#calibration option[value=entropy]").is_disabled()
    fill(page, format="nf4")
    assert page.is_visible("#block_size") and page.get_attribute("#block_size", "placeholder") == "64"
    fill(page, format="int")
    assert page.is_hidden("#block_size") and not page.is_disabled("#mode")
    # the user's choices are back, and the lists are the engine's again
    assert page.input_value("#granularity") == BASE["granularity"]
    assert page.input_value("#rounding") == BASE["rounding"]
    assert page.locator("#granularity option[data-instead]").count() == 0


def test_compare_view(app, tmp_path):
    page = app.page
    fill(page, values=TEXT, **BASE)
    page.wait_for_selector("#compare-configs input")
    page.fill("#compare-extra", "format=int bits=6")
    before = int(page.evaluate("document.body.dataset.comparisons || 0"))
    page.click("#compare-run")
    page.wait_for_selector(f"body[data-comparisons='{before + 1}']", state="attached")
    from quantcalc import api
    expected = compare(api.load({"text": TEXT}), PRESETS["common"] + ["format=int bits=6"], "m")
    rows = page.locator("#compare-table tbody tr").all()
    assert [r.get_attribute("data-label") for r in rows] == [e["label"] for e in expected]
    for row, want in zip(rows, expected):
        cell = row.locator("[data-metric=sqnr_db]")
        assert float(cell.get_attribute("data-value")) == want["sqnr_db"]
        assert (row.locator("td").last.inner_text() == "★") == want["pareto"]
    page.wait_for_selector("#compare-figures [data-figure=sweep] img", timeout=120_000)
    assert page.locator("#compare-figures [data-figure=tradeoff] img").count() == 1
    with page.expect_download() as info:
        page.click("[data-compare-download=csv]")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.name == "m_comparison.csv"
    table = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [r["label"] for r in table] == [e["label"] for e in expected]
    with page.expect_download(timeout=120_000) as info:
        page.click("[data-compare-download=pdf]")
    info.value.save_as(tmp_path / "c.pdf")
    assert (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")


WIDE = np.random.default_rng(9).standard_t(4, (4, 512))
WIDE_TEXT = "[" + ", ".join("[" + ", ".join(f"{v:.5g}" for v in row) + "]" for row in WIDE) + "]"


@pytest.mark.parametrize("fmt", ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q4_1", "q5_0", "q5_1",
                                 "iq4_nl", "iq4_xs", "fp8_t128", "fp8_b128"])
def test_new_formats_in_the_page_equal_the_engine(app, fmt):
    # the CPython engine equals ggml bit for bit (tests/formats/test_ggml_types.py) and DeepSeek's
    # float32 FP8 arithmetic (test_block_fp8.py); the page's Pyodide must give the same numbers
    page = app.page
    fill(page, values=WIDE_TEXT, name="m", format=fmt)
    calculate(page)
    summary = engine_summary({"name": "m", "format": fmt}, {"text": WIDE_TEXT})
    assert_same_numbers(page, summary)
    assert ("DeepSeek" if fmt.startswith("fp8") else "GGUF") in page.inner_text("#results-name")
    fill(page, format="int")


def test_the_llama_cpp_preset_and_skipped_rows(app):
    page = app.page
    fill(page, values=WIDE_TEXT, name="m", format="int")
    page.wait_for_selector("#compare-configs input")
    page.select_option("#compare-preset", "llama.cpp")
    page.fill("#compare-extra", "")
    before = int(page.evaluate("document.body.dataset.comparisons || 0"))
    page.click("#compare-run")
    page.wait_for_selector(f"body[data-comparisons='{before + 1}']", state="attached")
    from quantcalc import api
    expected = compare(api.load({"text": WIDE_TEXT}), PRESETS["llama.cpp"], "m")
    labels = [r.get_attribute("data-label") for r in page.locator("#compare-table tbody tr").all()]
    assert labels == [e["label"] for e in expected] and "Q4_K" in labels
    # 64 values: whole blocks of 32 but not super-blocks of 256: K-quants skipped, with why
    fill(page, values=" ".join(str(v) for v in range(64)))
    page.click("#compare-run")
    page.wait_for_selector(f"body[data-comparisons='{before + 2}']", state="attached")
    skipped = page.inner_text("#compare-skipped")
    assert "Skipped Q4_K" in skipped and "multiple of 256" in skipped and "Q5_1" in skipped
    assert page.locator("#compare-table tbody tr").count() == 6  # Q8_0, Q5_0/1, Q4_0/1, IQ4_NL
    page.select_option("#compare-preset", "common")


def test_an_importance_matrix_changes_the_k_quant_search_as_in_the_engine(app, tmp_path):
    import struct
    page = app.page
    assert page.is_hidden("#imatrix-choice")  # integers take no importance matrix
    weights = np.random.default_rng(2).standard_normal((4, 512)).astype(np.float32)
    npy = io.BytesIO()
    np.save(npy, weights)
    sums = np.random.default_rng(3).uniform(0.5, 20, 512).astype(np.float32)
    name = b"blk.0.ffn_gate.weight"
    legacy = struct.pack("<i", 2) + struct.pack("<i", 7) + b"other.w" + struct.pack("<ii", 1, 4) \
        + np.ones(4, np.float32).tobytes() + struct.pack("<i", len(name)) + name \
        + struct.pack("<ii", 4, 512) + sums.tobytes()
    page.set_input_files("#file", files=[{"name": "w.npy", "mimeType": "application/octet-stream",
                                          "buffer": npy.getvalue()}])
    fill(page, format="q4_k", name="w")
    page.wait_for_selector("#imatrix-choice:visible")
    page.set_input_files("#imatrix", files=[{"name": "ffn.dat", "mimeType": "application/octet-stream",
                                             "buffer": legacy}])
    page.wait_for_selector("#imatrix-entries:visible")
    assert "2 entries" in page.inner_text("#imatrix-info")
    page.select_option("#imatrix-entry", name.decode())
    calculate(page)
    source = {"file_name": "w.npy", "file_bytes": npy.getvalue(),
              "imatrix": {"file_name": "ffn.dat", "file_bytes": legacy, "entry": name.decode()}}
    summary = engine_summary({"name": "w", "format": "q4_k"}, source)
    assert summary["imatrix"] is True
    assert_same_numbers(page, summary)
    plain = engine_summary({"name": "w", "format": "q4_k"},
                           {"file_name": "w.npy", "file_bytes": npy.getvalue()})
    assert plain["mse"] != summary["mse"]  # the weights did change the search
    page.click("#clear-imatrix")
    page.click("#clear-file")
    fill(page, format="int")
