"""The calculator's figures show what sets the range (issue 27): the values that set it are
marked and labelled, the quantization levels are drawn however many there are, counts can be
drawn on a log axis, and no title or label reaches past the figure's edge."""

import numpy as np
import pytest
from matplotlib.text import Text

from quantcalc import Config, analyze
from quantcalc.reports import figures

# MiniLM's encoder.layer.0.output.dense.weight in small: values of std 0.045 and one of 7.9
SMALL = np.random.default_rng(27).normal(0, 0.045, 50_000)
OUTLIER = SMALL.copy()
OUTLIER[31_337] = 7.9148


def result_of(values, **settings):
    return analyze(values, Config(**settings))


def marks(fig):
    """The labels of the range marks drawn in `fig` (their annotations' texts)."""
    return sorted(a.get_text() for a in fig.findobj(Text) if a.get_gid() == figures.RANGE_GID)


def levels(fig):
    found = [c for c in fig.axes[0].collections if c.get_gid() == figures.LEVELS_GID]
    return found[0] if found else None


def legend_texts(fig):
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_the_outlier_that_sets_the_range_is_marked_in_histogram_and_scatter():
    result = result_of(OUTLIER, bits=8)  # symmetric min-max: max |x| sets the range
    with figures.themed():
        hist, scatter = figures.histogram_figure(result), figures.values_figure(result)
    assert marks(hist) == marks(scatter) == ["max 7.915"]
    assert "max |x|: sets the range" in legend_texts(hist)
    # the scatter's thinned sample keeps the outlier (an even thinning of 50 000 to 4 000 drops it)
    xs = np.concatenate([line.get_xdata() for line in scatter.axes[0].lines
                         if line.get_marker() == "."])
    assert OUTLIER.max() in xs and OUTLIER.min() in xs


def test_asymmetric_min_max_marks_both_ends_and_other_calibrations_say_extremes():
    both = result_of(OUTLIER, bits=8, mode="asymmetric")
    with figures.themed():
        fig = figures.histogram_figure(both)
    assert marks(fig) == sorted([f"max {OUTLIER.max():.4g}", f"min {OUTLIER.min():.4g}"])
    assert "values setting the range" in legend_texts(fig)
    clipped = result_of(OUTLIER, bits=8, calibration="percentile", percentile=99.9)
    with figures.themed():
        fig = figures.histogram_figure(clipped)
    assert len(marks(fig)) == 2 and "smallest and largest values" in legend_texts(fig)


@pytest.mark.parametrize("bits, drawn", [(3, "lines"), (4, "lines"), (8, "ticks"), (16, None)])
def test_the_levels_are_drawn_however_many_there_are(bits, drawn):
    result = result_of(OUTLIER, bits=bits, mode="asymmetric")
    with figures.themed():
        fig = figures.histogram_figure(result)
    count = 2 ** bits  # asymmetric, not narrow: every code is a level
    found = levels(fig)
    if drawn is None:  # 65 536 levels: finer than the sweep that finds them; said, not drawn
        assert found is None
        assert any(t.startswith("levels finer than") for t in legend_texts(fig))
        return
    assert len(found.get_segments()) == count
    step = float(result.params.scale[0])
    xs = sorted(seg[0][0] for seg in found.get_segments())
    assert np.allclose(np.diff(xs), step)
    tops = {round(seg[1][1], 6) for seg in found.get_segments()}
    bottoms = {round(seg[0][1], 6) for seg in found.get_segments()}
    assert (bottoms, tops) == (({0.0}, {1.0}) if drawn == "lines" else ({0.94}, {1.0}))


def test_log_counts_draw_a_bin_of_one_value_beside_bins_of_thousands():
    result = result_of(OUTLIER, bits=8)
    with figures.themed():
        linear = figures.histogram_figure(result)
        log = figures.histogram_figure(result, log_counts=True)
    assert (linear.axes[0].get_yscale(), log.axes[0].get_yscale()) == ("linear", "log")
    assert log.axes[0].get_ylabel() == "count (log)"
    assert log.axes[0].get_ylim()[0] < 1  # a count of 1 stands above the axis
    svg = figures.render(result, names=("histogram",), log_counts=True)["histogram"]
    assert b"count (log)" in svg and b"max 7.915" in svg
    with pytest.raises(ValueError, match="unknown figure option"):
        figures.render(result, names=("histogram",), bogus=True)
    with pytest.raises(ValueError, match="unknown figure"):
        figures.render(result, names=("nope",))


def drawn_texts(fig):
    """The texts a drawing of `fig` shows: tick labels only of the ticks inside the view (the
    others exist as artists but are not drawn)."""
    ticks = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            ticks |= {id(t.label1) for t in axis._update_ticks()}
    tick_labels = {id(t) for ax in fig.axes for t in ax.get_xticklabels() + ax.get_yticklabels()}
    return [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()
            and (id(t) not in tick_labels or id(t) in ticks)]


def outside(fig):
    """Texts of `fig` whose drawn extent leaves the figure (after to_bytes has fitted them)."""
    fig.draw_without_rendering()
    box = fig.bbox
    return [t.get_text() for t in drawn_texts(fig)
            if not (box.x0 - 0.5 <= t.get_window_extent().x0
                    and t.get_window_extent().x1 <= box.x1 + 0.5
                    and box.y0 - 0.5 <= t.get_window_extent().y0
                    and t.get_window_extent().y1 <= box.y1 + 0.5)]


@pytest.mark.parametrize("values", [OUTLIER, SMALL * 1e6, SMALL[:50]])
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_no_title_label_or_legend_reaches_past_the_figure(values, theme):
    result = result_of(values, bits=8, mode="asymmetric")
    with figures.themed(theme):
        built = figures.build(result)
    for name, fig in built.items():
        figures.to_bytes(fig, "svg")
        assert outside(fig) == [], name
    title = built["histogram"].axes[0].title.get_text()
    assert title.replace("\n", " ") == figures.TITLES["histogram"]


def test_a_long_title_wraps_outside_mathtext_only():
    assert figures._split_outside_math(r"Transfer function $x \to \hat{x}$") == \
        "Transfer function\n$x \\to \\hat{x}$"
    assert figures._split_outside_math("Value distribution and quantization levels") == \
        "Value distribution and\nquantization levels"
    assert figures._split_outside_math("$a b c$") is None
