"""The calculator's figures of a real tensor whose range one outlier sets (issue 27): MiniLM's
encoder.layer.0.output.dense.weight, values of std 0.045 and one of 7.9. The value that sets the
range is marked where it lies, the histogram can count on a log axis, its title is not cut and
its 256 levels are drawn, and a keyboard cursor reads out what the pointer reads out."""

import json

import pytest

from conftest import Watched
from helpers import calculate, engine_summary
from quantcalc import api
from quantcalc.schema.settings import DEFAULTS
from tests.support import corpus

TENSOR = "encoder.layer.0.output.dense.weight"


@pytest.fixture(scope="module")
def minilm():
    return corpus.file_or_skip("minilm-safetensors")


@pytest.fixture(scope="module")
def shown(browser, server, minilm):
    """The page with MiniLM's tensor calculated at the default settings. The CSP is bypassed so
    the test can read the figures' SVG text from their blob: addresses."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    watched = Watched(context, server.url)
    page = watched.open()
    page.set_input_files("#file", str(minilm))
    page.wait_for_selector(f"#tensor option[value='{TENSOR}']", state="attached")
    page.select_option("#tensor", TENSOR)
    calculate(page)
    page.wait_for_selector("#figures figure[data-figure=transfer] img")
    yield watched
    assert watched.errors == []
    context.close()


CONFIG = {**{k: v for k, v in DEFAULTS.items() if v is not None}, "name": TENSOR}


def engine(minilm, x):
    return api.readout(CONFIG, {"file_path": str(minilm), "tensor": TENSOR}, None, x)


MEASURE = """async ([name, ids, title]) => {
  const img = document.querySelector(`#figures figure[data-figure=${name}] img`);
  const text = await (await fetch(img.src)).text();
  const holder = document.createElement("div");
  holder.style.cssText = `position:absolute; left:0; top:0; width:${img.clientWidth}px`;
  holder.innerHTML = text.slice(text.indexOf("<svg"));
  document.body.append(holder);
  const svg = holder.querySelector("svg");
  svg.setAttribute("width", img.clientWidth); svg.removeAttribute("height");
  const frame = svg.getBoundingClientRect();
  const rel = (r) => ({ left: (r.left - frame.left) / frame.width,
    right: (r.right - frame.left) / frame.width, top: (r.top - frame.top) / frame.height,
    bottom: (r.bottom - frame.top) / frame.height });
  // a text's group holds its line(s) as comments (one per line of a wrapped title)
  const comment = (g) => [...g.childNodes].filter((n) => n.nodeType === 8)
    .map((n) => n.data.trim()).join(" ");
  const groups = [...svg.querySelectorAll("g")];
  const out = { texts: groups.filter((g) => g.id.startsWith("text_") || ids.includes(g.id))
                  .map(comment).filter(Boolean), marks: {} };
  for (const id of ids) {
    out.marks[id] = groups.filter((g) => g.id === id).map((g) => ({ text: comment(g),
      box: rel(g.getBoundingClientRect()), paths: g.querySelectorAll("path, use").length }));
  }
  const titled = groups.find((g) => comment(g).replace(/\\s+/g, " ") === title);
  out.title = titled ? rel(titled.getBoundingClientRect()) : null;
  holder.remove();
  return out;
}"""


def measure(page, name, title=""):
    return page.evaluate(MEASURE, [name, ["range-values", "quantization-levels"], title])


def test_the_histogram_title_fits_and_its_256_levels_are_drawn(shown):
    page = shown.page
    summary_levels = int(page.get_attribute("[data-metric=q_max]", "data-value")) - \
        int(page.get_attribute("[data-metric=q_min]", "data-value")) + 1
    assert summary_levels == 256
    found = measure(page, "histogram", "Value distribution and quantization levels")
    assert found["title"] is not None, found["texts"][-12:]
    title = found["title"]
    assert 0 <= title["left"] and title["right"] <= 1 and 0 <= title["top"], title
    levels = found["marks"]["quantization-levels"]
    assert len(levels) == 1 and levels[0]["paths"] == summary_levels
    assert f"{summary_levels} levels (ticks at top)" in found["texts"]


def test_the_value_that_sets_the_range_is_marked_where_it_lies(shown, minilm):
    page = shown.page
    data_max = engine_summary(CONFIG, {"file_path": str(minilm), "tensor": TENSOR})["data_max"]
    assert data_max > 7.9
    label = f"max {data_max:.4g}"
    for name in ("histogram", "values"):
        found = measure(page, name)
        marks = found["marks"]["range-values"]
        assert [m["text"] for m in marks if m["text"]] == [label], name
        assert "max |x|: sets the range" in found["texts"]
    # on the histogram the triangle stands at x = 7.915 of the axes
    figure = page.locator("#figures figure[data-figure=histogram]")
    box, xlim = (json.loads(figure.get_attribute(a)) for a in ("data-box", "data-xlim"))
    at = box[0] + (data_max - xlim[0]) / (xlim[1] - xlim[0]) * box[2]
    triangle = [m for m in measure(page, "histogram")["marks"]["range-values"] if not m["text"]]
    middle = (triangle[0]["box"]["left"] + triangle[0]["box"]["right"]) / 2
    assert abs(middle - at) < 0.01


def readout_of(figure):
    line = figure.locator(".qc-readout")
    return {k: line.get_attribute(f"data-{k}") for k in ("x", "count", "code", "reconstruction")}


def wait_for_new_readout(figure, before):
    selector = ".qc-readout[data-x]" if before is None else f".qc-readout[data-x]:not([data-x='{before}'])"
    figure.locator(selector).wait_for()
    figure.locator(".qc-readout[data-code]" if figure.get_attribute("data-figure") != "error"
                   else ".qc-readout").wait_for()


def press(page, figure, key):
    before = figure.locator(".qc-readout").get_attribute("data-x")
    page.keyboard.press(key)
    wait_for_new_readout(figure, before)
    return readout_of(figure)


def test_log_counts_and_a_keyboard_cursor_read_the_outlier_s_bin(shown, minilm):
    page = shown.page
    figure = page.locator("#figures figure[data-figure=histogram]")
    assert figure.get_attribute("data-yscale") == "linear"
    box = figure.get_by_label("Counts on a log scale")
    box.focus()
    page.keyboard.press("Space")
    page.wait_for_selector("#figures figure[data-figure=histogram][data-yscale=log]")
    assert page.evaluate("document.activeElement.closest('.qc-log-counts') !== null")
    assert figure.get_by_label("Counts on a log scale").is_checked()
    assert "count (log)" in measure(page, "histogram")["texts"]
    # the keyboard cursor: the figure takes focus and says where its readout is
    img = figure.locator("img")
    img.focus()
    assert img.get_attribute("tabindex") == "0"
    line = figure.locator(".qc-readout")
    assert line.get_attribute("aria-live") == "polite"
    assert img.get_attribute("aria-describedby") == line.get_attribute("id")
    last = press(page, figure, "End")
    # the bins as the figure's own table lists them
    edges = json.loads(page.evaluate("""() => JSON.stringify([...document.querySelectorAll(
        '#figures figure[data-figure=histogram] details tbody tr')].map((r) =>
        [...r.cells].map((c) => c.textContent)))"""))
    assert last["count"] == edges[-1][2] == "1"  # the outlier alone in the last bin
    assert page.locator("#figures figure[data-figure=histogram] .qc-cursor").is_visible()
    expected = engine(minilm, float(last["x"]))
    assert (last["code"], float(last["reconstruction"])) == (str(expected["code"]),
                                                             expected["reconstruction"])
    assert "1 value in" in line.inner_text() and f"code {expected['code']}" in line.inner_text()
    first = press(page, figure, "Home")
    assert first["count"] == edges[0][2]
    press(page, figure, "ArrowRight")
    third = press(page, figure, "ArrowRight")
    assert third["count"] == edges[2][2]
    # the mouse at the keyboard's position reads the same bin and the engine's code for its x
    keyboard_x = float(third["x"])
    xlim = json.loads(figure.get_attribute("data-xlim"))
    boxes = json.loads(figure.get_attribute("data-box"))
    rect = img.bounding_box()
    fx = boxes[0] + (keyboard_x - xlim[0]) / (xlim[1] - xlim[0]) * boxes[2]
    before = line.get_attribute("data-x")
    page.mouse.move(rect["x"] + fx * rect["width"],
                    rect["y"] + (1 - boxes[1] - boxes[3] / 2) * rect["height"])
    wait_for_new_readout(figure, before)
    mouse = readout_of(figure)
    assert abs(float(mouse["x"]) - keyboard_x) <= (xlim[1] - xlim[0]) / rect["width"]
    assert mouse["count"] == third["count"]
    expected = engine(minilm, float(mouse["x"]))
    assert mouse["code"] == str(expected["code"])


def test_the_transfer_figure_s_cursor_steps_across_its_axes(shown, minilm):
    page = shown.page
    figure = page.locator("#figures figure[data-figure=transfer]")
    figure.locator("img").focus()
    xlim = json.loads(figure.get_attribute("data-xlim"))
    start = press(page, figure, "Home")
    assert float(start["x"]) == pytest.approx(xlim[0])
    step = press(page, figure, "ArrowRight")
    assert float(step["x"]) == pytest.approx(xlim[0] + (xlim[1] - xlim[0]) / 100)
    end = press(page, figure, "End")
    assert float(end["x"]) == pytest.approx(xlim[1])
    for reading in (start, step, end):
        expected = engine(minilm, float(reading["x"]))
        assert reading["code"] == str(expected["code"])
        assert float(reading["reconstruction"]) == expected["reconstruction"]
