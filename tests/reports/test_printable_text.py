"""Control characters in names that come from files (a tensor named "a\\x00b\\x1b[31m") reach
figures and PDFs in their printable form (quantcalc.errors.printable), never raw: matplotlib would
warn "Glyph 0 missing from current font" on stderr and draw boxes (issue 26, second round)."""

import warnings

import numpy as np
import pytest

from quantcalc import Config, analyze
from quantcalc.errors import printable
from quantcalc.readers import checkpoint
from quantcalc.reports import figures, pdf_pages
from quantcalc.reports import tables as report
from quantcalc.scan import figures as scan_figures
from quantcalc.scan import model_scan as scan
from quantcalc.scan import report as scan_report
from tests.support import checkpoints as C

HOSTILE = "a\x00b\x1b[31m\u202eevil\x7f"


def _strict():
    """Every warning an error; a Glyph-missing warning would fail the test."""
    context = warnings.catch_warnings()
    context.__enter__()
    warnings.simplefilter("error")
    return context


def test_pdf_page_texts_are_drawn_in_printable_form():
    page, y = pdf_pages.new_page(f"Report: {HOSTILE}", f"sub {HOSTILE}")
    y = pdf_pages.heading(page, y, HOSTILE)
    pdf_pages.text(page, y, [f"note {HOSTILE}"])
    pdf_pages.table(page, y - 0.1, [(HOSTILE, 1)], ("name", HOSTILE))
    from matplotlib.text import Text

    texts = [t.get_text() for t in page.findobj(Text)]
    assert any(printable(HOSTILE) in t for t in texts)
    assert not any(ch in t for t in texts for ch in "\x00\x1b\u202e\x7f")


def test_an_analysis_pdf_of_a_tensor_named_with_control_characters_warns_nothing(capfd):
    result = analyze(np.linspace(-1, 1, 64), Config(name=HOSTILE))
    context = _strict()
    try:
        data = report.pdf(result)
        svgs = figures.render(result, "svg")
    finally:
        context.__exit__(None, None, None)
    assert data[:5] == b"%PDF-" and len(svgs) == 4
    assert "Glyph" not in capfd.readouterr().err


def test_figures_show_the_printable_form_of_any_text():
    result = analyze(np.linspace(-1, 1, 64), Config())
    fig = figures.build(result, ["values"])["values"]
    fig.axes[0].set_title(HOSTILE)
    context = _strict()
    try:
        svg = figures.to_bytes(fig, "svg").decode()
    finally:
        context.__exit__(None, None, None)
    assert fig.axes[0].get_title() == printable(HOSTILE)
    assert "\x1b" not in svg and "\x00" not in svg


@pytest.fixture
def hostile_scan(tmp_path):
    arrays = {HOSTILE: np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32),
              "model.layers.0.mlp.down_proj.weight\x1b[2J":
                  np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)}
    C.write_safetensors(tmp_path / "m.safetensors", arrays)
    return scan.scan(checkpoint.open_checkpoint([tmp_path / "m.safetensors"]),
                     scan.formats_from_specs(["q8_0", "format=int bits=4"]))


def test_a_scan_pdf_and_figures_of_tensors_named_with_control_characters_warn_nothing(
        hostile_scan, capfd):
    assert hostile_scan["tensors"][0]["name"] == HOSTILE
    context = _strict()
    try:
        pdf = scan_report.pdf_bytes(hostile_scan)
        rendered = scan_figures.render(hostile_scan, "svg")
    finally:
        context.__exit__(None, None, None)
    assert pdf[:5] == b"%PDF-" and len(rendered) == 4
    assert "Glyph" not in capfd.readouterr().err
