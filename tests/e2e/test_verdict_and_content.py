"""The page as a new user reads it: the seed's sections, the verdict and the hints."""

import numpy as np
import pytest

from helpers import calculate, engine_summary, fill
from quantcalc import api
from quantcalc.schema import grades

INTRO = ("Test quantization settings using custom tensors and ranges. Review errors, clipping, "
         "and signal quality instantly. Find efficient precision tradeoffs for leaner, faster "
         "inference pipelines.")
OUTLIER = np.random.default_rng(5).standard_normal(3000).round(4)
OUTLIER[17] = 15.0
OUTLIER_TEXT = ", ".join(f"{v:g}" for v in OUTLIER)


def squash(text):
    return " ".join(text.split())


def test_the_seeds_sections_are_all_there(app):
    page = app.page
    assert page.locator("h1").inner_text().startswith("Quantization Error Calculator")
    assert page.title().startswith("Quantization Error Calculator")
    assert squash(page.locator(".qc-intro").first.inner_text()) == INTRO
    parts = page.locator(".qc-formulas > li h3").all_inner_texts()
    assert parts == ["Scale", "Zero-Point", "Quantization", "Dequantization", "Error Metrics"]
    steps = page.locator(".qc-steps > li").all_inner_texts()
    assert len(steps) == 8
    for step, words in zip(steps, ["name", "bit depth", "symmetric", "rounding", "custom range",
                                   "Paste", "Calculate", "Download"]):
        assert words in step
    questions = page.locator("#faq-title ~ details summary").all_inner_texts()
    assert len(questions) == 9  # with "What do the scan's amax/std, kurtosis, ... mean?"
    assert "When should I use symmetric quantization?" in questions
    assert "When should I use asymmetric quantization?" in questions
    note = squash(page.inner_text("#learning-note"))
    assert note.startswith("Results are for learning") and "against other sources" in note


def test_the_faq_states_the_verdicts_thresholds(app):
    page = app.page
    page.click("#faq-grades summary")
    rows = [r.locator("td").all_inner_texts() for r in page.locator("#grade-table tbody tr").all()]
    table = grades.page_table()
    assert [r[2] for r in rows] == [g["cue"] for g in table["sqnr"] + table["clip_rate"]]
    assert [r[1] for r in rows] == ["30 dB or more", "20 to 30 dB", "13 to 20 dB", "below 13 dB",
                                    "0 %", "up to 0.1 %", "0.1 % to 1 %", "over 1 %"]


def test_the_verdict_and_the_hints_are_the_engines(app):
    page = app.page
    if page.locator("#clear-file").is_visible():
        page.click("#clear-file")
    config = {"name": "t", "bits": "4", "calibration": "minmax", "granularity": "tensor",
              "mode": "symmetric"}
    fill(page, values=OUTLIER_TEXT, **config)
    calculate(page)
    reply = api.analyze(config, {"text": OUTLIER_TEXT})
    shown = [{"key": v.get_attribute("data-verdict"),
              "label": v.locator(".qc-metric-label").inner_text(),
              "level": v.get_attribute("data-level"),
              "cue": v.locator(".qc-verdict-cue").inner_text()}
             for v in page.locator("#headline .qc-verdict").all()]
    assert shown == reply["headline"]
    sqnr = reply["summary"]["sqnr_db"]
    assert page.locator("[data-verdict=sqnr_db] .qc-verdict-value").inner_text() == \
        f"{float(f'{sqnr:.4g}'):g} dB"
    hints = page.locator("#hints li").all_inner_texts()
    assert hints == reply["summary"]["hints"]
    assert any("index 17, 15)" in h and "SQNR would be +" in h for h in hints)
    assert page.locator("#hints-title").is_visible()
    # a setting the hint proposes does what the hint said
    fill(page, calibration="mse")
    calculate(page)
    assert not any("index 17" in h for h in page.locator("#hints li").all_inner_texts())
    better = engine_summary({**config, "calibration": "mse"}, {"text": OUTLIER_TEXT})["sqnr_db"]
    assert f"+{better - sqnr:.1f} dB" in "".join(hints)


def test_use_this_example_calculates_and_shows_the_results(fresh):
    page = fresh.open()
    page.click("#use-example")
    page.wait_for_selector("#headline .qc-verdict")
    assert page.evaluate("document.activeElement.id") == "results-title"
    top = page.evaluate("document.getElementById('results-title').getBoundingClientRect().top")
    assert -1 < top < 900
    assert page.locator("[data-verdict=sqnr_db]").get_attribute("data-level") == "good"
    assert fresh.errors == []


def test_compare_says_when_few_values_make_scales_dominate(app):
    page = app.page
    page.click("#use-example")
    page.wait_for_selector("#headline .qc-verdict")
    before = int(page.evaluate("document.body.dataset.comparisons || 0"))
    page.click("#compare-run")
    page.wait_for_selector(f"body[data-comparisons='{before + 1}']", state="attached")
    notes = page.locator("#compare-skipped li").all_inner_texts()
    assert any(n.startswith("Only 10 values") and "scales dominate bits per value" in n
               for n in notes), notes
    # "Which format should I choose?" answers on these values, as the engine picks
    assert page.locator("#choose-waiting").is_hidden()
    picks = page.locator("#choose-picks li").all_inner_texts()
    specs = [box.get_attribute("data-spec")
             for box in page.locator("#compare-configs input:checked").all()]
    reply = api.compare({"text": page.input_value("#values")}, specs, "example")
    expected = [f"Up to {c['budget']:g} bits per value: {c['label']} " for c in reply["choices"]]
    assert len(picks) == len(expected) and all(p.startswith(e) for p, e in zip(picks, expected))


@pytest.mark.parametrize("width", [400, 800])
def test_figure_text_is_at_least_11_px_on_phones_and_tablets(browser, server, width):
    from conftest import Watched
    context = browser.new_context(viewport={"width": width, "height": 900})
    watched = Watched(context, server.url)
    page = watched.open()
    calculate(page)
    page.wait_for_selector("#figures figure[data-figure=transfer] img")
    shown = page.evaluate("document.querySelector('#figures img').getBoundingClientRect().width")
    # one column below 1024 px: the figures are stacked, each the width of the results
    lefts = page.evaluate("[...document.querySelectorAll('#figures figure')]"
                          ".map((f) => Math.round(f.getBoundingClientRect().left))")
    assert len(lefts) == 4 and len(set(lefts)) == 1
    # 11 pt text on a figure FIGURE_SIZE[0] inches (x 72 pt) wide, shown `shown` px wide
    from quantcalc.reports import figures
    assert figures.STYLE["font.size"] == 11 and figures.STYLE["legend.fontsize"] >= 11
    assert 11 / (figures.FIGURE_SIZE[0] * 72) * shown >= 11, shown
    context.close()
