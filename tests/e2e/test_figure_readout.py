"""The numbers under the pointer on the histogram and the transfer figure equal the engine's, and
the figures' tables hold the same numbers for keyboard users."""

import json

import numpy as np

from helpers import calculate, fill
from quantcalc import api

VALUES = np.random.default_rng(8).standard_t(5, 300).round(3)
TEXT = ", ".join(f"{v:g}" for v in VALUES)
CONFIG = {"name": "t", "bits": "4", "mode": "asymmetric", "calibration": "minmax",
          "granularity": "tensor"}


def engine_maps():
    found = {}
    api.figures_svg(CONFIG, {"text": TEXT}, None, lambda name, title, svg, where:
                    found.__setitem__(name, where))
    return found


def point_at(page, name, x):
    """Move the mouse over figure `name` to data value x (mid-height of its axes)."""
    figure = page.locator(f"#figures figure[data-figure={name}]")
    box, xlim = json.loads(figure.get_attribute("data-box")), json.loads(
        figure.get_attribute("data-xlim"))
    figure.locator("img").scroll_into_view_if_needed()
    rect = figure.locator("img").bounding_box()
    fx = box[0] + (x - xlim[0]) / (xlim[1] - xlim[0]) * box[2]
    fy = box[1] + box[3] / 2
    before = figure.locator(".qc-readout").get_attribute("data-x")
    page.mouse.move(rect["x"] + fx * rect["width"], rect["y"] + (1 - fy) * rect["height"])
    changed = ".qc-readout[data-code]" if before is None else \
        f".qc-readout[data-code]:not([data-x='{before}'])"
    figure.locator(changed).wait_for()
    return figure.locator(".qc-readout")


def test_pointer_readouts_equal_the_engine(app):
    page = app.page
    if page.locator("#clear-file").is_visible():
        page.click("#clear-file")
    fill(page, values=TEXT, **CONFIG)
    calculate(page)
    page.wait_for_selector("#figures figure[data-figure=transfer] img")
    maps = engine_maps()
    for name in ("histogram", "transfer"):
        for target in (0.3, -1.7, float(VALUES.max()) - 0.01):
            line = point_at(page, name, target)
            x = float(line.get_attribute("data-x"))
            xlim = json.loads(page.get_attribute(f"#figures figure[data-figure={name}]",
                                                 "data-xlim"))
            assert abs(x - target) < (xlim[1] - xlim[0]) / 200  # within a pixel or two
            expected = api.readout(CONFIG, {"text": TEXT}, None, x)
            assert line.get_attribute("data-code") == str(expected["code"])
            assert float(line.get_attribute("data-reconstruction")) == expected["reconstruction"]
            if name == "histogram":
                edges = np.array(maps["histogram"]["readout"]["edges"])
                counts = maps["histogram"]["readout"]["counts"]
                i = min(int(np.searchsorted(edges, x, side="right")) - 1, len(counts) - 1)
                assert float(line.get_attribute("data-count")) == counts[i]
                assert f"{int(counts[i])} value" in line.inner_text()
            assert f"code {expected['code']}" in line.inner_text()


def test_the_figures_tables_hold_the_same_numbers(app):
    page = app.page
    maps = engine_maps()
    transfer = page.locator("#figures figure[data-figure=transfer] details")
    transfer.locator("summary").click()
    rows = [r.locator("td").all_inner_texts() for r in transfer.locator("tbody tr").all()]
    levels = maps["transfer"]["readout"]["levels"]
    assert len(rows) == len(levels) == 16  # 4 bits, asymmetric: every code is a step
    assert [int(r[2]) for r in rows] == [int(level[2]) for level in levels]
    assert [float(r[3]) for r in rows] == [float(f"{level[3]:.4g}") for level in levels]
    histogram = page.locator("#figures figure[data-figure=histogram] details")
    histogram.locator("summary").click()
    counts = [int(r.locator("td").nth(2).inner_text())
              for r in histogram.locator("tbody tr").all()]
    assert counts == [int(c) for c in maps["histogram"]["readout"]["counts"]]
    assert sum(counts) == len(VALUES)
