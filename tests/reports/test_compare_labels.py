"""The compare figure's labels never cover each other (issue 27: at 4-4.5 bits per value several
formats sit at nearly the same x and their names printed on top of each other)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from quantcalc import api
from quantcalc.reports import compare_figures, figures

VALUES = ", ".join(f"{v:g}" for v in np.random.default_rng(0).standard_t(5, 4096).round(4))


def label_boxes(fig):
    """(text, box) of each point's label, in the figure as it is saved."""
    figures.to_bytes(fig, "svg")  # the layout a reader sees
    fig.draw_without_rendering()
    return [(a.get_text(), compare_figures.text_box(a)) for a in fig.axes[0].texts]


def overlaps(boxes):
    return [(a, b) for i, (a, box) in enumerate(boxes) for b, other in boxes[i + 1:]
            if box.overlaps(other)]


def outside_axes(fig, boxes):
    frame = fig.axes[0].get_window_extent()
    return [t for t, b in boxes if b.x0 < frame.x0 - 0.5 or b.x1 > frame.x1 + 0.5
            or b.y0 < frame.y0 - 0.5 or b.y1 > frame.y1 + 0.5]


@pytest.mark.parametrize("preset", ["common", "llama.cpp"])
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_no_two_labels_of_a_preset_comparison_overlap(preset, theme):
    specs = [c["spec"] for c in api.compare_presets()[preset]["configs"]]
    rows = api.compare({"text": VALUES}, specs, "t", sweep=False)["rows"]
    crowded = [r for r in rows if 4 <= r["bits_per_value"] <= 4.6]
    assert len(crowded) >= 3  # the case of the issue: several formats at 4-4.5 bits
    with figures.themed(theme):
        fig = compare_figures.tradeoff_figure(rows)
    boxes = label_boxes(fig)
    assert sorted(t for t, _ in boxes) == sorted(r["label"] for r in rows)
    assert overlaps(boxes) == []
    assert outside_axes(fig, boxes) == []


row = st.builds(lambda bits, sqnr, pareto, i: {"label": f"FMT{i}", "bits_per_value": bits,
                                                "sqnr_db": sqnr, "pareto": pareto},
                st.sampled_from([4.25, 4.28, 4.5, 4.5, 4.51, 5.0, 5.5, 8.0, 8.5]),
                st.floats(15, 45), st.booleans(), st.integers(0, 99))


@settings(max_examples=15, deadline=None)
@given(st.lists(row, min_size=2, max_size=9, unique_by=lambda r: r["label"]))
def test_labels_of_crowded_points_do_not_overlap(rows):
    fig = compare_figures.tradeoff_figure(rows)
    assert overlaps(label_boxes(fig)) == []


# llama.cpp's presets as the planner priced them on MiniLM (bits per weight, total error): the
# K-quant presets within 0.4 bits of each other printed their names on top of each other
PRESETS = [("Q2_K", 6.549, 442.272), ("Q3_K_S", 6.549, 442.272), ("Q3_K_M", 6.801, 266.91),
           ("Q3_K_L", 6.990, 234.734), ("Q4_K_S", 7.042, 104.56), ("Q4_K_M", 7.176, 90.8428),
           ("Q5_K_S", 7.343, 60.8105), ("Q5_K_M", 7.431, 56.4665), ("Q6_K", 8.294, 4.69346)]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_no_two_labels_of_the_planner_figure_overlap(theme):
    from quantcalc.plan import report as plan_report

    bits = np.linspace(4.35, 8.59, 40)
    curve = [{"bits_per_weight": float(b), "total_error": float(1e3 * 10 ** ((4.35 - b) / 1.5))}
             for b in bits]
    plan = {"curve": curve,
            "presets": [{"preset": name, "bits_per_weight": b, "preset_error": e}
                        for name, b, e in PRESETS],
            "bits_per_weight": 6.469, "total_error": 79.599, "metric": "MSE"}
    with figures.themed(theme):
        fig = plan_report.figure(plan)
    boxes = label_boxes(fig)
    assert sorted(t for t, _ in boxes) == sorted(name for name, _, _ in PRESETS)
    assert overlaps(boxes) == []
    assert outside_axes(fig, boxes) == []
    legend = fig.legends[0].get_window_extent()
    assert legend.y1 <= fig.axes[0].get_window_extent().y0  # under the axes, covering nothing
