"""What a new user meets: the example ready to run, results brought into view and announced,
hidden fields not validated, refused requests marking the old results out of date."""

from conftest import BOOT_TIMEOUT_MS
from helpers import calculate, field_error, fill, shown_metrics

EXAMPLE = "-1.25, -0.92, -0.51, -0.10, 0, 0.14, 0.37, 0.79, 1.12, 1.46"


def test_a_first_visit_has_the_example_ready_and_calculate_brings_the_results_into_view(fresh):
    page = fresh.open()
    assert page.input_value("#values") == EXAMPLE  # not a placeholder that looks like data
    calculate(page)
    assert page.evaluate("document.activeElement.id") == "results-title"
    top = page.evaluate("document.getElementById('results-title').getBoundingClientRect().top")
    assert -1 < top < 900  # in the viewport (it was below the fold)
    announced = page.inner_text("#results-announce")
    assert announced.startswith("Results for tensor: SQNR") and "0 of 10 values clipped" in announced
    assert fresh.errors == []


def test_only_fields_that_are_shown_are_validated(fresh):
    page = fresh.open()
    fill(page, values="1 2 3", calibration="percentile", percentile="150")
    calculate(page)
    assert "percentile" in (field_error(page, "percentile") or "")
    fill(page, calibration="custom", range_min="-4", range_max="4")  # the 150 is now hidden
    calculate(page)
    assert field_error(page, "percentile") is None
    assert shown_metrics(page)["scale"] == 4 / 127


def test_a_refused_request_marks_the_results_out_of_date_and_an_empty_bit_depth_is_an_error(fresh):
    page = fresh.open()
    fill(page, values="1 2 3", bits="6")
    calculate(page)
    assert page.locator("#results-stale").is_hidden()
    fill(page, bits="")
    calculate(page)
    assert field_error(page, "bits") == "Enter a value for bit depth."
    assert page.locator("#results-stale").is_visible()
    assert "qc-stale" in page.get_attribute("#results", "class")
    assert page.locator("[data-metric=q_max]").get_attribute("data-value") == "31"  # kept, dimmed
    fill(page, bits="4")
    calculate(page)
    assert page.locator("#results-stale").is_hidden()
    assert shown_metrics(page)["q_max"] == 7


def test_start_up_shows_a_progress_bar_with_the_phase_and_the_bytes(fresh, dist):
    import json
    import time
    bytecode = next(dist.glob("app/*/bytecode.json"))
    total = json.loads(bytecode.read_text())["boot_bytes"]
    page = fresh.page
    page.goto(fresh.base_url)
    seen = []
    deadline = time.time() + BOOT_TIMEOUT_MS / 1000
    while time.time() < deadline:
        state = page.evaluate("""() => [document.getElementById('engine-status').dataset.state,
            document.getElementById('engine-status').textContent,
            document.getElementById('engine-progress').position,
            document.getElementById('engine-bytes').textContent]""")
        if state[0] == "ready":
            break
        seen.append(state[1:])
        time.sleep(0.05)
    assert page.locator(".qc-boot-progress").is_hidden()  # gone once ready
    shown = [(text, position, size) for text, position, size in seen if size]
    assert shown, seen
    assert all(size.endswith(f" of {total / 1e6:.1f} MB") for _, _, size in shown)
    assert len({position for _, position, _ in shown}) >= 2  # it moves
    assert max(position for _, position, _ in shown) >= 0.5
    assert {text for text, _, _ in shown} & {"Loading numpy…", "Starting Python (Pyodide 0.27.7)…"}
