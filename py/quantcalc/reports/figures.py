"""Figures of one analysis as matplotlib `Figure` objects (Agg; never pyplot), and their bytes.

  values     original vs reconstructed values (by index for short inputs, a scatter otherwise)
  error      the error per value (short inputs) or its histogram (long ones), with +-scale/2
  histogram  the distribution of the values with the quantization levels and clipping bounds
  transfer   the staircase x -> x̂ over the range, with the clipping bounds
Their look (theme, colours, size, legend) is reports/figure_style.py's; the compare section's
figures are reports/compare_figures.py.
"""

import io
from functools import partial

from quantcalc.errors import printable
from quantcalc.reports.figure_style import (  # noqa: F401 (the page's and reports' names)
    DARK_BACKGROUND, FIGURE_SIZE, PALETTES, STYLE, THEME_STYLE, ink, legend_below, math,
    new_figure, paper, set_theme, themed)

import matplotlib  # noqa: F401 (Agg chosen in figure_style; scan figures and tests use it)
from matplotlib.patches import Rectangle
from matplotlib.text import Text

import numpy as np


FIGURE_NAMES = ("values", "error", "histogram", "transfer")
TITLES = {
    "values": "Original vs reconstructed values",
    "error": "Quantization error",
    "histogram": "Value distribution and quantization levels",
    "transfer": "Transfer function x → x̂",
}
SHORT = 200        # up to this many values, plot each one
SCATTER_POINTS = 4000
# SVG ids of the marks a reader (and a test) looks for: the values that set the range and the
# quantization levels
RANGE_GID, LEVELS_GID = "range-values", "quantization-levels"
LEVEL_LINES = 64      # up to this many levels, each is a line across the histogram
LEVEL_TICKS = 1000    # up to this many, a tick along its foot (the sweep resolves them all)
def _sample(result):
    """Indices and values for plotting: the kept per-value results, thinned evenly if long. A
    thinned sample keeps the smallest and the largest value: one outlier may set the whole
    range, and an even thinning would drop it."""
    pv = result.per_value
    n = len(pv.original)
    if n <= SCATTER_POINTS:
        return np.arange(n), pv
    idx = np.linspace(0, n - 1, SCATTER_POINTS).astype(int)
    extremes = [int(np.argmin(pv.original)), int(np.argmax(pv.original))]
    return np.unique(np.concatenate((idx, extremes))), pv


def _range_values(result):
    """[(index, value, label)] of the shown values that set the range, and the legend's words
    for them. Min-max calibration takes its range from the extremes (symmetric: from the one of
    larger magnitude); another calibration does not, but the extremes still show how far the
    data reach beyond what it chose."""
    x = result.per_value.original
    lo_i, hi_i = int(np.argmin(x)), int(np.argmax(x))
    marks = [(lo_i, float(x[lo_i]), "min"), (hi_i, float(x[hi_i]), "max")]
    if lo_i == hi_i:  # constant values: one mark
        marks = marks[1:]
    if result.config.calibration != "minmax":
        return marks, "smallest and largest values"
    if result.config.mode == "symmetric" and len(marks) == 2:
        marks = [max(marks, key=lambda m: abs(m[1]))]
        return marks, "max |x|: sets the range"
    return marks, "values setting the range"


def _mark_range_values(ax, result, y_of=None):
    """Mark the values that set the range, each labelled with its value: on a histogram (y_of
    None) as a triangle at the foot of the axes, else at the point (x, y_of(index)). A single
    outlier is one count in a bin of thousands or one point among many: invisible unmarked."""
    marks, words = _range_values(result)
    lo, hi = ax.get_xlim()
    middle = (lo + hi) / 2
    artists = []
    for index, value, name in marks:
        ha = "right" if value > middle else "left"
        if y_of is None:
            xy, coords = (value, 0.0), ("data", "axes fraction")
            artists += ax.plot([value], [0.0], "^", ms=9, color=ink("extreme"), clip_on=False,
                               transform=ax.get_xaxis_transform(), zorder=5)
            offset = (0, 14)
        else:
            xy, coords = (value, y_of(index)), "data"
            artists += ax.plot([value], [y_of(index)], "o", ms=10, mfc="none", mew=1.5,
                               color=ink("extreme"), zorder=5)
            offset = (0, -16) if value > middle else (0, 12)
        artists.append(ax.annotate(f"{name} {value:.4g}", xy, xycoords=coords,
                                   xytext=offset, textcoords="offset points", ha=ha,
                                   va="center", fontsize=10, color=ink("extreme"),
                                   annotation_clip=False))
    for artist in artists:
        artist.set_gid(RANGE_GID)
    ax.plot([], [], "^" if y_of is None else "o", color=ink("extreme"),
            mfc=None if y_of is None else "none", label=words)


def values_figure(result):
    fig, ax = new_figure(TITLES["values"])
    idx, pv = _sample(result)
    if len(pv.original) <= SHORT:
        ax.plot(idx, pv.original[idx], "o-", color=ink("original"), label="original x", ms=4, lw=1)
        ax.plot(idx, pv.dequantized[idx], "s--", color=ink("reconstructed"),
                label="reconstructed x̂", ms=3, lw=1)
        ax.set_xlabel("index")
        ax.set_ylabel("value")
    else:
        ax.plot(pv.original[idx], pv.dequantized[idx], ".", color=ink("reconstructed"), ms=2,
                label="values (x, x̂)")
        lo, hi = float(pv.original.min()), float(pv.original.max())
        ax.plot([lo, hi], [lo, hi], "-", color=ink("original"), lw=1, label="x̂ = x")
        ax.set_xlabel("original x")
        ax.set_ylabel(math("reconstructed x̂"))
        _mark_range_values(ax, result, lambda i: float(pv.dequantized[i]))
    legend_below(fig, ax)
    return fig


def error_figure(result):
    fig, ax = new_figure(TITLES["error"])
    idx, pv = _sample(result)
    half_step = float(np.max(result.params.scale)) / 2
    if len(pv.original) <= SHORT:
        colors = np.where(pv.clipped[idx], ink("bound"), ink("reconstructed"))
        ax.bar(idx, pv.error[idx], color=colors, width=0.8)
        if pv.clipped[idx].any():  # the two colours of bar, named
            for role, label in (("reconstructed", "error"), ("bound", "clipped values")):
                ax.add_patch(Rectangle((0, 0), 0, 0, color=ink(role), label=label))
        ax.set_xlabel("index")
        ax.set_ylabel(math("error x − x̂"))
        for y, label in ((-half_step, f"±scale/2 = ±{half_step:.4g}"), (half_step, None)):
            ax.axhline(y, color=ink("ink"), ls=":", lw=1, label=label)
        ax.margins(y=0.15)  # the ±scale/2 lines inside the frame, not on it
    else:
        counts, edges, _ = ax.hist(pv.error, bins=80, color=ink("reconstructed"))
        fig.readout = {"kind": "errors", "edges": edges.tolist(), "counts": counts.tolist()}
        ax.set_yscale("log")  # clipped outliers are rare but large; a log count shows both
        ax.set_ylim(0.5, counts.max() * 2)  # bars from a count of 1
        ax.set_xlabel(math("error x − x̂"))
        ax.set_ylabel("count (log)")
        for x, label in ((-half_step, f"±scale/2 = ±{half_step:.4g}"), (half_step, None)):
            ax.axvline(x, color=ink("ink"), ls=":", lw=1, label=label)
    legend_below(fig, ax)
    ax.axhline(0, color=ink("axis"), lw=0.6)
    return fig


def _bounds(result):
    """Clipping bounds of the first segment: the reals that map to the ends of the grid."""
    lo, hi = result.scheme.grid_ends(result.params)
    return lo, hi, float(result.params.scale[0]), int(result.params.zero_point[0])


def _first_segment(result, xs):
    """(codes, x_hat, clipped) of `xs` with the first segment's parameters (stochastic rounding:
    its expectation's staircase, half-even)."""
    rounding = "half-even" if result.config.rounding == "stochastic" else result.config.rounding
    p = result.scheme.gather(result.params, None)
    return result.scheme.quantize(np.array(xs, np.float64, ndmin=1), p, rounding, None)


def _reconstruct_first_segment(result, xs):
    return _first_segment(result, xs)[1]


def readout(result, x: float) -> dict:
    """What the first segment does to one value x: its code, reconstruction and whether it is
    clipped (the page's readout under the pointer)."""
    codes, recon, clipped = _first_segment(result, [x])
    code = float(np.asarray(codes).reshape(-1)[0])
    return {"x": float(x), "code": int(code) if code.is_integer() else code,
            "reconstruction": float(np.asarray(recon).reshape(-1)[0]),
            "clipped": bool(np.asarray(clipped).reshape(-1)[0])}


LEVEL_ROWS = 64  # a transfer figure's table lists its steps when there are at most this many


def _levels(result, xs):
    """The staircase's steps over `xs`: [from, to, code, x_hat] where x_hat is constant (None
    when there are more than LEVEL_ROWS: the readout gives any one of them)."""
    codes, recon, _ = _first_segment(result, xs)
    change = np.flatnonzero(np.diff(recon) != 0) + 1
    starts = np.concatenate(([0], change))
    if len(starts) > LEVEL_ROWS:
        return None
    ends = np.concatenate((change - 1, [len(xs) - 1]))
    return [[float(xs[a]), float(xs[b]), float(codes[a]) + 0.0, float(recon[a]) + 0.0]
            for a, b in zip(starts, ends)]  # + 0.0: no "-0" in a table


def histogram_figure(result, log_counts=False):
    """The values' distribution with the quantization levels, the clipping bounds and the values
    that set the range; `log_counts` draws the counts on a log axis, where a bin of one value
    shows beside bins of thousands."""
    fig, ax = new_figure(TITLES["histogram"])
    pv = result.per_value
    lo, hi, scale, zp = _bounds(result)
    counts, edges, _ = ax.hist(pv.original, bins=min(100, max(10, len(pv.original) // 5)),
                               color=ink("original"), alpha=0.8, label="values")
    fig.readout = {"kind": "values", "edges": edges.tolist(), "counts": counts.tolist()}
    if log_counts:
        ax.set_yscale("log")
        ax.set_ylim(0.5, max(counts.max(), 1) * 2)  # bars from a count of 1
    _draw_levels(ax, result, lo, hi)
    for x in (lo, hi):
        ax.axvline(x, color=ink("bound"), ls="--", lw=1.2)
    ax.plot([], [], color=ink("bound"), ls="--", label="clipping bounds")
    _mark_range_values(ax, result)
    ax.set_xlabel("value")
    ax.set_ylabel("count (log)" if log_counts else "count")
    legend_below(fig, ax)
    if result.params.scale.size > 1:
        ax.text(0.01, 0.98, "bounds and levels of segment 0", transform=ax.transAxes, va="top",
                fontsize=10)
    return fig


def _draw_levels(ax, result, lo, hi):
    """The levels of the first segment: a line across the axes each when they are few, a tick
    along the foot each when they are many (256 levels over 300 pixels would be a grey wall),
    the step only when they are finer than the sweep that finds them can tell apart."""
    sweep = np.linspace(lo, hi, 20001)
    levels = np.unique(_reconstruct_first_segment(result, sweep))
    if len(levels) <= LEVEL_LINES:
        lines = ax.vlines(levels, 0, 1, transform=ax.get_xaxis_transform(), color=ink("faint"),
                          lw=0.5)
        label = f"{len(levels)} quantization levels"
    elif len(levels) <= LEVEL_TICKS:
        # along the top: the foot is where a bin of one value and the range marks are
        lines = ax.vlines(levels, 0.94, 1, transform=ax.get_xaxis_transform(),
                          color=ink("ink"), lw=0.5)
        label = f"{len(levels)} levels (ticks at top)"
    else:
        step = float(np.min(np.diff(levels)))
        ax.plot([], [], " ", label=f"levels finer than {step:.2g} apart")
        return
    lines.set_gid(LEVELS_GID)
    ax.plot([], [], color=lines.get_color()[0], lw=0.8, label=label)


def transfer_figure(result):
    fig, ax = new_figure(TITLES["transfer"])
    lo, hi, scale, zp = _bounds(result)
    data_lo, data_hi = float(result.per_value.original.min()), float(result.per_value.original.max())
    left, right = min(lo, data_lo), max(hi, data_hi)
    pad = 0.1 * ((right - left) or 1.0)
    xs = np.linspace(left - pad, right + pad, 4001)
    ax.plot(xs, _reconstruct_first_segment(result, xs), color=ink("reconstructed"), lw=1.2,
            label="x̂(x)")
    fig.readout = {"kind": "transfer", "levels": _levels(result, xs)}
    ax.plot(xs, xs, color=ink("original"), lw=0.8, ls=":", label="x")
    for x in (lo, hi):
        ax.axvline(x, color=ink("bound"), ls="--", lw=1)
    ax.set_xlabel("input x")
    ax.set_ylabel(math("reconstruction x̂"))
    legend_below(fig, ax)
    notes = []
    if result.params.scale.size > 1:
        notes.append("segment 0")
    if result.config.rounding == "stochastic":
        notes.append("expected staircase: half-even shown")
    if notes:
        ax.text(0.99, 0.02, "; ".join(notes), transform=ax.transAxes, ha="right", fontsize=10)
    return fig


BUILDERS = {"values": values_figure, "error": error_figure, "histogram": histogram_figure,
            "transfer": transfer_figure}
# options a figure takes beyond the analysis (the page's controls beside it)
OPTIONS = {"histogram": ("log_counts",)}


def _require_per_value(result):
    if result.per_value is None:
        raise ValueError("figures need per-value results (analyze with keep > 0)")


def build(result, names=FIGURE_NAMES):
    """{name: Figure} for an analysis whose per-value results were kept."""
    _require_per_value(result)
    with themed():
        return {name: BUILDERS[name](result) for name in names}


def to_bytes(fig, fmt="svg") -> bytes:
    """Serialise a figure; SVG/PDF output carries no date so equal input gives equal bytes."""
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else None
    printable_texts(fig)
    with themed():
        fit_titles(fig)
        fig.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


def _split_outside_math(text):
    """`text` in two lines at the space nearest its middle that is not inside $...$ (mathtext),
    or None when it has no such space."""
    spaces, inside = [], False
    for i, char in enumerate(text):
        if char == "$":
            inside = not inside
        elif char == " " and not inside:
            spaces.append(i)
    if not spaces:
        return None
    i = min(spaces, key=lambda s: abs(s - len(text) / 2))
    return text[:i] + "\n" + text[i + 1:]


def fit_titles(fig):
    """Wrap any axes title that reaches past the figure's edge onto two lines. A title is centred over its axes, which the y
    label pushes right: a title narrower than the figure may still be cut at the right edge
    (the histogram's was, at every width the page shows)."""
    for ax in fig.axes:
        title = ax.title
        for _ in range(2):  # at most two wraps: three lines
            fig.draw_without_rendering()
            box = title.get_window_extent()
            if box.x0 >= fig.bbox.x0 and box.x1 <= fig.bbox.x1:
                break
            lines = title.get_text().split("\n")
            longest = max(range(len(lines)), key=lambda i: len(lines[i]))
            split = _split_outside_math(lines[longest])
            if split is None:
                break
            lines[longest] = split
            title.set_text("\n".join(lines))
    return fig


def printable_texts(fig):
    """`fig` with every text in printable form: a name from a file may hold control characters,
    which have no glyph (matplotlib warns on stderr) and must not reach a page raw."""
    for text in fig.findobj(Text):
        if printable(text.get_text()) != text.get_text():
            text.set_text(printable(text.get_text()))
    return fig


def render_each(makers, fmt="svg", on_figure=None) -> dict:
    """{name: bytes} from {name: function making a Figure}, drawn one at a time;
    `on_figure(name, data, pointer_map)` is called as each one is ready, so a caller can show the
    first figure before the last is drawn."""
    out = {}
    for name, make in makers.items():
        with themed():
            fig = make()
        out[name] = to_bytes(fig, fmt)
        if on_figure is not None:
            on_figure(name, out[name], pointer_map(fig))
    return out


def pointer_map(fig) -> dict:
    """Where the (first) axes sit in the drawn figure and what they show, so the page can turn a
    pointer position into data coordinates: box = [left, bottom, width, height] as fractions of
    the figure (origin bottom left), the axis limits and scales, and the figure's readout (bins
    and counts of a histogram, the steps of a transfer function) if it has one."""
    ax = fig.axes[0]
    floats = lambda values: [float(v) for v in values]  # noqa: E731
    return {"box": floats(ax.get_position().bounds), "xlim": floats(ax.get_xlim()),
            "ylim": floats(ax.get_ylim()), "xscale": ax.get_xscale(), "yscale": ax.get_yscale(),
            "readout": getattr(fig, "readout", None)}


def render(result, fmt="svg", names=FIGURE_NAMES, on_figure=None, **options) -> dict:
    """{name: bytes} of the analysis figures (see render_each); `options` (OPTIONS) go to the
    figures that take them, e.g. log_counts=True to the histogram."""
    _require_per_value(result)
    unknown = set(options) - {o for taken in OPTIONS.values() for o in taken}
    if unknown:
        raise ValueError(f"unknown figure option {sorted(unknown)[0]!r}")
    bad = [name for name in names if name not in BUILDERS]
    if bad:
        raise ValueError(f"unknown figure {bad[0]!r}; figures: {', '.join(FIGURE_NAMES)}")
    makers = {name: partial(BUILDERS[name], result,
                            **{k: v for k, v in options.items() if k in OPTIONS.get(name, ())})
              for name in names}
    return render_each(makers, fmt, on_figure)
