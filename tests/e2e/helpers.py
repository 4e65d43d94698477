"""What a user does on the page, as functions, and the engine's answer for comparison."""

import json

from quantcalc import api
from quantcalc.schema import fields as result_fields

# selects first: they decide which other fields are shown
ORDER = ["format", "mode", "rounding", "calibration", "granularity"]


def card_keys(summary):
    """The cards the page shows for a summary: the card fields that apply (not None)."""
    return [key for key in result_fields.CARDS if summary.get(key) is not None]


def fill(page, **fields):
    """Set fields as a user would; a field the page hides for these settings is left alone (a
    user cannot set it, and the engine is not asked for it)."""
    for name in sorted(fields, key=lambda n: (n not in ORDER, ORDER.index(n) if n in ORDER else 0, n)):
        value = fields[name]
        locator = page.locator(f"#{name}")
        if not locator.is_visible() or locator.is_disabled():
            continue
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
    for card in page.locator("#metrics [data-metric]").all():
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
    assert list(shown) == card_keys(summary)
    for key in card_keys(summary):
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


def axe_violations(page, source):
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now: [(rule, [targets])].
    Injected through the DevTools protocol (page.evaluate), which the page's CSP allows."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(source)
    found = page.evaluate("""async () => {
      const result = await axe.run(document, { runOnly: { type: "tag",
        values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } });
      return result.violations.map((v) => [v.id, v.nodes.map((n) => n.target.join(" ")).slice(0, 5)]);
    }""")
    return [tuple(v) for v in found]
