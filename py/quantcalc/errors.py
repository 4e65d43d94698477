"""The one error type that crosses every boundary (CLI, page, tests).

A `QuantcalcError` is a `ValueError` with the name of the form field it concerns, so the page can
show the message next to that field and the CLI can print it on one line.
"""


import re

# C0 and C1 control characters (ESC starts terminal escape sequences), DEL, and the Unicode line
# and bidi controls: text from a file (a tensor name) must never steer a terminal or a page.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every control character written as an escape (\\x1b, \\u202e)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def shortened(text: str, limit: int = 30) -> str:
    """`text` cut to `limit` characters for a message ("..." marks the cut)."""
    return text if len(text) <= limit else text[:limit] + "..."


class QuantcalcError(ValueError):
    """Bad input or configuration, described so a user can act on it.

    Args:
        message: one line that says what is wrong and where.
        field: the configuration key / form field it concerns (``values``, ``file``, ``bits``,
            ``range_min``...).
        suggestion: settings that would be taken instead, as data ({"format": "q5_0"} for a
            llama.cpp type refused for its row length): the page offers them as one click.
    """

    def __init__(self, message: str, field: str = "values", suggestion: dict = None):
        message = printable(message)
        super().__init__(message)
        self.message = message
        self.field = field
        self.suggestion = dict(suggestion) if suggestion else None

    def to_dict(self) -> dict:
        out = {"kind": "input", "message": self.message, "field": self.field}
        if self.suggestion:
            out["try"] = dict(self.suggestion)
        return out
