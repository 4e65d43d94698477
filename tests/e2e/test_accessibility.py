"""axe-core finds no violations in any state a user can reach: initial, results, error, compare,
dark, embed; plus the skip link, the focus outline's contrast and errors tied to their fields."""

from conftest import Watched
from helpers import axe_violations, calculate, fill


def open_page(browser, server, query="", **options):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
    watched = Watched(context, server.url)
    watched.open(query)
    return context, watched


def test_no_violations_initial_results_error_and_compare(browser, server, axe_source):
    context, watched = open_page(browser, server)
    page = watched.page
    assert axe_violations(page, axe_source) == [], "initial"
    calculate(page)
    page.wait_for_selector("#figures figure[data-figure=transfer] img")
    assert axe_violations(page, axe_source) == [], "results"
    fill(page, bits="99")
    calculate(page)
    assert page.locator("#bits").get_attribute("aria-invalid") == "true"
    assert axe_violations(page, axe_source) == [], "error"
    fill(page, bits="8")
    before = int(page.evaluate("document.body.dataset.comparisons || 0"))
    page.click("#compare-run")
    page.wait_for_selector(f"body[data-comparisons='{before + 1}']", state="attached")
    page.wait_for_selector("#compare-figures img")
    assert axe_violations(page, axe_source) == [], "compare"
    assert watched.errors == []
    context.close()


def test_no_violations_dark_and_embedded(browser, server, axe_source):
    for query, options in (("", {"color_scheme": "dark"}), ("?embed=1", {})):
        context, watched = open_page(browser, server, query, **options)
        page = watched.page
        calculate(page)
        page.wait_for_selector("#figures img")
        assert axe_violations(page, axe_source) == [], (query, options)
        context.close()


def luminance(rgb):
    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(float(v)) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b):
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def rgb(text):
    return [int(v) for v in text[text.index("(") + 1:text.index(")")].split(",")[:3]]


def test_skip_link_and_a_focus_ring_of_3_to_1_in_both_schemes(browser, server):
    for scheme in ("light", "dark"):
        context, watched = open_page(browser, server, color_scheme=scheme)
        page = watched.page
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "qc-skip"
        assert page.locator(".qc-skip").is_visible()
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")  # on into the calculator's first field
        assert page.evaluate("document.activeElement.closest('#calculator') !== null")
        ring, card = page.evaluate("""() => [getComputedStyle(document.activeElement).outlineColor,
            getComputedStyle(document.querySelector('.qc-card')).backgroundColor]""")
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
        assert contrast(rgb(ring), rgb(card)) >= 3, (scheme, ring, card)
        context.close()


def test_an_error_is_read_with_its_field_and_leaves_with_it(app):
    page = app.page
    fill(page, bits="99")
    calculate(page)
    described = page.get_attribute("#bits", "aria-describedby").split()
    assert "error-bits" in described and "help-bits" in described
    assert "between 2 and 16" in page.inner_text("#error-bits")
    fill(page, bits="8")
    calculate(page)
    assert "error-bits" not in (page.get_attribute("#bits", "aria-describedby") or "")
    assert page.get_attribute("#bits", "aria-invalid") is None


def test_the_file_chooser_shows_shapes_and_names_the_tensor(app, tmp_path):
    import numpy as np
    path = tmp_path / "model.npz"
    np.savez(path, **{"layer0.weight": np.ones((4, 8), np.float32),
                      "layer0.bias": np.zeros(8, np.float16)})
    page = app.page
    fill(page, name="")
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#tensor option")
    options = page.locator("#tensor option").all_inner_texts()
    assert options == ["layer0.weight — 4 × 8 float32", "layer0.bias — 8 float16"]
    assert page.input_value("#name") == "layer0.weight"
    page.select_option("#tensor", "layer0.bias")
    assert page.input_value("#name") == "layer0.bias"
    # the typed values are kept, shown as not in use
    assert page.locator("#values-unused").is_visible()
    assert page.locator("#drop-prompt").is_hidden()
    calculate(page)
    assert page.locator("[data-metric=scale]").get_attribute("data-value") is not None
    assert page.inner_text("#results-name").startswith("layer0.bias")
    page.click("#clear-file")
    assert page.locator("#values-unused").is_hidden()
    assert page.locator("#drop-prompt").is_visible()
    # a name the user typed is theirs
    fill(page, name="mine")
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#tensor option")
    assert page.input_value("#name") == "mine"
    page.click("#clear-file")


def test_copy_link_in_an_embed_links_to_the_full_page(browser, server):
    context, watched = open_page(browser, server, "?embed=1")
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = watched.page
    fill(page, bits="6")
    page.click("#copy-link")
    page.wait_for_selector("#link-status:has-text('Link copied')")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "bits=6" in copied and "embed" not in copied
    assert "embed=1" in page.url  # the embed itself stays an embed
    context.close()
