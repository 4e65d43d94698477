"""What a user does on the page, as functions, and the engine's answer for comparison."""

import json

from quantcalc import api

METRIC_KEYS = ["scale", "zero_point", "q_min", "q_max", "real_min", "real_max", "mse", "rmse",
               "mae", "max_abs_error", "sqnr_db", "rel_rmse", "clip_count", "clip_rate",
               "uniform_noise_mse", "bits_per_value"]
# selects first: they decide which other fields are shown
ORDER = ["mode", "rounding", "calibration", "granularity"]


def fill(page, **fields):
    for name in sorted(fields, key=lambda n: (n not in ORDER, n)):
        value = fields[name]
        locator = page.locator(f"#{name}")
        tag = locator.evaluate("e => e.tagName + ':' + e.type")
        if tag.startswith("SELECT"):
            locator.select_option(str(value))
        elif tag.endswith("checkbox"):
            locator.set_checked(bool(value))
        else:
            locator.fill(str(value))


def calculate(page):
    before = int(page.evaluate("document.body.dataset.calculations || 0"))
    page.click("#calculate")
    # a selector, not wait_for_function: the page's CSP forbids the eval that would need
    page.wait_for_selector(f"body[data-calculations='{before + 1}']", state="attached")


def shown_metrics(page):
    """{key: value} as the cards carry them in data-value (lists and inf parsed)."""
    out = {}
    for card in page.locator("[data-metric]").all():
        raw = card.get_attribute("data-value")
        out[card.get_attribute("data-metric")] = json.loads(raw) if raw[:1] in "[n" else \
            (raw if raw in ("inf", "-inf") else float(raw))
    return out


def engine_summary(config, source):
    reply = api.analyze(config, source)
    assert "error" not in reply, reply
    return reply["summary"]


def assert_same_numbers(page, summary):
    """Every card equals the CPython engine's value exactly (to the last digit)."""
    shown = shown_metrics(page)
    assert set(shown) == set(METRIC_KEYS)
    for key in METRIC_KEYS:
        expected = summary[key]
        if isinstance(expected, list) or expected is None:
            assert shown[key] == expected, key
        elif isinstance(expected, str):
            assert shown[key] == expected, key
        else:
            assert shown[key] == float(expected), key


def field_error(page, field):
    locator = page.locator(f"#error-{field}")
    return locator.inner_text() if locator.is_visible() else None
