"""A4 pages for the PDF reports: headings, tables that continue over pages with their header
repeated, wrapped text, and figures two to a page at one size.

Every string is drawn as plain text: names come from users and files, and "$5 and $6" must not
be read as mathtext (nor "$\\frac{$" crash); and in printable form (errors.printable): a control
character has no glyph (matplotlib warns on stderr) and must not reach a page raw. matplotlib is
imported by the caller's first page.
"""

import io
import textwrap

from matplotlib.figure import Figure

from quantcalc.errors import printable

A4 = (8.27, 11.69)            # inches, portrait
LEFT, RIGHT = 0.08, 0.92      # page margins as fractions of the width
TOP, BOTTOM = 0.95, 0.05
LINE = 0.016                  # one line of 9 pt text, as a fraction of the page height
ROWS_PER_PAGE = 44            # table rows on a page below its title and a line of text
FIGURE_DPI = 200              # figures are placed as images of this resolution


def new_page(title=None, subtitle=None):
    """An A4 page, with a title (and a line under it) if given; returns (page, y) where y is
    the height below which the page is free."""
    page = Figure(figsize=A4)
    y = TOP
    if title:
        page.text(LEFT, y, printable(title), fontsize=16, weight="bold", va="top",
                  parse_math=False)
        y -= 0.03
    if subtitle:
        page.text(LEFT, y, printable(subtitle), fontsize=10, va="top", parse_math=False)
        y -= 0.025
    return page, y


def heading(page, y, text, left=LEFT):
    page.text(left, y, printable(text), fontsize=12, weight="bold", va="top",
              parse_math=False)
    return y - 0.028


def text(page, y, lines, width=100, bullet="• "):
    """Wrapped lines of text (each item a paragraph with a bullet); returns the y below them."""
    for item in lines:
        for k, line in enumerate(textwrap.wrap(printable(item), width - len(bullet)) or [""]):
            page.text(LEFT, y, (bullet if k == 0 else " " * len(bullet)) + line, fontsize=9,
                      va="top", parse_math=False, family="DejaVu Sans")
            y -= LINE
    return y - 0.01


def table(page, y, rows, columns, widths=None, left=LEFT, right=RIGHT):
    """A table with a bold header from height y down, between `left` and `right`; returns the
    y below it. `widths` are the columns' shares of its width."""
    if not rows:
        return y
    height = LINE * 1.15 * (len(rows) + 1)
    ax = page.add_axes([left, y - height, right - left, height])
    ax.axis("off")
    drawn = ax.table(cellText=[[printable(str(c)) for c in row] for row in rows],
                     colLabels=[printable(str(c)) for c in columns],
                     loc="upper left", colWidths=widths, bbox=[0, 0, 1, 1], cellLoc="left",
                     colLoc="left")
    drawn.auto_set_font_size(False)
    drawn.set_fontsize(8.5)
    for (r, _), cell in drawn.get_celld().items():
        cell.get_text().set_parse_math(False)
        cell.set_linewidth(0.3)
        if r == 0:
            cell.get_text().set_weight("bold")
            cell.set_facecolor("#eef1f5")
    return y - height - 0.02


def paginated_table(pages, title, rows, columns, subtitle=None, widths=None,
                    per_page=ROWS_PER_PAGE):
    """A long table over as many A4 pages as it needs, its header on every page."""
    total = len(rows)
    for start in range(0, max(total, 1), per_page):
        part = rows[start:start + per_page]
        more = f"Rows {start + 1}–{start + len(part)} of {total}" if total > per_page else ""
        page, y = new_page(title if start == 0 else f"{title} (continued)", more or None)
        if subtitle and start == 0:
            y = text(page, y, [subtitle], bullet="")
        table(page, y, part, columns, widths)
        pages.savefig(page)


def figure_pages(pages, figures, title=None):
    """The figures two to an A4 page, each at the same size (drawn as it is on screen)."""
    from matplotlib.image import imread

    from quantcalc.reports.figures import printable_texts

    for start in range(0, len(figures), 2):
        page, y = new_page(title if start == 0 else None)
        slot = (y - BOTTOM) / 2
        for k, fig in enumerate(figures[start:start + 2]):
            buffer = io.BytesIO()
            printable_texts(fig).savefig(buffer, format="png", dpi=FIGURE_DPI)
            buffer.seek(0)
            image = imread(buffer)
            ax = page.add_axes([LEFT, y - (k + 1) * slot + 0.01, RIGHT - LEFT, slot - 0.02])
            ax.imshow(image, interpolation="lanczos")
            ax.axis("off")
        pages.savefig(page)
