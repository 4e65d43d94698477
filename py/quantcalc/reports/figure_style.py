"""How quantcalc's figures look: matplotlib's style for a light or dark page (PDFs stay light),
the colour of each role, the figure size, and the two pieces every figure shares: a titled
figure and a legend under its axes.

Sized 4.2 x 3.6 in with 11 pt text: on a phone the page shows them about 320 px wide, where
that text is still 11 px high. Legends sit under the axes, where they cannot cover data.
"""

from contextlib import contextmanager

from quantcalc.reports.fontcache import repair_matplotlib_font_list

repair_matplotlib_font_list()  # before matplotlib loads its font manager (see reports/fontcache.py)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

# 4.2 in at 100 dpi: on a phone (about 320 px wide) 11 pt text is still 11 px high
FIGURE_SIZE = (4.2, 3.6)
STYLE = {
    "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 11,
    "svg.hashsalt": "quantcalc", "svg.fonttype": "path", "axes.grid": True, "grid.alpha": 0.3,
}
# Colours by role, per theme. The dark ones keep >= 4.5:1 contrast on the dark background.
PALETTES = {
    "light": {"original": "#1f5fa8", "reconstructed": "#d9480f", "bound": "#7048e8",
              "best": "#2b8a3e", "ink": "0.3", "faint": "0.55", "muted": "0.6", "axis": "black",
              "extreme": "#c2255c"},
    "dark": {"original": "#74a9f5", "reconstructed": "#ff8c5a", "bound": "#b197fc",
             "best": "#69db7c", "ink": "0.78", "faint": "0.5", "muted": "0.55", "axis": "white",
             "extreme": "#f783ac"},
}
DARK_BACKGROUND = "#1c2128"
THEME_STYLE = {
    "light": {},
    "dark": {"figure.facecolor": DARK_BACKGROUND, "axes.facecolor": DARK_BACKGROUND,
             "savefig.facecolor": DARK_BACKGROUND, "text.color": "#e6e8eb",
             "axes.labelcolor": "#e6e8eb", "axes.edgecolor": "#9aa4b1", "xtick.color": "#c9d1d9",
             "ytick.color": "#c9d1d9", "grid.color": "#8b949e", "legend.facecolor": "#262c34",
             "legend.edgecolor": "#5c6570"},
}
_screen_theme = "light"  # the page's colour scheme (set_theme); reports on paper stay light
_drawing = None          # the theme of the themed() block being drawn in, if any



def set_theme(name: str):
    """Draw the page's figures for a light or a dark page from now on."""
    global _screen_theme
    if name not in PALETTES:
        raise ValueError(f"unknown theme {name!r}")
    _screen_theme = name


@contextmanager
def themed(theme=None):
    """Draw in `theme`: matplotlib's style and the role colours. By default the enclosing
    block's theme (a PDF's figures stay light inside paper()), else the page's."""
    global _drawing
    theme = theme or _drawing or _screen_theme
    outer = _drawing
    _drawing = theme
    try:
        with matplotlib.rc_context({**STYLE, **THEME_STYLE[theme]}):
            yield
    finally:
        _drawing = outer


def paper():
    """The theme of a PDF report: light, whatever the page's."""
    return themed("light")


def ink(role: str) -> str:
    """The colour of a role (original, reconstructed, bound, ...) in the theme being drawn."""
    return PALETTES[_drawing or _screen_theme][role]


def math(text):
    """Plain text as matplotlib mathtext: x̂ and → drawn as symbols, not as "x_hat" and "->"."""
    return text.replace("x → x̂", r"$x \to \hat{x}$").replace("x̂", r"$\hat{x}$")


def new_figure(title):
    fig = Figure(figsize=FIGURE_SIZE, dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(math(title))
    return fig, ax


def legend_below(fig, ax, **options):
    """The legend under the axes, where it never covers data; in one column when two would be
    wider than the figure (its width depends on its labels only, not on the layout)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    labels = [math(label) for label in labels]
    legend = fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False,
                        **options)
    fig.draw_without_rendering()
    if legend.get_window_extent().width > fig.bbox.width:
        legend.remove()
        fig.legend(handles, labels, loc="outside lower center", ncols=1, frameon=False,
                   **options)
