"""The one error type that crosses every boundary (CLI, page, tests).

A `QuantcalcError` is a `ValueError` with the name of the form field it concerns, so the page can
show the message next to that field and the CLI can print it on one line.
"""


class QuantcalcError(ValueError):
    """Bad input or configuration, described so a user can act on it.

    Args:
        message: one line that says what is wrong and where.
        field: the configuration key / form field it concerns (``values``, ``file``, ``bits``,
            ``range_min``...).
    """

    def __init__(self, message: str, field: str = "values"):
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict:
        return {"kind": "input", "message": self.message, "field": self.field}
