"""The built page in real Chromium: what a user clicks and reads equals the CPython engine."""

import csv
import io
import json
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from conftest import ROOT
from helpers import (assert_same_numbers, calculate, engine_summary, field_error, fill,
                     shown_metrics)

EXAMPLE_VALUES = "-1.25, -0.92, -0.51, -0.10, 0, 0.14, 0.37, 0.79, 1.12, 1.46"
EXAMPLE_CONFIG = {"name": "example", "bits": 8, "mode": "symmetric", "rounding": "half-even",
                  "calibration": "custom", "range_min": -1.5, "range_max": 1.5}
BASE = {"name": "t", "bits": "8", "mode": "symmetric", "narrow_range": False,
        "rounding": "half-even", "calibration": "minmax", "granularity": "tensor"}
DATA = ", ".join(f"{v:.6g}" for v in np.random.default_rng(11).standard_t(4, 300))


def page_config(**changes):
    config = {**BASE, **changes}
    return {k: v for k, v in config.items()}


def run(app, text=DATA, **changes):
    """Fill the form as a user would, press Calculate, return the engine's expected summary."""
    page = app.page
    if page.locator("#clear-file").is_visible():
        page.click("#clear-file")
    config = page_config(**changes)
    fill(page, values=text, **config)
    calculate(page)
    return engine_summary(config, {"text": text})


def test_example_button_gives_the_engines_numbers_and_the_cli_agrees(app):
    page = app.page
    page.click("#use-example")
    page.wait_for_selector("[data-metric=scale]")
    assert page.input_value("#values") == EXAMPLE_VALUES
    summary = engine_summary(EXAMPLE_CONFIG, {"text": EXAMPLE_VALUES})
    assert_same_numbers(page, summary)
    assert shown_metrics(page)["scale"] == 1.5 / 127
    cli = subprocess.run(
        [sys.executable, "-m", "quantcalc", "analyze", "--values", EXAMPLE_VALUES, "--range",
         "-1.5", "1.5", "--name", "example", "--json", "-"],
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "py")})
    assert_same_numbers(page, json.loads(cli.stdout))
    # the per-value table shows the codes of the hand-computed example
    codes = page.locator("#per-value tbody tr td:nth-child(3)").all_inner_texts()
    assert codes == ["-106", "-78", "-43", "-8", "0", "12", "31", "67", "95", "124"]


def test_example_data_table_rows_are_what_the_engine_computes(app):
    table = app.page.locator("#example-table")
    headings = table.locator("thead th").all_inner_texts()
    assert headings[:5] == ["Sample", "Original Value", "Suggested Range", "Bit Depth", "Mode"]
    assert table.locator("caption").inner_text().startswith(
        "This sample shows typical activation values before quantization")
    rows = [[c.replace("−", "-") for c in row.locator("td").all_inner_texts()]
            for row in table.locator("tbody tr").all()]
    assert [row[:5] for row in rows] == [
        [str(i + 1), value, "-1.50 to 1.50", "8", "Symmetric Signed"]
        for i, value in enumerate(["-1.25", "-0.92", "0.14", "0.79", "1.46"])]
    values = [float(row[1]) for row in rows]
    from quantcalc import api
    reply = api.analyze(EXAMPLE_CONFIG, {"text": ", ".join(map(str, values))})
    assert reply["summary"]["scale"] == 1.5 / 127
    pv = reply["per_value"]
    for row, value, code, recon, error in zip(rows, values, pv["codes"], pv["dequantized"],
                                              pv["error"]):
        assert float(row[5]) == pytest.approx(value / (1.5 / 127), abs=5e-4)
        assert int(row[6]) == code
        assert float(row[7]) == pytest.approx(recon, abs=5e-7)
        assert float(row[8]) == pytest.approx(error, abs=5e-7)


@pytest.mark.parametrize("changes", [
    {"bits": "4"},
    {"bits": "16"},
    {"mode": "asymmetric"},
    {"narrow_range": True},
    {"rounding": "floor"},
    {"rounding": "half-away"},
    {"rounding": "stochastic", "seed": "5"},
    {"calibration": "percentile", "percentile": "99"},
    {"calibration": "mse", "bits": "4"},
    {"calibration": "entropy"},
    {"calibration": "custom", "range_min": "-1", "range_max": "1"},
    {"granularity": "group", "group_size": "64"},
])
def test_each_control_gives_the_engines_result(app, changes):
    summary = run(app, **changes)
    assert_same_numbers(app.page, summary)


def test_controls_change_the_result_as_they_should(app):
    page = app.page
    base = run(app)
    four = run(app, bits="4")
    assert four["q_max"] == 7 and four["sqnr_db"] < base["sqnr_db"] - 20
    asym = run(app, mode="asymmetric")
    assert shown_metrics(page)["q_min"] == 0 and asym["zero_point"] != 0
    narrow = run(app, narrow_range=True)
    assert shown_metrics(page)["q_min"] == -127 and narrow["q_min"] == -127
    clipped = run(app, calibration="custom", range_min="-1", range_max="1")
    assert shown_metrics(page)["clip_count"] == clipped["clip_count"] > 0
    assert "clipped" in page.locator("#notes").inner_text()
    assert page.locator("#per-value tr.qc-clipped").count() > 0


def test_per_channel_from_a_pasted_matrix(app):
    text = "[[0.1, -0.2, 0.3], [10, -20, 30]]"
    summary = run(app, text=text, granularity="channel", axis="0")
    assert_same_numbers(app.page, summary)
    card = app.page.locator("[data-metric=scale] .qc-metric-value").inner_text()
    assert card == "2 channels"
    assert shown_metrics(app.page)["scale"] == [0.3 / 127, 30 / 127]


def test_paging_through_a_long_table(app):
    page = app.page
    run(app, text=" ".join(str(i) for i in range(120)))
    assert page.locator("#per-value tbody tr").count() == 50
    assert page.inner_text("#page-info") == "Page 1 of 3"
    page.click("#page-next")
    page.click("#page-next")
    assert page.locator("#per-value tbody tr").count() == 20
    assert page.locator("#per-value tbody tr td").first.inner_text() == "100"
    assert page.locator("#page-next").is_disabled()


def test_figures_are_drawn_with_text_alternatives(app):
    page = app.page
    run(app)
    page.wait_for_selector("[data-figure=transfer] img", timeout=120_000)
    for name in ("values", "error", "histogram", "transfer"):
        img = page.locator(f"[data-figure={name}] img")
        img.evaluate("i => i.decode()")
        assert img.evaluate("i => i.naturalWidth") > 300
        assert len(img.get_attribute("alt")) > 30


def save(download, tmp_path):
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    return path


def test_downloads(app, tmp_path):
    page = app.page
    summary = run(app, name="layer 1/weights")
    with page.expect_download() as info:
        page.click("[data-download=csv]")
    path = save(info.value, tmp_path)
    assert path.name == "layer_1_weights_values.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    from quantcalc import api
    pv = api.analyze(page_config(name="layer 1/weights"), {"text": DATA})["per_value"]
    assert len(rows) == summary["count"] == 300
    for row, code, recon in zip(rows, pv["codes"], pv["dequantized"]):
        assert int(row["quantized"]) == code and float(row["dequantized"]) == recon
    with page.expect_download() as info:
        page.click("[data-download=summary_csv]")
    summary_rows = {key: value for key, value, _ in csv.reader(io.StringIO(
        save(info.value, tmp_path).read_text()))}
    assert summary_rows["format"] == "int" and "bits_per_value" in summary_rows
    for key in ("mse", "rmse", "mae", "max_abs_error", "sqnr_db", "clip_rate", "bits_per_value"):
        assert float(summary_rows[key]) == summary[key]
    with page.expect_download(timeout=120_000) as info:
        page.click("[data-download=pdf]")
    pdf = save(info.value, tmp_path).read_bytes()
    assert pdf.startswith(b"%PDF") and b"layer 1/weights" in pdf


def test_bad_input_is_reported_at_its_field_and_kept(app):
    page = app.page
    cases = [
        (dict(values="1, 2, abc, 4"), "values", "'abc'"),
        (dict(values="   "), "values", "enter some sample values"),
        (dict(values="1 2", calibration="custom", range_min="2", range_max="1"), "range_min",
         "greater than"),
        (dict(values="1 2", bits="20"), "bits", "between 2 and 16"),
        (dict(values="1 2", calibration="custom", range_min="x", range_max="1"), "range_min",
         "must be a number"),
    ]
    for fields, field, words in cases:
        config = {**BASE, **fields}
        fill(page, **config)
        calculate(page)
        assert words in (field_error(page, field) or ""), (fields, field_error(page, field))
        assert page.locator(f"#{field}").get_attribute("aria-invalid") == "true"
        assert page.input_value("#values") == fields["values"]  # nothing typed is lost
        if "range_min" in fields:
            assert page.input_value("#range_min") == fields["range_min"]
    run(app)  # and a good input clears the errors
    assert page.locator(".qc-error:visible").count() == 0


def test_security_headers_and_origin(server):
    with urllib.request.urlopen(server.url) as response:
        csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp and "unsafe-eval'" not in csp.replace(
        "wasm-unsafe-eval'", "")
    assert "'unsafe-inline'" not in csp
    with urllib.request.urlopen(server.url + "pyodide/pyodide.asm.wasm") as response:
        assert response.headers["Content-Type"] == "application/wasm"
