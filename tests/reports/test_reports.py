"""CSV, summary CSV, JSON and PDF reports, and the figures."""

import csv
import io
import json
import math

import numpy as np
import pytest

from quantcalc import Config, analyze
from quantcalc.schema import fields
from quantcalc.reports import figures
from quantcalc.reports import tables as report

EXAMPLE = np.array([-1.25, -0.92, -0.51, -0.10, 0, 0.14, 0.37, 0.79, 1.12, 1.46])


@pytest.fixture(scope="module")
def result():
    return analyze(EXAMPLE, Config(calibration="custom", range_min=-1.5, range_max=1.5,
                                   name="=HYPERLINK(\"x\")"))


def test_per_value_csv_is_rfc4180_and_matches_the_engine(result):
    data = report.per_value_csv(result)
    text = data.decode("utf-8")
    assert text.startswith("index,original,quantized,dequantized,error,clipped\r\n")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 10
    for i, row in enumerate(rows):
        assert int(row["index"]) == i
        assert float(row["original"]) == EXAMPLE[i]
        assert int(row["quantized"]) == result.per_value.codes[i]
        assert float(row["dequantized"]) == result.per_value.dequantized[i]  # round-trips exactly
        assert float(row["error"]) == result.per_value.error[i]
        assert row["clipped"] == "0"


def summary_table(result):
    """{field: value} of the summary CSV, checking each row's label against fields.FIELDS."""
    rows = list(csv.reader(io.StringIO(report.summary_csv(result).decode())))
    assert rows[0] == ["field", "value", "label"]
    for key, _, label in rows[1:]:
        base = key.split("[")[0]
        if base in fields.BY_KEY:
            assert label.startswith(fields.label(base))
    return {key: value for key, value, _ in rows[1:]}


def test_summary_csv_has_every_metric_and_neutralises_formulas(result):
    rows = summary_table(result)
    assert rows["name"] == "'=HYPERLINK(\"x\")"
    summary = result.summary()
    metrics = [f.key for f in fields.FIELDS if f.group == fields.METRIC]
    for key in metrics:
        if summary[key] is not None:
            assert float(rows[key]) == pytest.approx(summary[key])
    # what the format is and what it costs (the CSV used to leave these out)
    assert rows["format"] == "int" and rows["bits_per_value"] == "11.2"  # 8 + 32 / 10
    assert "block_size" not in rows  # None: integers have no blocks
    assert rows["scale"] == repr(1.5 / 127)
    assert rows["q_min"] == "-128"


def test_summary_lists_become_indexed_rows():
    r = analyze(np.random.default_rng(0).standard_normal((3, 4)), Config(granularity="channel"))
    rows = summary_table(r)
    assert {"scale[0]", "scale[1]", "scale[2]", "zero_point[2]"} <= rows.keys()


def test_json_summary_spells_infinity_as_a_string():
    r = analyze(np.zeros(3), Config())
    summary = json.loads(report.summary_json(r))
    assert summary["sqnr_db"] == "inf"
    assert {"name", "count", "bits", "mode", "rounding", "granularity", "q_min", "q_max",
            "real_min", "real_max", "scale", "zero_point", "mse", "rmse", "mae",
            "max_abs_error", "sqnr_db", "rel_rmse", "clip_count", "clip_rate"} <= summary.keys()


@pytest.mark.slow
def test_pdf_is_a_pdf_with_the_name_and_is_reproducible(result):
    first, second = report.pdf(result), report.pdf(result)
    assert first.startswith(b"%PDF-") and first.rstrip().endswith(b"%%EOF")
    assert first == second
    assert b"quantcalc report: =HYPERLINK" in first  # the Title in the document info
    assert len(first) > 10_000


@pytest.mark.parametrize("n", [10, 5000])
def test_figures_render_with_labelled_axes(n):
    x = np.random.default_rng(n).standard_normal(n)
    r = analyze(x, Config(bits=3, calibration="percentile", percentile=99))
    built = figures.build(r)
    assert set(built) == set(figures.FIGURE_NAMES)
    for name, fig in built.items():
        ax = fig.axes[0]
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title(), name
    svgs = figures.render(r, "svg")
    assert all(svg.startswith(b"<?xml") and b"<svg" in svg for svg in svgs.values())
    assert figures.render(r, "svg") == svgs  # no dates or random ids
    png = figures.to_bytes(built["values"], "png")
    assert png.startswith(b"\x89PNG")


def test_format_number():
    assert report.format_number(math.inf) == "inf"
    assert report.format_number(0.1) == "0.1"
    assert report.format_number(np.int64(-3)) == "-3"
    assert report.format_number(True) == "true"


@pytest.mark.parametrize("name", __import__("quantcalc.schema.registry", fromlist=["NAMES"]).NAMES)
def test_every_format_draws_its_figures(name):
    # the transfer and histogram figures quantize a sweep with the first block's parameters;
    # every scheme must be able to (llama.cpp's types failed to once)
    x = np.random.default_rng(3).standard_normal((4, 256))
    r = analyze(x, Config(format=name))
    rendered = figures.render(r, "svg")
    assert set(rendered) == set(figures.FIGURE_NAMES)
    assert all(svg.startswith(b"<?xml") for svg in rendered.values())


@pytest.fixture
def dark_page():
    figures.set_theme("dark")
    yield
    figures.set_theme("light")


def _svg_colours(svg: bytes) -> set:
    import re
    return {c.lower() for c in re.findall(rb"#[0-9a-fA-F]{6}", svg)}


@pytest.mark.slow
def test_a_dark_page_gets_dark_figures_and_paper_stays_light(result, dark_page):
    dark = figures.render(result, "svg")
    background = figures.DARK_BACKGROUND.encode()
    palette = figures.PALETTES["dark"]
    for name, svg in dark.items():
        colours = _svg_colours(svg)
        assert background in colours, name
        assert b"fill: #ffffff" not in svg, name  # no white figure or legend on a dark page
    assert palette["original"].encode() in _svg_colours(dark["values"])
    assert palette["reconstructed"].encode() in _svg_colours(dark["values"])
    # the PDF report is drawn on paper: identical to the one made for a light page
    on_dark_page = report.pdf(result)
    figures.set_theme("light")
    assert report.pdf(result) == on_dark_page
    light = figures.render(result, "svg")
    assert all(background not in _svg_colours(svg) for svg in light.values())
    with pytest.raises(ValueError):
        figures.set_theme("sepia")


def test_the_page_can_ask_for_either_theme():
    from quantcalc import api
    assert api.set_figure_theme("dark") == {"theme": "dark"}
    assert figures.ink("original") == figures.PALETTES["dark"]["original"]
    assert api.set_figure_theme("light") == {"theme": "light"}
    assert api.set_figure_theme("sepia")["error"]["field"] == "theme"


def _pages_of(make_pdf, monkeypatch):
    """The text on each page a PDF report saves, and the page sizes in inches."""
    from matplotlib.backends.backend_pdf import PdfPages
    saved = []
    original = PdfPages.savefig

    def record(self, figure=None, **kwargs):
        from matplotlib.table import Cell
        from matplotlib.text import Text
        texts = [t.get_text() for t in figure.findobj(Text)]
        texts += [c.get_text().get_text() for c in figure.findobj(Cell)]  # a cell's text is
        texts = [t for t in texts if t]                                      # not its child
        saved.append((tuple(round(v, 2) for v in figure.get_size_inches()), texts))
        return original(self, figure, **kwargs)

    monkeypatch.setattr(PdfPages, "savefig", record)
    data = make_pdf()
    assert data.startswith(b"%PDF-")
    return saved


@pytest.mark.slow
def test_the_pdf_report_is_a4_with_a_rounded_first_page_and_a_paginated_table(monkeypatch):
    x = np.random.default_rng(0).standard_t(4, (8, 100))
    r = analyze(x, Config(bits=4, granularity="channel", calibration="percentile",
                          percentile=99, name="w"))
    pages = _pages_of(lambda: report.pdf(r), monkeypatch)
    assert {size for size, _ in pages} == {(8.27, 11.69)}  # A4 throughout
    first = pages[0][1]
    for heading in ("Quantization report: w", "Verdict", "Settings", "Results"):
        assert heading in first
    s = r.summary()
    sqnr = float(f"{s['sqnr_db']:.4g}")
    assert f"{sqnr:g} dB" in first  # rounded as the page shows it
    assert "Relative RMSE" in first and "8 channels: " in " ".join(first)
    assert not [t for t in first if "_" in t and "(" not in t]  # no snake_case keys
    assert not [t for t in first if len(t) > 12 and t.replace(".", "").replace("-", "").isdigit()]
    # four figures, two to a page, then the per-value table: 520 rows, 44 to a page
    table_pages = [texts for _, texts in pages if "Index" in texts]
    assert len(pages) == 1 + 2 + len(table_pages)
    assert len(table_pages) == math.ceil(min(report.PDF_TABLE_ROWS, 800) / 44)
    for texts in table_pages:
        assert texts.count("Index") == 1 and "Code q" in texts  # the header on every page
    assert "519" in table_pages[-1] and "520" not in table_pages[-1]


def test_every_pdf_is_a4(monkeypatch):
    from quantcalc.engine.compare import PRESETS, compare
    x = np.random.default_rng(1).standard_normal((8, 256)).astype(np.float32)
    rows = compare(x, PRESETS["common"])
    pages = _pages_of(lambda: report.compare_pdf(rows, None, "t"), monkeypatch)
    assert {size for size, _ in pages} == {(8.27, 11.69)} and len(pages) == 2


def test_json_spells_infinities_once_and_reads_them_back_only_under_number_keys():
    doc = {"sqnr_db": math.inf, "low": -math.inf, "name": "inf", "x": np.float32(1.5)}
    text = report.json_text(doc)
    assert json.loads(text) == {"sqnr_db": "inf", "low": "-inf", "name": "inf", "x": 1.5}
    assert report.from_jsonable(json.loads(text), ["sqnr_db", "low"]) == {**doc, "x": 1.5}
    assert report.to_jsonable(doc)["sqnr_db"] == math.inf  # in memory, numbers stay numbers
    # from the page, whole numbers come back as ints (JavaScript has one number type): floats
    # again under number keys only, booleans and other keys untouched
    back = report.from_jsonable({"sqnr_db": 6, "parameters": 6, "flag": True, "rows": [
        {"low": 2, "name": 3}]}, ["sqnr_db", "low", "flag"])
    assert back == {"sqnr_db": 6.0, "parameters": 6, "flag": True, "rows": [{"low": 2.0,
                                                                             "name": 3}]}
    assert isinstance(back["sqnr_db"], float) and isinstance(back["parameters"], int)
    assert back["flag"] is True
