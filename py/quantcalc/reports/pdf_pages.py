"""A4 pages for the PDF reports: headings, tables that continue over pages with their header
repeated, wrapped text, and figures two to a page at one size. Nothing is cut at a page's or a
cell's edge: text is measured and wrapped (reports/text_fit.py), a long name abbreviated from
the left so its distinguishing tail stays, paragraphs continue on the next page.

Every string is drawn as plain text: names come from users and files, and "$5 and $6" must not
be read as mathtext (nor "$\\frac{$" crash); and in printable form (errors.printable): a control
character has no glyph (matplotlib warns on stderr) and must not reach a page raw. matplotlib is
imported by the caller's first page.
"""

import io

from matplotlib.figure import Figure

from quantcalc.errors import printable
from quantcalc.records import record
from quantcalc.reports import text_fit

A4 = (8.27, 11.69)            # inches, portrait
WIDTH_PT, HEIGHT_PT = A4[0] * 72, A4[1] * 72
LEFT, RIGHT = 0.08, 0.92      # page margins as fractions of the width
TOP, BOTTOM = 0.95, 0.05
TABLE_BOTTOM = 0.02           # a table continued on the next page may run this low
LINE = 0.016                  # one line of 9 pt text, as a fraction of the page height
ROWS_PER_PAGE = 44            # table rows on a page below its title and a line of text
FIGURE_DPI = 200              # figures are placed as images of this resolution
TITLE, SUBTITLE, BODY, CELL = 16, 10, 9, 8.5  # font sizes in points
TITLE_LINES, SUBTITLE_LINES, CELL_LINES, NAME_LINES = 3, 3, 4, 2
ROW = LINE * 1.15             # a table row of one line
MORE_LINE = CELL * 1.2 / HEIGHT_PT  # each further line of a cell
CELL_PAD = 0.1                # matplotlib's Cell.PAD: the text starts this share into its cell
NAME_SHARE = 0.35             # a names column gives way to this share of the table's width


def _room(share):
    """Points of text on one line across `share` of the page's width."""
    return share * WIDTH_PT - 2.0


def new_page(title=None, subtitle=None):
    """An A4 page, with a title (and a line under it) if given, each wrapped to the page's
    width; returns (page, y) where y is the height below which the page is free."""
    page = Figure(figsize=A4)
    y = TOP
    if title:
        lines = text_fit.head_lines(printable(title), _room(RIGHT - LEFT), TITLE, "bold",
                                    TITLE_LINES)
        page.text(LEFT, y, "\n".join(lines), fontsize=TITLE, weight="bold", va="top",
                  parse_math=False, linespacing=1.15)
        y -= 0.03 + (len(lines) - 1) * TITLE * 1.15 / HEIGHT_PT
    if subtitle:
        y = subtitle_line(page, y, subtitle)
    return page, y


def subtitle_line(page, y, subtitle):
    """A line (or a few) of 10 pt text under a title; returns the y below it."""
    lines = text_fit.head_lines(printable(subtitle), _room(RIGHT - LEFT), SUBTITLE,
                                lines=SUBTITLE_LINES)
    page.text(LEFT, y, "\n".join(lines), fontsize=SUBTITLE, va="top", parse_math=False)
    return y - 0.025 - (len(lines) - 1) * SUBTITLE * 1.2 / HEIGHT_PT


def heading(page, y, text, left=LEFT):
    page.text(left, y, printable(text), fontsize=12, weight="bold", va="top",
              parse_math=False)
    return y - 0.028


def _paragraph(item, bullet):
    """The lines of one paragraph, the bullet on its first."""
    indent = text_fit.width(bullet, BODY) / WIDTH_PT if bullet else 0.0
    return text_fit.wrap(printable(item), _room(RIGHT - LEFT - indent), BODY), indent


def text(page, y, lines, bullet="• "):
    """Wrapped lines of text (each item a paragraph with a bullet); returns the y below them."""
    for item in lines:
        y = _draw_paragraph(page, y, *_paragraph(item, bullet), bullet)
    return y - 0.01


def _draw_paragraph(page, y, lines, indent, bullet):
    if bullet:
        page.text(LEFT, y, bullet, fontsize=BODY, va="top", parse_math=False)
    for line in lines:
        page.text(LEFT + indent, y, line, fontsize=BODY, va="top", parse_math=False,
                  family="DejaVu Sans")
        y -= LINE
    return y


def paragraphs(pages, page, y, title, items, bullet="• "):
    """A heading and wrapped paragraphs from y down, continued on new pages under "title
    (continued)" where a page ends (each full page is saved); returns (page, y) of the last
    page, not yet saved."""
    first = True
    for item in items:
        lines, indent = _paragraph(item, bullet)
        needed = len(lines) * LINE + (0.028 if first else 0.0)
        if y - needed < BOTTOM:
            pages.savefig(page)
            page, y = new_page()
            y = heading(page, y, f"{title} (continued)" if not first else title)
        elif first:
            y = heading(page, y, title)
        first = False
        y = _draw_paragraph(page, y, lines, indent, bullet)
    return page, y - 0.01


@record
class Layout:
    """A table fitted to its width: the columns' shares of it, the header's and each row's cell
    texts (lines joined by newlines) and heights (fractions of the page's height)."""

    shares: list
    header: list
    header_height: float
    rows: list
    heights: list


def _need(text_width):
    """The cell width (points) whose text room holds `text_width`."""
    return (text_width + 2.0) / (1 - CELL_PAD)


def _column_widths(rows, columns, total, widths, names):
    """Each column's width in points: the widths asked for when every column's text fits them
    on one line; else each column as wide as its text (its header may wrap) up to a width
    common to the widest ones (so short columns stay on one line and long text wraps), never
    narrower than its longest word, a column of names giving way first (abbreviated from the
    left)."""
    count = len(columns)
    cells = [max([text_fit.width(row[i], CELL) for row in rows]) for i in range(count)]
    heads = [text_fit.width(columns[i], CELL, "bold") for i in range(count)]
    natural = [_need(max(cells[i], heads[i])) for i in range(count)]
    if widths and all(share * total >= n for share, n in zip(widths, natural)):
        return [share * total / sum(widths) for share in widths]
    if sum(natural) <= total:
        return [n * total / sum(natural) for n in natural]
    head_words = [text_fit.widest_piece(c, CELL, "bold") for c in columns]
    wants = [_need(max(cells[i], head_words[i])) for i in range(count)]
    floors = []
    for i in range(count):
        words = max([head_words[i]] + [text_fit.widest_piece(row[i], CELL) for row in rows])
        floors.append(min(wants[i], NAME_SHARE * total if i in names else _need(words)))
    fitted = _fill(wants, floors, total)
    spare = total - sum(fitted)
    if spare > 0:  # every cell on one line: the headers take the rest
        more = [n - w for n, w in zip(natural, fitted)]
        fitted = [w + spare * m / sum(more) for w, m in zip(fitted, more)]
    return fitted


def _fill(wants, floors, total):
    """Widths of at most `total` together: each its want up to a cap common to the widest,
    each at least its floor (scaled down together when even the floors do not fit)."""
    if sum(floors) >= total:
        return [f * total / sum(floors) for f in floors]
    fixed = {}
    while True:
        free = sorted((i for i in range(len(wants)) if i not in fixed), key=wants.__getitem__)
        budget, cap = total - sum(fixed.values()), None
        for k, i in enumerate(free):
            if wants[i] * (len(free) - k) > budget:
                cap = budget / (len(free) - k)
                break
            budget -= wants[i]
        out = [fixed.get(i, wants[i] if cap is None else min(wants[i], cap))
               for i in range(len(wants))]
        low = [i for i in free if out[i] < floors[i]]
        if not low:
            return out
        fixed.update({i: floors[i] for i in low})


def layout(rows, columns, share, widths=None, names=()):
    """The table's Layout across `share` of the page's width."""
    columns = [printable(str(c)) for c in columns]
    rows = [[printable(str(c)) for c in row] for row in rows]
    total = share * WIDTH_PT
    points = _column_widths(rows, columns, total, widths, set(names))
    rooms = [w * (1 - CELL_PAD) - 2.0 for w in points]
    header = [text_fit.head_lines(c, room, CELL, "bold", CELL_LINES)
              for c, room in zip(columns, rooms)]
    cells = [[text_fit.tail_lines(c, room, CELL, lines=NAME_LINES) if i in names else
              text_fit.head_lines(c, room, CELL, lines=CELL_LINES)
              for i, (c, room) in enumerate(zip(row, rooms))] for row in rows]

    def height(row):
        return ROW + (max(len(lines) for lines in row) - 1) * MORE_LINE
    return Layout([w / total for w in points], ["\n".join(h) for h in header], height(header),
                  [["\n".join(c) for c in row] for row in cells], [height(row) for row in cells])


def draw_table(page, y, fitted, start=0, stop=None, left=LEFT, right=RIGHT):
    """Rows start..stop of a Layout as a table with a bold header from height y down; returns
    the y below it."""
    rows, heights = fitted.rows[start:stop], fitted.heights[start:stop]
    height = fitted.header_height + sum(heights)
    ax = page.add_axes([left, y - height, right - left, height])
    ax.axis("off")
    drawn = ax.table(cellText=rows, colLabels=fitted.header, loc="upper left",
                     colWidths=fitted.shares, bbox=[0, 0, 1, 1], cellLoc="left",
                     colLoc="left")
    drawn.auto_set_font_size(False)
    drawn.set_fontsize(CELL)
    for (r, _), cell in drawn.get_celld().items():
        cell.set_height(fitted.header_height if r == 0 else heights[r - 1])
        cell.get_text().set_parse_math(False)
        cell.set_linewidth(0.3)
        if r == 0:
            cell.get_text().set_weight("bold")
            cell.set_facecolor("#eef1f5")
    return y - height - 0.02


def table(page, y, rows, columns, widths=None, left=LEFT, right=RIGHT, names=()):
    """A table with a bold header from height y down, between `left` and `right`; returns the
    y below it. `widths` are the columns' shares of its width, kept where the text fits them;
    the columns in `names` hold names, abbreviated from the left where they must be."""
    if not rows:
        return y
    return draw_table(page, y, layout(rows, columns, right - left, widths, names), left=left,
                      right=right)


def paginated_table(pages, title, rows, columns, subtitle=None, widths=None,
                    per_page=ROWS_PER_PAGE, names=()):
    """A long table over as many A4 pages as it needs, its header on every page, at most
    `per_page` rows to a page (fewer where rows of several lines fill it first)."""
    fitted = layout(rows, columns, RIGHT - LEFT, widths, names)
    total, start = len(rows), 0
    while start < max(total, 1):
        page, y = new_page(title if start == 0 else f"{title} (continued)")
        more_at, y = y, (y - 0.025 if total > per_page else y)
        if subtitle and start == 0:
            y = text(page, y, [subtitle], bullet="")
        stop, room = start, y - TABLE_BOTTOM - fitted.header_height
        while stop < total and stop - start < per_page and (
                stop == start or room >= fitted.heights[stop]):
            room -= fitted.heights[stop]
            stop += 1
        if total > per_page:
            page.text(LEFT, more_at, f"Rows {start + 1}–{stop} of {total}", fontsize=SUBTITLE,
                      va="top")
        if total:
            draw_table(page, y, fitted, start, stop)
        pages.savefig(page)
        start = max(stop, start + 1)


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
