"""Text fitted to a width on a PDF page: measured, wrapped at the places a name or a sentence
breaks, and abbreviated where it must be, keeping the part that tells one line from another.

Widths are in points (1/72 inch), measured from the font's glyph advances, each glyph measured
once: a report's table measures thousands of cells, and matplotlib's own text layout takes about
half a millisecond each (in the page's Pyodide, more). The sum of advances leaves out kerning,
which narrows a line by a percent or two, so a measured width is padded by SAFETY.

A line breaks after a space, a slash, or a dot that is not a decimal point
("encoder.layer.0." | "attention." but "0.01456" stays whole); a piece wider than the width is
broken between characters.
"""

import functools
import re

ELLIPSIS = "…"
SAFETY = 1.03           # measured widths are padded by 3 % (kerning and rounding), plus a point
_PIECE = re.compile(r".*?(?:\s+|/(?!\d)|(?<!\d)\.|\.(?!\d)|$)")


@functools.lru_cache(maxsize=16)
def _font(size, weight):
    """A private FT2Font at `size` points (72 dpi) for DejaVu Sans, or the font matplotlib
    finds for these properties; (font, advances cache)."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    path = font_manager.findfont(font_manager.FontProperties(size=size, weight=weight))
    font = FT2Font(path)
    font.set_size(size, 72)
    return font, {}


def width(text, size, weight="normal") -> float:
    """The width of one line of `text` in points, a little more rather than less."""
    from matplotlib.ft2font import LOAD_NO_HINTING

    font, advances = _font(float(size), weight)
    total = 0.0
    for char in text:
        advance = advances.get(char)
        if advance is None:
            advance = font.load_char(ord(char), flags=LOAD_NO_HINTING).linearHoriAdvance / 65536
            advances[char] = advance
        total += advance
    return total * SAFETY + 1.0 if text else 0.0


def pieces(text) -> list:
    """The text cut after each place a line may break; joined they are the text."""
    return [p for p in _PIECE.findall(text) if p]


def widest_piece(text, size, weight="normal") -> float:
    return max((width(p.rstrip(), size, weight) for p in pieces(text)), default=0.0)


def _split_long(piece, room, size, weight):
    """A piece wider than `room` in parts that fit, cut between characters."""
    parts, current = [], ""
    for char in piece:
        if current and width(current + char, size, weight) > room:
            parts.append(current)
            current = ""
        current += char
    return parts + [current] if current else parts


def _tail_chars(text, room, size, weight):
    """The longest end of `text` that fits `room` (at least one character)."""
    count = 1
    while count < len(text) and width(text[-(count + 1):], size, weight) <= room:
        count += 1
    return text[-count:]


def wrap(text, room, size, weight="normal") -> list:
    """The lines of `text` at most `room` points wide, filled from the left."""
    lines, current = [], ""
    for piece in pieces(text):
        if width((current + piece).rstrip(), size, weight) <= room:
            current += piece
            continue
        if current:
            lines.append(current.rstrip())
            current = ""
        if width(piece.rstrip(), size, weight) <= room:
            current = piece
        else:
            *whole, current = _split_long(piece, room, size, weight)
            lines += whole
    if current.rstrip() or not lines:
        lines.append(current.rstrip())
    return lines


def tail_lines(text, room, size, weight="normal", lines=1) -> list:
    """At most `lines` lines of `text`, each `room` points wide: the whole text when it fits,
    else "…" and as much of its end as fits, from a place a line breaks (a tensor's name keeps
    the part that tells it from its neighbours: "…layer.5.attention.output.dense.weight")."""
    whole = wrap(text, room, size, weight)
    if len(whole) <= lines:
        return whole
    rest, out = pieces(text), []
    while rest and len(out) < lines:
        last = len(out) == lines - 1
        limit = room - (width(ELLIPSIS, size, weight) if last else 0.0)
        line = ""
        while rest and width((rest[-1] + line).strip(), size, weight) <= limit:
            line = rest.pop() + line
        if not line:  # a piece wider than the line: its end here, cut between characters
            joined = "".join(rest)
            line = _tail_chars(joined, limit, size, weight)
            rest = [joined[:len(joined) - len(line)]] if len(line) < len(joined) else []
        out.insert(0, line.strip())
    if rest:
        out[0] = ELLIPSIS + out[0]
    return out


def head_lines(text, room, size, weight="normal", lines=3) -> list:
    """At most `lines` lines of `text` filled from the left, the last ending in "…" where the
    text goes on."""
    whole = wrap(text, room, size, weight)
    if len(whole) <= lines:
        return whole
    last = whole[lines - 1]
    while last and width(last + ELLIPSIS, size, weight) > room:
        last = last[:-1]
    return whole[:lines - 1] + [last.rstrip() + ELLIPSIS]
