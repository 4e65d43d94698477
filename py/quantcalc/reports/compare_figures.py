"""The compare section's figures: SQNR against storage cost for every configuration compared
(the Pareto front joined, each point labelled where its label covers nothing), and the integer
bit-depth sweep. Drawn in the theme and style of reports/figures.py."""

import numpy as np
from matplotlib.text import Text

from quantcalc.reports.figure_style import ink, legend_below, new_figure, themed


COMPARE_TITLES = {
    "tradeoff": "SQNR against storage cost",
    "sweep": "Integer bit-depth sweep",
}


def _finite_sqnr(value, ceiling):
    return value if np.isfinite(value) else ceiling


def tradeoff_figure(rows):
    """SQNR (dB) against bits per value, one point per configuration, the Pareto front joined;
    each point labelled where its label covers no other label or point (see place_labels)."""
    with themed():
        fig, ax = new_figure(COMPARE_TITLES["tradeoff"])
        finite = [r["sqnr_db"] for r in rows if np.isfinite(r["sqnr_db"])]
        ceiling = (max(finite) + 10) if finite else 100
        points = [(r["bits_per_value"], _finite_sqnr(r["sqnr_db"], ceiling), r) for r in rows]
        for x, y, row in points:
            ax.plot(x, y, "o", ms=6, color=ink("original") if row["pareto"] else ink("muted"))
        front = sorted((r for r in rows if r["pareto"]), key=lambda r: r["bits_per_value"])
        ax.plot([r["bits_per_value"] for r in front],
                [_finite_sqnr(r["sqnr_db"], ceiling) for r in front], "-", color=ink("original"),
                lw=1.2, label="Pareto front")
        ax.plot([], [], "o", color=ink("muted"), label="dominated")
        ax.set_xlabel("bits per value (with scales)")
        ax.set_ylabel("SQNR (dB)")
        ax.margins(x=0.12, y=0.15)  # room for labels beside the outermost points
        legend_below(fig, ax)
        place_labels(fig, ax, [(x, y, row["label"]) for x, y, row in points])
    return fig


LABEL_GAP = 7  # points between a marker and its label


def _label_spots(max_rows):
    """Offsets (points) to try for a label, nearest first: right, left, then above and below on
    either side at growing distance (a leader line joins a label to its point when it moves
    off the point's row)."""
    spots = [(LABEL_GAP, 0, "left"), (-LABEL_GAP, 0, "right")]
    for k in range(1, max_rows + 1):
        for dy in (k * 11, -k * 11):
            spots += [(LABEL_GAP, dy, "left"), (-LABEL_GAP, dy, "right")]
    return spots


def place_labels(fig, ax, labelled):
    """Label each (x, y, text) at the first spot where its box overlaps no label placed before
    and no point, and stays inside the axes. Formats of near-equal bits per value (Q4_K, IQ4_NL,
    Q4_0 at 4.5) otherwise print their names on top of each other. Labels are left out of the
    layout so placing them does not move the axes they were measured in."""
    fig.draw_without_rendering()
    frame = ax.get_window_extent()
    to_pixels = ax.transData.transform
    obstacles = [_point_box(*to_pixels((x, y))) for x, y, _ in labelled]
    # the most crowded points first: they have the fewest free spots
    def crowding(item):
        px, py = to_pixels(item[:2])
        return -sum(1 for x, y, _ in labelled
                    if np.hypot(*(to_pixels((x, y)) - (px, py))) < 40)
    for x, y, text in sorted(labelled, key=crowding):
        label = None
        for dx, dy, ha in _label_spots(8):
            if label is not None:
                label.remove()
            label = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points",
                                fontsize=9, va="center", ha=ha, annotation_clip=False,
                                arrowprops=None if dy == 0 else {
                                    "arrowstyle": "-", "lw": 0.5, "color": ink("faint"),
                                    "shrinkA": 0, "shrinkB": 3})
            label.set_in_layout(False)
            box = text_box(label)
            inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
                      and box.y1 <= frame.y1)
            if inside and not any(box.overlaps(other) for other in obstacles):
                break
        obstacles.append(box)
    return fig


def text_box(annotation):
    """The box of an annotation's text alone (its own extent includes the leader line)."""
    annotation.update_positions(annotation.figure._get_renderer())
    return Text.get_window_extent(annotation)


def _point_box(px, py, half=4):
    from matplotlib.transforms import Bbox

    return Bbox([[px - half, py - half], [px + half, py + half]])


def sweep_figure(points):
    """SQNR of the integer format from 2 to 16 bits, with the 6.02 dB per bit reference line."""
    with themed():
        fig, ax = new_figure(COMPARE_TITLES["sweep"])
        bits = np.array([p["bits"] for p in points], float)
        sqnr = np.array([p["sqnr_db"] for p in points], float)
        ax.plot(bits, sqnr, "o-", color=ink("reconstructed"), label="measured SQNR")
        anchor = int(np.argmin(np.abs(bits - 8)))
        ax.plot(bits, sqnr[anchor] + 20 * np.log10(2) * (bits - bits[anchor]), ":",
                color=ink("ink"), label="6.02 dB per bit")
        ax.set_xlabel("bit depth")
        ax.set_ylabel("SQNR (dB)")
        legend_below(fig, ax)
    return fig
