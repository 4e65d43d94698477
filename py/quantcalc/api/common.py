"""What every facade call shares: errors as data, the last few results kept for the figures
and downloads that follow a request, and reports made from reports/exports.py's tables."""

import importlib
import json
import traceback
from collections import OrderedDict

from quantcalc.errors import QuantcalcError
from quantcalc.reports import tables as report

KEPT = 2  # the one shown, and the one before it whose figures may still be drawing


def kept_or_made(kept: OrderedDict, key, make):
    """The value kept under `key`, or make() kept under it (the last KEPT stay)."""
    if key is not None and key in kept:
        return kept[key]
    value = make()
    if key is not None:
        kept[key] = value
        while len(kept) > KEPT:
            kept.popitem(last=False)
    return value


def guarded(work):
    """Run `work()`; turn any failure into the error dict the page shows at a field."""
    try:
        return work()
    except QuantcalcError as exc:
        return {"error": exc.to_dict()}
    except MemoryError:
        return {"error": {"kind": "memory", "field": "values",
                          "message": "not enough memory for this tensor; try a smaller one"}}
    except Exception as exc:  # a bug: say so plainly, keep the trace for the console
        return {"error": {"kind": "internal", "field": "values",
                          "message": f"internal error: {type(exc).__name__}: {exc}",
                          "trace": traceback.format_exc()}}


def as_svg_text(on_figure, titles):
    """Adapt the page's on_figure(name, title, svg_text, pointer_map) to render's
    on_figure(name, bytes, pointer_map)."""
    if on_figure is None:
        return None
    return lambda name, data, where: on_figure(name, titles[name], data.decode("utf-8"),
                                               report.to_jsonable(where))


def exported(table: dict, kind: str, document) -> dict:
    """{"bytes", "mime"} of the report `kind` of one feature's table (reports.exports), made
    from document() (called only for a known kind: a typo must not cost an analysis)."""
    export = table.get(kind)
    if export is None:
        raise QuantcalcError(f"unknown report {kind!r}; the reports are {', '.join(table)}",
                             "download")
    module, _, name = export.maker.partition(":")
    make = getattr(importlib.import_module(module), name)
    return {"bytes": make(document()), "mime": export.mime}


def read_document(path, kind: str, what: str) -> dict:
    """The document `quantcalc <kind> --json PATH` wrote to `path` (its "kind" is
    quantcalc-<kind>), or one plain error at the field `kind`; `what` names it in a message
    ("a scan's", "an audit's")."""
    try:
        with open(path, "rb") as stream:
            doc = json.loads(stream.read().decode("utf-8"))
    except OSError as exc:
        raise QuantcalcError(f"cannot read {path}: {exc.strerror}", kind) from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise QuantcalcError(f"{path} is not {what} JSON ({exc})", kind) from None
    if not isinstance(doc, dict) or doc.get("kind") != f"quantcalc-{kind}":
        raise QuantcalcError(f"{path} is not the JSON of quantcalc {kind}", kind)
    return doc
