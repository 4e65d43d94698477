"""Framework conventions on the page: pick one, read the results and the "Why do they differ?"
table as a user does, and check them against the CPython engine's numbers for the same values;
a convention that does not offer the settings shows its reason at its control."""

from quantcalc import api
from tests.e2e.helpers import assert_same_numbers, calculate, engine_summary, fill

# two rows of values with a tie under PyTorch's scale 1 (amax 127.5) and a tiny one
TEXT = "[[127.5, 0.5, 2.5, -1.5, 60.25], [3.75, -127.5, 1e-6, 0.0, 99.5]]"
SOURCE = {"text": TEXT}


def _table(page):
    page.wait_for_selector("#conventions-table:not([hidden])")
    rows = {}
    for tr in page.locator("#conventions-table tbody tr").all():
        cells = {td.get_attribute("data-field"): td for td in tr.locator("td").all()}
        rows[tr.get_attribute("data-convention")] = {
            key: (td.get_attribute("data-value"), td.inner_text()) for key, td in cells.items()}
    return rows


def _run(page, **settings):
    if page.locator("#clear-file").is_visible():
        page.click("#clear-file")
    fill(page, values=TEXT, **settings)
    calculate(page)


def test_the_table_equals_the_engines(app):
    page = app.page
    config = {"format": "int", "bits": 8, "mode": "symmetric", "calibration": "minmax",
              "granularity": "tensor", "convention": "pytorch"}
    _run(page, **config)
    assert_same_numbers(page, engine_summary(config, SOURCE))
    assert "PyTorch convention" in page.locator("#notes").inner_text()
    assert "convention=pytorch" in page.url  # the link carries it
    expected = api.conventions(config, SOURCE)
    shown = _table(page)
    assert list(shown) == [row["convention"] for row in expected["rows"]]
    for row in expected["rows"]:
        cells = shown[row["convention"]]
        if "refused" in row:
            assert cells["refused"][1] == f"Not offered: {row['refused']}"
            continue
        assert float(cells["scale"][0]) == row["scale"]
        assert int(cells["zero_point"][0]) == row["zero_point"]
        assert int(cells["codes_differ"][0]) == row["codes_differ"]
        assert float(cells["sqnr_db"][0]) == row["sqnr_db"]
    pytorch = shown["pytorch"]
    assert int(pytorch["codes_differ"][0]) > 0 and "scale rule" in pytorch["why"][1]
    assert "narrow grid" in shown["onnxruntime"]["refused"][1]


def test_a_refused_combination_shows_its_reason_at_the_control(app):
    page = app.page
    _run(page, format="int", bits=8, mode="asymmetric", calibration="minmax",
         granularity="tensor", convention="tensorrt")
    message = page.locator("#error-convention")
    assert message.is_visible()
    assert "TensorRT quantizes integers symmetrically" in message.inner_text()
    assert page.locator("#convention").get_attribute("aria-invalid") == "true"
    _run(page, mode="symmetric", convention="tensorrt")  # fixed: the message goes
    assert not page.locator("#error-convention").is_visible()
    assert_same_numbers(page, engine_summary(
        {"format": "int", "bits": 8, "mode": "symmetric", "calibration": "minmax",
         "granularity": "tensor", "convention": "tensorrt"}, SOURCE))


def test_mse_under_pytorch_is_histogramobservers_search(app):
    """calibration=mse under PyTorch is HistogramObserver: offered, its range chosen by the L2
    search (the notes say so), and the table's PyTorch row holds its scale, not a refusal."""
    page = app.page
    config = {"format": "int", "bits": 8, "mode": "asymmetric", "calibration": "mse",
              "granularity": "tensor", "convention": "pytorch"}
    _run(page, **config)
    assert not page.locator("#error-convention").is_visible()
    assert_same_numbers(page, engine_summary(config, SOURCE))
    assert "HistogramObserver" in page.locator("#notes").inner_text()
    expected = {row["convention"]: row for row in api.conventions(config, SOURCE)["rows"]}
    shown = _table(page)
    assert "refused" not in expected["pytorch"] and "refused" not in shown["pytorch"]
    assert float(shown["pytorch"]["scale"][0]) == expected["pytorch"]["scale"]
    assert int(shown["pytorch"]["zero_point"][0]) == expected["pytorch"]["zero_point"]
    assert int(shown["pytorch"]["codes_differ"][0]) == expected["pytorch"]["codes_differ"]
    assert "MSE" in shown["onnxruntime"]["refused"][1]  # ONNX Runtime still has none


def test_fp8_per_channel_under_pytorch_is_torchaos_rowwise(app):
    """FP8 E4M3 per channel under PyTorch is torchao's rowwise scaling: offered, the notes say
    the scales are powers of two, and the table's PyTorch row shows the engine's scale and
    codes that differ from exact, with a reason."""
    page = app.page
    config = {"format": "fp8_e4m3", "calibration": "minmax", "granularity": "channel",
              "convention": "pytorch"}
    _run(page, **config)
    assert not page.locator("#error-convention").is_visible()
    assert_same_numbers(page, engine_summary(config, SOURCE))
    assert "rounded down to a power of two" in page.locator("#notes").inner_text()
    expected = {row["convention"]: row for row in api.conventions(config, SOURCE)["rows"]}
    shown = _table(page)
    assert "refused" not in expected["pytorch"] and "refused" not in shown["pytorch"]
    assert float(shown["pytorch"]["scale"][0]) == expected["pytorch"]["scale"] == 0.5
    assert int(shown["pytorch"]["codes_differ"][0]) == expected["pytorch"]["codes_differ"] > 0
    assert "scale rule" in shown["pytorch"]["why"][1]
