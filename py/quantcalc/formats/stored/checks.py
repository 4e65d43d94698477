"""Checks of arrays read from a checkpoint, whose shapes and dtypes are never trusted: each
failure is a `QuantcalcError` that names the tensor (its full name when the caller gives the
layer's) and says what is wrong and what was expected."""

import numpy as np

from quantcalc.errors import QuantcalcError, shortened

FIELD = "file"
_KINDS = {"i": "a signed integer", "u": "an unsigned integer", "iu": "an integer", "f": "a float"}


def label(layer: str, key: str) -> str:
    """The tensor's name in messages: `model.layers.0.mlp.down_proj.weight_scale`."""
    return f"{shortened(layer, 80)}.{key}" if layer else key


def refuse(message: str):
    raise QuantcalcError(message, FIELD)


def shape_text(shape) -> str:
    return "(" + ", ".join(str(int(n)) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def tensor(tensors, key: str, layer: str, *, needed_for: str = ""):
    """`tensors[key]` as a numpy array; a missing key is refused with what needs it."""
    if not hasattr(tensors, "get"):
        refuse(f"{label(layer, '*')}: the layer's tensors must be a mapping of name suffix to "
               f"array, not {type(tensors).__name__}")
    value = tensors.get(key)
    if value is None:
        why = f" ({needed_for} needs it)" if needed_for else ""
        present = ", ".join(sorted(str(k) for k in tensors)[:8]) or "none"
        refuse(f"{label(layer, key)} is missing{why}; the layer has: {present}")
    return array(value, label(layer, key))


def array(value, name: str):
    """`value` as a numpy array of numbers (an object or string array is refused)."""
    try:
        result = np.asarray(value)
    except (TypeError, ValueError) as error:
        refuse(f"{name} is not an array ({shortened(str(error), 60)})")
    if result.dtype.kind not in "biuf":
        refuse(f"{name} has dtype {result.dtype}, not numbers")
    return result


def kind(values, name: str, kinds: str, what: str = ""):
    """Refuse `values` unless its dtype kind is one of `kinds` ("i", "u", "iu", "f")."""
    if values.dtype.kind not in kinds:
        wanted = what or _KINDS.get(kinds, kinds)
        refuse(f"{name} has dtype {values.dtype}; it must be {wanted}")
    return values


def dtype(values, name: str, expected, what: str):
    """Refuse `values` unless its dtype is `expected` (byte order aside)."""
    if values.dtype.newbyteorder("=") != np.dtype(expected).newbyteorder("="):
        refuse(f"{name} has dtype {values.dtype}; {what} are stored as {np.dtype(expected)}")
    return values


def ndim(values, name: str, allowed, what: str):
    allowed = list(allowed)
    if values.ndim not in allowed:
        dims = f"{allowed[0]} to {allowed[-1]}" if len(allowed) > 2 else \
            " or ".join(str(n) for n in allowed)
        refuse(f"{name} has {values.ndim} dimensions {shape_text(values.shape)}; {what} has {dims}")
    return values


def shape(values, name: str, expected, what: str):
    """Refuse `values` unless its shape is `expected`; `what` says what it should hold."""
    expected = tuple(int(n) for n in expected)
    if tuple(values.shape) != expected:
        refuse(f"{name} has shape {shape_text(values.shape)}; expected {shape_text(expected)} for "
               f"{what}")
    return values


def working_dtype(*scales):
    """The float type the arithmetic runs in: the scales' own, widened to at least float32 (as
    torch computes a bf16/f16 product in float32 before rounding it to the stored type)."""
    return np.result_type(np.float32, *[s.dtype for s in scales if s.dtype.kind == "f"])
