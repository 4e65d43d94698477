"""Offline after the first load (also under a sub-path), links that carry a setup, saved form
state, embedding in a cross-origin iframe, and "reload to update" for a new build."""

import http.server
import os
import shutil
import time
import threading
from functools import partial

import build
from conftest import BOOT_TIMEOUT_MS, Server, Watched
from helpers import calculate, fill, shown_metrics

EXAMPLE = "-1.25, -0.92, -0.51, -0.10, 0, 0.14, 0.37, 0.79, 1.12, 1.46"


def open_page(browser, url, width=1280, **context_options):
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  accept_downloads=True, **context_options)
    watched = Watched(context, url)
    return context, watched


def wait_offline_ready(page):
    page.wait_for_selector("#offline-status[data-state=ready]", timeout=BOOT_TIMEOUT_MS)


def test_works_offline_under_a_sub_path_after_one_visit(browser, dist, tmp_path):
    server = Server(dist, prefix="/docs/tools/quantcalc/")
    context, watched = open_page(browser, server.url)
    try:
        page = watched.open()
        wait_offline_ready(page)
        assert "Ready for offline use" in page.inner_text("#offline-status")
        server.stop()  # the site is gone; only the service worker's cache is left
        page.reload()
        page.wait_for_selector("#engine-status[data-state=ready]", timeout=BOOT_TIMEOUT_MS)
        page.click("#use-example")
        page.wait_for_selector("[data-metric=scale]")
        assert shown_metrics(page)["scale"] == 1.5 / 127
        with page.expect_download() as info:
            page.click("[data-download=csv]")
        info.value.save_as(tmp_path / "v.csv")
        assert (tmp_path / "v.csv").read_text().startswith("index,original,quantized")
        with page.expect_download(timeout=120_000) as info:
            page.click("[data-download=pdf]")
        info.value.save_as(tmp_path / "r.pdf")
        assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
        page.wait_for_selector("[data-figure=transfer] img", timeout=120_000)
        assert watched.errors == [] or all("Failed to load resource" in e or
                                           "ERR_CONNECTION_REFUSED" in e for e in watched.errors)
    finally:
        context.close()


def test_a_link_restores_the_setup_and_computes(fresh):
    page = fresh.page
    page.goto(fresh.base_url + "?bits=4&mode=asymmetric&rounding=floor&name=act&values="
              "0.5,1.5,2.5,-0.25")
    page.wait_for_selector("[data-metric=scale]", timeout=BOOT_TIMEOUT_MS)
    assert page.input_value("#bits") == "4" and page.input_value("#mode") == "asymmetric"
    assert page.input_value("#rounding") == "floor" and page.input_value("#name") == "act"
    from quantcalc import api
    expected = api.analyze({"bits": 4, "mode": "asymmetric", "rounding": "floor", "name": "act"},
                           {"text": "0.5,1.5,2.5,-0.25"})["summary"]
    assert shown_metrics(page)["scale"] == expected["scale"]
    assert page.locator("#link-problems").is_hidden()


def test_malformed_link_parameters_are_reported_and_ignored(fresh):
    page = fresh.page
    page.goto(fresh.base_url + "?bits=99&mode=sideways&foo=1&percentile=abc&values=1,2,3")
    page.wait_for_selector("[data-metric=scale]", timeout=BOOT_TIMEOUT_MS)
    problems = page.inner_text("#link-problems")
    assert "bits=“99”" in problems and "mode=“sideways”" in problems
    assert "“foo”" in problems and "percentile=“abc”" in problems
    assert page.input_value("#bits") == "8" and page.input_value("#mode") == "symmetric"
    assert shown_metrics(page)["q_max"] == 127
    assert fresh.errors == []


def test_links_accept_what_the_engine_accepts_and_nothing_else(fresh):
    # narrow_range=on/off is what the engine takes (the link check refused it); a full-width
    # digit is refused by both (the engine's float() used to take it)
    page = fresh.page
    block = ",".join(str(v) for v in range(-16, 16))  # one block of 32, as Q4_0 needs
    page.goto(fresh.base_url + "?narrow_range=on&bits=%EF%BC%98&format=q4_0&values=" + block)
    page.wait_for_selector("[data-metric=scale]", timeout=BOOT_TIMEOUT_MS)
    problems = page.inner_text("#link-problems")
    assert "narrow_range" not in problems and "bits=“８”" in problems
    assert page.is_checked("#narrow_range")
    assert page.input_value("#format") == "q4_0" and "GGUF Q4_0" in page.inner_text("#results-name")
    # the link of what is shown carries only what applies to Q4_0 (no bits, no narrow range)
    assert "format=q4_0" in page.url and "narrow_range" not in page.url and "bits" not in page.url


def test_the_url_and_copy_link_carry_the_setup(browser, server):
    context, watched = open_page(browser, server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    try:
        page = watched.open()
        fill(page, values="1 2 3", bits="6", calibration="percentile", percentile="99.5")
        calculate(page)
        assert "bits=6" in page.url and "percentile=99.5" in page.url and "values=1+2+3" in page.url
        page.click("#copy-link")
        page.wait_for_selector("#link-status:has-text('Link copied')")
        link = page.evaluate("navigator.clipboard.readText()")
        assert link == page.url
        other = context.new_page()
        other.goto(link)
        other.wait_for_selector("[data-metric=scale]", timeout=BOOT_TIMEOUT_MS)
        assert shown_metrics(other) == shown_metrics(page)
        fill(page, values=" ".join(["0.5"] * 1000))
        page.click("#copy-link")
        page.wait_for_selector("#link-status:has-text('settings only')")
    finally:
        context.close()


def test_typed_values_survive_a_reload(fresh):
    page = fresh.open()
    fill(page, values="3.25 -1 7", bits="5", name="kept", granularity="group", group_size="64")
    page.wait_for_timeout(600)  # the form is saved a moment after typing stops
    page.reload()
    page.wait_for_selector("#engine-status[data-state=ready]", timeout=BOOT_TIMEOUT_MS)
    assert page.input_value("#values") == "3.25 -1 7"
    assert page.input_value("#bits") == "5" and page.input_value("#name") == "kept"
    assert page.input_value("#group_size") == "64" and page.is_visible("#group_size")


def per_value_rows(page):
    return page.locator("#per-value tbody").inner_text()


def test_a_return_visit_shows_the_saved_result_while_python_starts(browser, server):
    """The result of a link, kept after its figures are drawn, is shown on the next visit
    before Python is up (here: never up, its wasm request is held), digit for digit."""
    link = server.url + "?name=kept&bits=5&mode=asymmetric&values=0.5,1.5,2.5,-0.25,3"
    context = browser.new_context(service_workers="block")  # so page.route sees the wasm
    try:
        first = context.new_page()
        first.goto(link)
        first.wait_for_selector("[data-figure=transfer] img", timeout=BOOT_TIMEOUT_MS)
        first.wait_for_selector("#figures-status:empty", state="attached")
        assert first.get_attribute("#results", "data-origin") == "engine"
        assert first.is_hidden("#results-origin")
        computed, table = shown_metrics(first), per_value_rows(first)
        first.wait_for_timeout(500)  # the entry is written just after the last figure
        first.close()

        held = []
        stalled = context.new_page()
        stalled.route("**/pyodide.asm.wasm", lambda route: held.append(route))  # never answered
        stalled.goto(link)
        stalled.wait_for_selector("#results[data-origin=saved]", timeout=30_000)
        assert stalled.is_visible("#results-origin")
        assert shown_metrics(stalled) == computed and per_value_rows(stalled) == table
        assert stalled.locator("#figures figure img").count() == 4
        assert stalled.evaluate("[...document.images].every((i) => i.naturalWidth > 0)")
        assert stalled.get_attribute("#engine-status", "data-state") == "booting"
        assert held, "the engine did ask for its wasm"
        # another input has nothing saved: no result until the engine computes one
        stalled.goto(link.replace("values=0.5", "values=0.75"))
        stalled.wait_for_selector("#engine-status", state="attached")
        stalled.wait_for_timeout(1000)
        assert stalled.is_hidden("#results")
        stalled.close()

        # a download asked for while Python starts waits for it; then Calculate replaces the
        # saved result by the same numbers, computed
        live = context.new_page()
        held, released = [], []

        def hold(route):  # the wasm (its HEAD check, then the GET) until released
            if released:
                route.continue_()
            else:
                held.append(route)
        live.route("**/pyodide.asm.wasm", hold)
        live.goto(link)
        live.wait_for_selector("#results[data-origin=saved]", timeout=30_000)
        with live.expect_download(timeout=BOOT_TIMEOUT_MS) as info:
            live.click("[data-download=csv]")
            live.wait_for_selector("#download-status:has-text('Waiting for the calculator')")
            live.wait_for_timeout(200)
            released.append(True)  # now let Python start
            for route in held:
                route.continue_()
        rows = info.value.path().read_text().splitlines()
        assert rows[0].startswith("index,original,quantized") and len(rows) == 6
        live.wait_for_selector("#engine-status[data-state=ready]", timeout=BOOT_TIMEOUT_MS)
        calculate(live)
        assert live.get_attribute("#results", "data-origin") == "engine"
        assert live.is_hidden("#results-origin")
        assert shown_metrics(live) == computed and per_value_rows(live) == table
    finally:
        context.close()


HOST_PAGE = """<!doctype html><html><body><h1>Docs</h1>
<iframe id="calc" src="{src}" style="width:100%;border:0;height:200px"
        title="quantcalc"></iframe>
<script>
  window.heights = [];
  window.addEventListener("message", (event) => {{
    if (event.data && event.data.type === "quantcalc:height") {{
      window.heights.push(event.data.height);
      document.getElementById("calc").style.height = event.data.height + "px";
    }}
  }});
</script></body></html>"""


def test_embed_mode_in_a_cross_origin_iframe(browser, server, tmp_path):
    (tmp_path / "index.html").write_text(HOST_PAGE.format(src=server.url + "?embed=1"))
    host = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path)))
    threading.Thread(target=host.serve_forever, daemon=True).start()
    context = browser.new_context(viewport={"width": 900, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"http://localhost:{host.server_address[1]}/")  # another origin
        frame = page.frame_locator("#calc")
        frame.locator("#engine-status[data-state=ready]").wait_for(timeout=BOOT_TIMEOUT_MS)
        assert frame.locator("#faq-title").is_hidden()
        assert frame.locator("#example-title").is_hidden()
        first = page.evaluate("window.heights.at(-1)")
        frame.locator("#values").fill(EXAMPLE)
        frame.locator("#calculate").click()
        frame.locator("[data-metric=scale]").wait_for()
        page.wait_for_function("window.heights.at(-1) > 800")
        assert page.evaluate("window.heights.at(-1)") > first
        # read together: the page keeps reporting as figures arrive
        height, reported = page.evaluate(
            "[document.getElementById('calc').getBoundingClientRect().height, "
            "window.heights.at(-1)]")
        assert height == reported
    finally:
        context.close()
        host.shutdown()
        host.server_close()


def test_a_new_build_offers_reload_to_update(browser, tmp_path):
    web = tmp_path / "web"
    shutil.copytree(build.WEB, web)
    first = build.build(tmp_path / "first", web)
    (web / "style.css").write_text((web / "style.css").read_text() + "\n/* next build */\n")
    second = build.build(tmp_path / "second", web)
    later = time.time() + 60  # deployed a minute later (Last-Modified has 1 s resolution)
    for path in second.rglob("*"):
        os.utime(path, (later, later))
    server = Server(first)
    context, watched = open_page(browser, server.url)
    try:
        page = watched.open()
        fill(page, values="1 2 3")
        calculate(page)  # its result is saved under the first build's name
        wait_offline_ready(page)
        for _ in range(100):  # the result is saved just after its last figure
            if len(page.evaluate("caches.keys()")) == 2:
                break
            page.wait_for_timeout(100)
        assert len(page.evaluate("caches.keys()")) == 2
        old_css = page.get_attribute("link[rel=stylesheet]", "href")
        server.directory = str(second)  # deploy the new build
        page.evaluate("navigator.serviceWorker.getRegistration().then(r => r.update())")
        page.wait_for_selector("#update-button:visible", timeout=BOOT_TIMEOUT_MS)
        with page.expect_navigation():
            page.click("#update-button")
        page.wait_for_selector("#engine-status[data-state=ready]", timeout=BOOT_TIMEOUT_MS)
        new_css = page.get_attribute("link[rel=stylesheet]", "href")
        assert new_css != old_css and second.name not in new_css
        assert new_css.split("/")[1] in {p.name for p in (second / "app").iterdir()}
        names = page.evaluate("caches.keys()")  # the first build's caches, results too, are gone
        old_build, new_build = old_css.split("/")[1], new_css.split("/")[1]
        assert f"quantcalc-{new_build}" in names
        assert not [name for name in names if old_build in name]
    finally:
        context.close()
        server.stop()
