"""axe-core in the planner state (after a scan, and with a plan at a typed target) and in the audit
state, at 1280 and at 400 px; and the scan's figures on a 400 px screen keep text a reader can
read: the smallest text the engine draws in them is at least 10 CSS px as the page shows it
(issue 27: it was about 6 px)."""

import pytest
from matplotlib.text import Text

from conftest import Watched
from helpers import axe_violations
from quantcalc.scan import figures as scan_figures
from tests.support import checkpoints as C

ap = pytest.importorskip("tests.support.audit_pairs")
SCAN_TIMEOUT_MS = 180_000
FORMATS = ["q8_0", "q5_0", "q4_k"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("states")
    arrays = C.make_arrays(C.llama_tensors(layers=2, hidden=256, ffn=512, vocab=512))
    C.write_safetensors(folder / "model.safetensors", arrays, "F32")
    audit = folder / "audit"
    audit.mkdir()
    hf, config = ap.hf_llama(audit / "hf", seed=3, layers=2)
    tensors = ap.gguf_tensors(hf, config)
    ap.write_gguf(audit / "model-Q8_0.gguf", tensors, config, {n: "q8_0" for n in tensors})
    return folder


def open_at(browser, server, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    watched = Watched(context, server.url)
    watched.open()
    return context, watched


def scan(page, model):
    done = int(page.evaluate("() => document.body.dataset.scans || 0"))
    page.set_input_files("#scan-files", [str(model / "model.safetensors")])
    page.select_option("#scan-preset", "custom")
    page.fill("#scan-formats", "\n".join(FORMATS))
    page.click("#scan-start")
    page.wait_for_function("(n) => Number(document.body.dataset.scans || 0) > n", arg=done,
                           timeout=SCAN_TIMEOUT_MS)
    page.wait_for_selector("#planner:not([hidden]):not([data-state=planning])",
                           timeout=SCAN_TIMEOUT_MS)
    page.wait_for_function("() => document.querySelectorAll('#scan-figures img').length === 4",
                           timeout=SCAN_TIMEOUT_MS)


def smallest_text_points():
    """The smallest font size (pt) in the scan's figures, as the engine draws them."""
    doc = {"formats": [{"label": "Q8_0"}, {"label": "Q4_K"}], "tensors": []}
    sizes = []
    for make in (scan_figures.heatmap_figure, scan_figures.spread_figure):
        fig = make(doc)
        sizes += [t.get_fontsize() for t in fig.findobj(Text) if t.get_text()]
    return min(sizes + [8.0])  # 8 pt: the size the scan's smallest labels are given


@pytest.mark.parametrize("width", [1280, 400])
def test_no_violations_in_the_planner_and_audit_states(browser, server, axe_source, model,
                                                       width):
    context, watched = open_at(browser, server, width)
    page = watched.page
    scan(page, model)
    assert page.get_attribute("#planner", "data-state") == "planned"
    assert axe_violations(page, axe_source) == [], "planner"
    page.fill("#plan-bpw", "6")
    page.wait_for_selector('#plan-output:not(.qc-stale) #plan-summary[data-target="6"]',
                           timeout=SCAN_TIMEOUT_MS)
    page.wait_for_selector("#plan-figures img", timeout=SCAN_TIMEOUT_MS)
    assert axe_violations(page, axe_source) == [], "planned at 6 bits"
    before = int(page.evaluate("() => document.body.dataset.audits || 0"))
    page.set_input_files("#audit-original-files", sorted(str(f) for f in
                                                         (model / "audit" / "hf").iterdir()))
    page.set_input_files("#audit-quantized-files", [str(model / "audit" / "model-Q8_0.gguf")])
    page.click("#audit-start")
    page.wait_for_selector(f"body[data-audits='{before + 1}']", state="attached",
                           timeout=SCAN_TIMEOUT_MS)
    page.wait_for_selector("#audit-figures figure[data-figure=gain] img", timeout=60_000)
    assert axe_violations(page, axe_source) == [], "audit"
    assert watched.errors == []
    context.close()


def test_scan_figures_at_400_px_keep_text_of_10_css_px(browser, server, model):
    context, watched = open_at(browser, server, 400)
    page = watched.page
    scan(page, model)
    smallest = smallest_text_points()
    sizes = page.evaluate("""() => [...document.querySelectorAll('#scan-figures img')].map((img) => {
      const box = img.closest('.qc-figure-scroll');
      return { shown: img.getBoundingClientRect().width, natural: img.naturalWidth,
               scrolls: box !== null && box.scrollWidth > box.clientWidth,
               focusable: box !== null && box.tabIndex === 0 };
    })""")
    assert len(sizes) == 4
    for size in sizes:
        # matplotlib's SVG is sized in pt (1 pt = 4/3 CSS px at its natural size)
        css_px_per_pt = size["shown"] / size["natural"] * 4 / 3
        assert smallest * css_px_per_pt >= 10, size
        assert size["scrolls"] and size["focusable"], size  # wider than the phone: scrolls
    # the page itself does not scroll sideways: only the figures do
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    box = page.locator("#scan-figures .qc-figure-scroll").first
    box.focus()
    page.keyboard.press("ArrowRight")  # scrolls the focused box (smoothly: wait for it)
    page.wait_for_function(
        "() => document.querySelector('#scan-figures .qc-figure-scroll').scrollLeft > 0")
    assert watched.errors == []
    context.close()


def test_scan_figures_at_1280_px_fit_without_a_scroll_or_a_tab_stop(browser, server, model):
    context, watched = open_at(browser, server, 1280)
    page = watched.page
    scan(page, model)
    found = page.evaluate("""() => [...document.querySelectorAll('#scan-figures .qc-figure-scroll')]
      .map((b) => [b.scrollWidth > b.clientWidth, b.hasAttribute('tabindex')])""")
    assert found == [[False, False]] * 4
    context.close()
