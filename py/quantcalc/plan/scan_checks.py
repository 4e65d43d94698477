"""The scan document a plan is made from, checked before the planner reads a field of it.

A scan's JSON may have been edited by hand (or by a script), and the planner does arithmetic on
it: each field it reads is checked here for its type, its range and finiteness, and the tensors
for unique names (a tensor listed twice would be paid for once and counted twice). The first bad
place is named as the JSON spells it, on one line:

    scan.json: tensors[12].results[0].mse is -1.0; it must be a number ≥ 0

"inf" and "-inf" are numbers here, as the scan writes them (JSON has no infinity).
"""

import math

from quantcalc.errors import QuantcalcError, shortened
from quantcalc.formats.ggml.fallback import FALLBACK

FALLBACK_TYPES = frozenset(FALLBACK.values()) | {"F16"}

MAX_PARAMETERS = 2 ** 53  # a count float64 holds exactly: bits and errors stay exact products
MAX_BITS = 256            # bits per value: no format stores more (F32 is 32, scales included)
MAX_DIMS = 64             # numpy's limit
SCAN_KIND = "quantcalc-scan"


class _Bad(Exception):
    """A bad place: its path in the document and what is wrong with it."""


def check(doc, where: str = "the scan") -> None:
    """Raise QuantcalcError (field "scan") naming the first place in `doc` the planner cannot
    use; `where` names the document in the message (its file, or "the scan")."""
    try:
        _document(doc)
    except _Bad as exc:
        raise QuantcalcError(f"{where}: {exc}", "scan") from None


def shown(value) -> str:
    """A value as the message quotes it (JSON's spellings, long ones cut)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(shortened(value, 40))
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return shortened(repr(value) if isinstance(value, float) else str(value), 40)


def _bad(place, value, rule):
    return _Bad(f"{place} is {shown(value)}; it must be {rule}")


def _field(node, key, place, rule):
    if key not in node:
        raise _Bad(f"{place}.{key} is missing; it must be {rule}")
    return node[key]


def _number(node, key, place, rule, low, high, low_open=False):
    """node[key] as a float within [low, high] (or (low, high]), finite."""
    value = _field(node, key, place, rule)
    number = float(value) if value in ("inf", "-inf") else value
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise _bad(f"{place}.{key}", value, rule)
    try:
        number = float(number)
    except OverflowError:
        raise _bad(f"{place}.{key}", value, "a finite number") from None
    if not math.isfinite(number):
        raise _bad(f"{place}.{key}", value, "a finite number")
    if number < low or (low_open and number == low) or number > high:
        raise _bad(f"{place}.{key}", value, rule)
    return number


def _whole(value, place, rule, high):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise _bad(place, value, rule)
    return value


def _document(doc):
    if not isinstance(doc, dict) or doc.get("kind") != SCAN_KIND:
        raise _Bad("it is not the JSON of quantcalc scan")
    mark = doc.get("interrupted")
    if mark:
        done, total = (mark.get("tensors_done", "?"), mark.get("tensors_total", "?")) \
            if isinstance(mark, dict) else ("?", "?")
        raise _Bad(f"the scan was interrupted after {shown(done)} of {shown(total)} tensors; a "
                   f"plan needs every tensor: run the scan to the end")
    labels = _formats(_field(doc, "formats", "the document", "a list of formats"))
    rows = _field(doc, "tensors", "the document", "a list of tensors")
    if not isinstance(rows, list):
        raise _bad("tensors", rows, "a list of tensors")
    if not rows:
        raise _Bad("tensors is empty; a plan needs the scan's tensors")
    names, parameters, worst = {}, 0, []
    for i, row in enumerate(rows):
        count, errors = _row(row, f"tensors[{i}]", labels, names, i)
        parameters += count
        worst.append(max(errors, default=0.0))
    if parameters == 0:
        raise _Bad("the tensors hold no parameters")
    try:
        total = math.fsum(worst)
    except OverflowError:
        total = math.inf
    if not math.isfinite(total):
        raise _Bad("the tensors' errors add up beyond what a float64 holds")


def _formats(formats) -> list:
    if not isinstance(formats, list):
        raise _bad("formats", formats, "a list of formats")
    if not formats:
        raise _Bad("formats is empty; a plan needs at least one scanned format")
    labels = []
    for k, fmt in enumerate(formats):
        if not isinstance(fmt, dict):
            raise _bad(f"formats[{k}]", fmt, 'an object with a "label"')
        label = _field(fmt, "label", f"formats[{k}]", "the format's name")
        if not isinstance(label, str) or not label:
            raise _bad(f"formats[{k}].label", label, "the format's name")
        if label in labels:
            raise _Bad(f"formats[{k}].label {shown(label)} is also formats[{labels.index(label)}]"
                       f".label; each format must appear once")
        labels.append(label)
    return labels


def _row(row, place, labels, names, index):
    """(the tensor's parameters, the error of each of its candidates)."""
    if not isinstance(row, dict):
        raise _bad(place, row, "an object (a tensor's row)")
    name = _field(row, "name", place, "the tensor's name")
    if not isinstance(name, str) or not name:
        raise _bad(f"{place}.name", name, "the tensor's name")
    if name in names:
        raise _Bad(f"{place}.name {shown(name)} is also tensors[{names[name]}].name; each "
                   f"tensor must appear once")
    names[name] = index
    role = _field(row, "role", place, "the tensor's role")
    if not isinstance(role, str):
        raise _bad(f"{place}.role", role, "the tensor's role (text)")
    layer = _field(row, "layer", place, "a layer number or null")
    if layer is not None:
        _whole(layer, f"{place}.layer", "a layer number ≥ 0, or null", MAX_PARAMETERS)
    count = _parameters(row, place)
    results = _field(row, "results", place, "a list of results")
    if not isinstance(results, list):
        raise _bad(f"{place}.results", results, "a list of results (one per format)")
    seen, errors = set(), []
    for j, result in enumerate(results):
        error = _result(result, f"{place}.results[{j}]", labels, seen, count)
        if error is not None:
            errors.append(error)
    return count, errors


def _parameters(row, place) -> int:
    shape = _field(row, "shape", place, "a list of dimensions")
    if not isinstance(shape, list) or len(shape) > MAX_DIMS:
        raise _bad(f"{place}.shape", shape, f"a list of at most {MAX_DIMS} dimensions")
    product = 1
    for k, size in enumerate(shape):
        product *= _whole(size, f"{place}.shape[{k}]", f"a whole number from 0 to "
                          f"{MAX_PARAMETERS}", MAX_PARAMETERS)
        product = min(product, MAX_PARAMETERS + 1)
    rule = f"a whole number from 0 to {MAX_PARAMETERS}"
    count = _whole(_field(row, "parameters", place, rule), f"{place}.parameters", rule,
                   MAX_PARAMETERS)
    if count != product:
        raise _bad(f"{place}.parameters", count, f"the product of its shape {shape} "
                   f"({product:,})" if product <= MAX_PARAMETERS else
                   f"the product of its shape {shape}, which is beyond {MAX_PARAMETERS}")
    return count


def _result(result, place, labels, seen, count):
    """The error (MSE x parameters) of one candidate, or None when the format refused it."""
    if not isinstance(result, dict):
        raise _bad(place, result, "an object (one format's result)")
    label = _field(result, "format", place, "one of the scan's formats")
    if not isinstance(label, str) or label not in labels:
        raise _bad(f"{place}.format", label, f"one of the scan's formats ({', '.join(labels)})")
    if label in seen:
        raise _Bad(f"{place}.format {shown(label)} is listed twice for this tensor")
    seen.add(label)
    measured_as = result.get("measured_as")
    if measured_as is not None and measured_as not in FALLBACK_TYPES:
        raise _bad(f"{place}.measured_as", measured_as, "null, or the type llama-quantize falls "
                   f"back to ({', '.join(sorted(FALLBACK_TYPES))})")
    error = _field(result, "error", place, "null, or the reason the format refused the tensor")
    if error is not None:
        if not isinstance(error, str):
            raise _bad(f"{place}.error", error, "null, or the reason the format refused the "
                       "tensor")
        return None
    _number(result, "bits_per_value", place, f"a number > 0 and ≤ {MAX_BITS}", 0.0, MAX_BITS,
            low_open=True)
    worst = 0.0
    for key in ("mse", "weighted_mse"):
        if key == "weighted_mse" and result.get(key) is None:
            continue
        mse = _number(result, key, place, "a number ≥ 0", 0.0, math.inf)
        if not math.isfinite(mse * count):
            raise _bad(f"{place}.{key}", result[key], f"small enough that times the tensor's "
                       f"{count:,} parameters it stays within a float64")
        worst = max(worst, mse * count)
    return worst
