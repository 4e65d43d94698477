"""Dark mode (figures included) and printing, by media emulation in real Chromium."""

from conftest import BOOT_TIMEOUT_MS, Watched
from helpers import calculate

CORNER_PIXEL = """async (selector) => {
  const img = document.querySelector(selector);
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  return Array.from(context.getImageData(2, 2, 1, 1).data.slice(0, 3));
}"""


def colour(page, selector, prop="background-color"):
    return page.evaluate("([s, p]) => getComputedStyle(document.querySelector(s))[p]",
                         [selector, prop])


def figures_redrawn(page, before):
    """Wait until the first figure is a new image (a new blob URL) and return its corner."""
    page.wait_for_selector(f"#figures figure[data-figure=values] img:not([src='{before}'])")
    return page.evaluate(CORNER_PIXEL, "#figures figure[data-figure=values] img")


def test_dark_mode_covers_the_page_and_its_figures(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    watched = Watched(context, server.url)
    page = watched.open()
    assert colour(page, "body") == "rgb(15, 19, 24)"
    assert colour(page, ".qc-card") == "rgb(22, 27, 34)"
    assert colour(page, ".qc", "color") == "rgb(230, 232, 235)"
    # the search boxes (tensor and scan filters) are dark like the other inputs, not the browser's grey
    for box in ("#tensor-filter", "#scan-layer-filter", "#scan-name-filter"):
        assert colour(page, box) == colour(page, "#values"), box
        assert colour(page, box, "color") == "rgb(230, 232, 235)", box
    calculate(page)
    page.wait_for_selector("#figures figure[data-figure=values] img")
    assert page.evaluate(CORNER_PIXEL, "#figures figure[data-figure=values] img") == [28, 33, 40]
    # the scheme changes while the page is open: the figures are drawn again, light
    before = page.get_attribute("#figures figure[data-figure=values] img", "src")
    page.emulate_media(color_scheme="light")
    assert figures_redrawn(page, before) == [255, 255, 255]
    assert colour(page, "body") == "rgb(246, 247, 249)"
    assert watched.errors == []
    context.close()


def test_printing_gives_settings_as_text_results_and_open_answers(app):
    page = app.page
    page.click("#use-example")
    page.wait_for_selector("#figures img")
    page.emulate_media(media="print")
    try:
        for hidden in ("#calculate", "#values", "#compare-run", ".qc-downloads button",
                       "#use-example"):
            assert page.locator(hidden).first.is_hidden(), hidden
        settings = page.locator("#results-settings")
        assert settings.is_visible()
        text = settings.inner_text()
        assert "Tensor name" in text and "example" in text and "Element bits" in text
        assert page.locator("#headline .qc-verdict").first.is_visible()
        assert page.locator("#figures img").first.is_visible()
        answers = page.locator("#faq-title ~ details > p")
        assert answers.count() >= 8
        assert all(answers.nth(i).is_visible() for i in range(answers.count()))
        # a section with nothing to show is not printed
        assert page.locator("#compare").is_hidden()
        # headings stay with what follows them
        assert colour(page, "#results-title", "break-after") == "avoid"
    finally:
        page.emulate_media(media="screen")
    assert page.locator("#calculate").is_visible()
    assert page.locator("#faq-title ~ details > p").first.is_hidden()


def test_saved_figures_of_the_other_scheme_are_drawn_again(browser, server):
    """A result kept from a light visit shows at once on a dark one, and its figures are then
    drawn again for the dark page once matplotlib is in."""
    link = server.url + "?name=themed&bits=4&values=0.5,1.5,2.5,-0.25,3"
    context = browser.new_context(service_workers="block")
    try:
        first = context.new_page()
        first.goto(link)
        first.wait_for_selector("[data-figure=transfer] img", timeout=BOOT_TIMEOUT_MS)
        first.wait_for_selector("#figures-status:empty", state="attached")
        first.wait_for_timeout(500)  # the entry is written just after the last figure
        assert first.evaluate(CORNER_PIXEL, "#figures figure[data-figure=values] img") == \
            [255, 255, 255]
        first.close()
        dark = context.new_page()
        dark.emulate_media(color_scheme="dark")
        dark.goto(link)
        dark.wait_for_selector("#results[data-origin=saved]", timeout=30_000)
        dark.wait_for_selector("#engine-status[data-state=ready]", timeout=BOOT_TIMEOUT_MS)
        for _ in range(120):  # the redraw replaces each figure in place
            if dark.evaluate(CORNER_PIXEL, "#figures figure[data-figure=values] img") == \
                    [28, 33, 40]:
                break
            dark.wait_for_timeout(250)
        assert dark.evaluate(CORNER_PIXEL, "#figures figure[data-figure=values] img") == \
            [28, 33, 40]
    finally:
        context.close()
