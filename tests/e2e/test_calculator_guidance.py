"""The calculator where a rule would otherwise be silent (issue 27): a refused llama.cpp type
offers its fallback as one click, an integer tensor gets the scan's reason for leaving such
tensors as stored, and a format change that keeps a setting says so beside it."""

import numpy as np
import pytest

from helpers import assert_same_numbers, calculate, engine_summary, fill
from tests.support import checkpoints as C

ROWS = np.random.default_rng(6).standard_normal((2, 384)).round(4)
ROWS_TEXT = "[" + ", ".join("[" + ", ".join(f"{v:g}" for v in row) + "]" for row in ROWS) + "]"
BASE = {"name": "w", "mode": "symmetric", "rounding": "half-even", "calibration": "minmax",
        "granularity": "tensor"}


@pytest.fixture
def clean(app):
    page = app.page
    if page.locator("#clear-file").is_visible():
        page.click("#clear-file")
    fill(page, format="int", bits=8, **BASE)
    return page


def test_a_refused_k_quant_offers_its_fallback_as_one_click(app, clean):
    page = clean
    fill(page, values=ROWS_TEXT, format="q4_k")
    calculate(page)
    error = page.locator("#error-format")
    assert error.is_visible() and "llama-quantize writes such a tensor as Q5_0" in error.inner_text()
    offer = error.locator("button.qc-try")
    assert offer.inner_text() == "Try Q5_0"
    before = int(page.evaluate("document.body.dataset.calculations || 0"))
    offer.focus()
    page.keyboard.press("Enter")  # a keyboard user takes it as a mouse user does
    page.wait_for_selector(f"body[data-calculations='{before + 1}']", state="attached")
    assert page.locator("#error-format").is_hidden()
    assert page.input_value("#format") == "q5_0"
    assert_same_numbers(page, engine_summary({"name": "w", "format": "q5_0"}, {"text": ROWS_TEXT}))
    # no offer where there is nothing to take instead (Q4_0 has no fallback)
    fill(page, values="[" + ", ".join(f"{v:g}" for v in ROWS[0, :40]) + "]", format="q4_0")
    calculate(page)
    assert error.is_visible() and error.locator("button").count() == 0


def test_an_integer_tensor_says_integers_are_usually_not_quantized(app, clean, tmp_path):
    page = clean
    path = tmp_path / "model.safetensors"
    C.write_safetensors(path, {"embeddings.position_ids": np.arange(512).reshape(1, 512),
                               "embeddings.word_embeddings.weight": ROWS.astype(np.float32)})
    page.set_input_files("#file", str(path))
    page.wait_for_selector(".qc-tensor-choice:not([hidden])")
    page.select_option("#tensor", "embeddings.position_ids")
    calculate(page)
    summary = engine_summary({"name": "w", **BASE}, {"file_path": str(path),
                                                    "tensor": "embeddings.position_ids"})
    notes = page.locator("#notes li").all_inner_texts()
    assert notes[0] == summary["notes"][0]
    assert "I32 values, not floats: integer tensors (positions, ids, masks) are usually not " \
        "quantized" in notes[0]
    page.select_option("#tensor", "embeddings.word_embeddings.weight")
    calculate(page)
    assert not any("not floats" in n for n in page.locator("#notes li").all_inner_texts())
    page.click("#clear-file")


def test_a_format_change_that_keeps_a_setting_says_so_beside_it(app, clean):
    page = clean
    fill(page, values=ROWS_TEXT, format="q4_k")
    calculate(page)
    assert page.locator("#error-format button.qc-try").is_visible()
    fill(page, format="int")  # the refusal named Q4_K: it goes with it, and its offer
    assert page.locator("#error-format").is_hidden()
    assert page.get_attribute("#format", "aria-invalid") is None
    fill(page, bits=4, granularity="group", group_size=128)
    carried = page.locator("#carried-granularity")
    assert carried.is_hidden()
    fill(page, format="fp8_e4m3")
    assert carried.is_visible()
    assert carried.inner_text() == "Kept from INT4: Per group (the default is Per tensor)."
    assert page.locator("#carried-group_size").inner_text() == \
        "Kept from INT4: 128 (the default is 32)."
    # read with the control by a screen reader
    assert "carried-granularity" in page.get_attribute("#granularity", "aria-describedby")
    assert page.locator("#carried-rounding").is_hidden()  # the default: nothing to say
    fill(page, granularity="tensor")  # the user decides: the note goes
    assert carried.is_hidden() and page.locator("#carried-group_size").is_hidden()
    fill(page, granularity="group")
    assert carried.is_hidden()  # chosen under FP8, not carried from another format
    fill(page, format="int", granularity="tensor")
