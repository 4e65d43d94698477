"""The settings schema: every setting of an analysis, declared once.

Each setting has its key (the one name used in JSON, CSV, links, CLI flags and the page's form),
its kind, choices, default, bounds, label and help, and the rule that says when it applies:
  - the format must let the user change it (registry.Format.settings), and
  - each setting it `requires` must apply and hold one of the listed values (the percentile
    applies only when the calibration is "percentile").
A setting that does not apply is ignored, never an error, unless the user gave it a value that
contradicts the format (asymmetric mode for FP8): that is refused at its field.

`Config` (engine/config.py) converts and checks values with `convert`; argparse builds the command-line
options from `SETTINGS` (cli/main.py); build.py writes `page_schema()` into the site, and the page builds
its form, its hidden/disabled states and its link-parameter checks from that copy.

Plain Python with no numpy, so build.py can read it without the engine's dependencies.
"""

import math
import re
from dataclasses import field

from quantcalc.records import record
from quantcalc.schema import fields
from quantcalc.schema import file_types
from quantcalc.schema import grades
from quantcalc.schema import registry
from quantcalc.errors import QuantcalcError

# One number syntax for the engine and the page's link check: ASCII digits only (Python's float()
# would also take "1_000", "٣" and "inf"), so a value the page accepts the engine accepts too.
NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_NUMBER = re.compile(NUMBER, re.ASCII)
_WHOLE = re.compile(r"^[+-]?\d+$", re.ASCII)
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
NAME_LENGTH = 200


@record(frozen=True)
class Setting:
    """One setting.

    Args:
        key: its name everywhere (JSON, CSV, links, page); the CLI flag is --key-with-dashes.
        label: the form's label.
        kind: "choice", "int", "real", "flag" or "text".
        default: the value when none is given (None: decided by the format, e.g. block size).
        choices: (value, label, group) for "choice" settings, in menu order.
        minimum, maximum: bounds of a number (inclusive); exclusive_minimum for (0, 100].
        requires: {other key: allowed values}: applies only when each holds.
        help: one line under the field and in --help.
        unit: a word after the number, if any.
    """

    key: str
    label: str
    kind: str
    default: object
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    requires: dict = field(default_factory=dict)
    help: str = ""

    def options(self) -> tuple:
        """(value, label, group) of each choice; the format's are read from the registry when
        asked, so a row added there is a choice everywhere."""
        return self.choices() if callable(self.choices) else self.choices

    @property
    def values(self) -> tuple:
        return tuple(value for value, _, _ in self.options())

    def to_dict(self) -> dict:
        out = {"key": self.key, "label": self.label, "kind": self.kind, "default": self.default,
               "help": self.help, "requires": {k: list(v) for k, v in self.requires.items()}}
        if self.choices:
            out["choices"] = [{"value": v, "label": label, "group": group}
                              for v, label, group in self.options()]
        for bound in ("minimum", "maximum", "exclusive_minimum"):
            if getattr(self, bound) is not None:
                out[bound] = getattr(self, bound)
        return out


MODES = ("symmetric", "asymmetric")
ROUNDINGS = ("half-even", "half-away", "floor", "ceil", "toward-zero", "stochastic")
CALIBRATIONS = registry.ALL_CALIBRATIONS
GRANULARITIES = ("tensor", "channel", "group")
MIN_BITS, MAX_BITS = 2, 16
MAX_BLOCK = 1 << 31  # a block or group longer than any row a wasm32 array can hold
MAX_SEED = (1 << 32) - 1  # numpy's classic seed range; exact as a JavaScript number

SETTINGS = (
    Setting("name", "Tensor name", "text", "tensor",
            help="A label for the results and reports (the file's tensor name by default)."),
    Setting("format", "Format", "choice", "int",
            choices=lambda: tuple(
                (f.name, f.label, f.menu)
                for f in registry.FORMATS),
            help="Block formats give each block of values along the last axis its own scale "
                 "(and some a min)."),
    Setting("block_size", "Block size", "int", None, minimum=1, maximum=MAX_BLOCK,
            help="Values per block along the last axis."),
    Setting("bits", "Bit depth", "int", 8, minimum=MIN_BITS, maximum=MAX_BITS,
            help="2 to 16 bits (8 = INT8, 4 = INT4)."),
    Setting("mode", "Mode", "choice", "symmetric",
            choices=(("symmetric", "Symmetric signed (zero point 0)", ""),
                     ("asymmetric", "Asymmetric (unsigned, zero point)", "")),
            help="Symmetric suits values centred on 0; asymmetric one-sided data."),
    Setting("narrow_range", "Narrow range (q_min = −q_max)", "flag", False,
            requires={"mode": ("symmetric",)},
            help="Drop the most negative code so the grid is symmetric (TensorRT, ONNX Runtime "
                 "weights)."),
    Setting("rounding", "Rounding", "choice", "half-even",
            choices=(("half-even", "Half to even (frameworks' default)", ""),
                     ("half-away", "Half away from zero", ""),
                     ("floor", "Floor", ""),
                     ("ceil", "Ceil", ""),
                     ("toward-zero", "Toward zero", ""),
                     ("stochastic", "Stochastic (seeded)", "")),
            help="How a value exactly between two grid points is rounded; PyTorch, TensorRT "
                 "and ONNX Runtime round half to even."),
    Setting("convention", "Framework convention", "choice", "exact",
            choices=(("exact", "Exact (float64)", ""), ("pytorch", "PyTorch", ""),
                     ("onnxruntime", "ONNX Runtime", ""),
                     ("tensorrt", "TensorRT (ModelOpt)", "")),
            help="Reproduce a framework's scale rule, float32 arithmetic and calibrators bit "
                 "for bit; settings it does not offer are refused with the reason."),
    Setting("seed", "Random seed", "int", 0, minimum=0, maximum=MAX_SEED,
            requires={"rounding": ("stochastic",)},
            help="The same seed gives the same stochastic rounding."),
    Setting("calibration", "Range source", "choice", "minmax",
            choices=(("minmax", "Min–max", "From samples"),
                     ("percentile", "Percentile", "From samples"),
                     ("mse", "MSE-optimal clipping", "From samples"),
                     ("entropy", "Entropy / KL (TensorRT)", "From samples"),
                     ("custom", "Custom range", "")),
            help="Where the range the grid covers comes from."),
    Setting("percentile", "Percentile", "real", 99.99, exclusive_minimum=0, maximum=100,
            requires={"calibration": ("percentile",)},
            help="Of |x| in symmetric mode; both tails in asymmetric mode."),
    Setting("range_min", "Range min", "real", -1.5, requires={"calibration": ("custom",)},
            help="Values below are clipped."),
    Setting("range_max", "Range max", "real", 1.5, requires={"calibration": ("custom",)},
            help="Values above are clipped."),
    Setting("granularity", "Granularity", "choice", "tensor",
            choices=(("tensor", "Per tensor", ""), ("channel", "Per channel", ""),
                     ("group", "Per group", "")),
            help="Which values share one scale and zero point."),
    Setting("axis", "Channel axis", "int", 0, minimum=-32, maximum=31,
            requires={"granularity": ("channel",)},
            help="The axis whose every index has its own scale (0 = rows)."),
    Setting("group_size", "Group size", "int", 32, minimum=1, maximum=MAX_BLOCK,
            requires={"granularity": ("group",)},
            help="Consecutive values along the last axis."),
)
BY_KEY = {s.key: s for s in SETTINGS}
DEFAULTS = {s.key: s.default for s in SETTINGS}

# Controls that only some formats have: hidden, not shown disabled, where the format has none.
HIDDEN_WHEN_OFF = ("narrow_range", "block_size")
# Why a control is off for a format, in the user's words (shown beside the disabled control).
_NOT_APPLICABLE = {
    "bits": "{label} has {element_bits}-bit elements by definition.",
    "mode": "{label} is {mode} by definition{why}.",
    "narrow_range": "{label} has no narrow-range variant.",
    "rounding": "{label} rounds by its own rule: {rule}.",
    "calibration": "{label} {calibration}.",
    "granularity": "{label} has fixed blocks of {block_size} values along the last axis.",
    "block_size": "{label} has no blocks of its own; choose the granularity instead.",
}


def not_applicable_reason(key: str, fmt: registry.Format) -> str:
    if key == "block_size" and fmt.block_size:
        return f"{fmt.label} blocks are {fmt.block_size} values by definition."
    if key == "granularity" and not fmt.block_size:
        return f"{fmt.label} scales the whole tensor."
    if key == "granularity" and fmt.tile:
        return f"{fmt.label} has fixed tiles of {fmt.block_size}×{fmt.block_size} values."
    mode = fmt.fixed.get("mode", "symmetric")
    why = " (sign and magnitude)" if mode == "symmetric" else " (a scale and a min per block)"
    return _NOT_APPLICABLE[key].format(label=fmt.label, element_bits=fmt.element_bits,
                                       rule=fmt.rule, block_size=fmt.block_size, mode=mode,
                                       why=why, calibration=_how_scales_are_found(fmt))


def _how_scales_are_found(fmt: registry.Format) -> str:
    """How a block format finds its scales, in place of the range source it has no use for."""
    if fmt.family != "ggml":
        return "takes each scale from its block's largest magnitude"
    affine = fmt.fixed.get("mode") == "asymmetric"
    if fmt.super_block or fmt.element == "codebook":  # K-quants, IQ types: searched always
        return f"finds each block's scale{' and min' if affine else ''} by its own search"
    # the legacy types: straight from the block's extremes (quantize_row_*_ref), searched with an
    # importance matrix (quantize_*_impl)
    how = ("takes each block's scale and min from its smallest and largest value" if affine
           else "takes each block's scale from its largest magnitude")
    return how + (", or by ggml's weighted search with an importance matrix"
                  if fmt.uses_importance else "")


def shown_when_off(key: str, fmt: registry.Format):
    """What a choice that `fmt` turns off, without a value of its own, shows instead of the
    user's kept choice (a greyed "Per tensor" beside Q4_0 would read as the setting in force);
    None where nothing is shown (the control is hidden, or shows its fixed value)."""
    if fmt.applies(key):
        return None
    if key == "mode" and fmt.family == "ggml" and fmt.fixed.get("mode") == "asymmetric":
        return "Asymmetric (a scale and a min)"  # x̂ = q d + m: no integer zero point
    if fixed_value(key, fmt) is not None:
        return None
    if key == "granularity" and fmt.block_size:
        size = fmt.block_size
        return f"Tiles of {size}×{size}" if fmt.tile else f"Blocks of {size}"
    if key == "rounding":
        return "The format's own rule"
    return None


def fixed_value(key: str, fmt: registry.Format):
    """What a setting is for `fmt` when the user cannot change it (None if meaningless)."""
    if key == "bits":
        return fmt.element_bits
    if key == "block_size":
        return fmt.block_size
    return fmt.fixed.get(key)


def format_of(name) -> registry.Format:
    try:
        return registry.get(name)
    except (KeyError, TypeError):
        raise QuantcalcError(f"format must be one of {', '.join(registry.NAMES)}; got "
                             f"{_quoted(name)}", "format") from None


def applies(key: str, values: dict) -> bool:
    """Whether setting `key` applies given the other settings' (converted) `values`."""
    fmt = format_of(values.get("format", DEFAULTS["format"]))
    if not fmt.applies(key):
        return False
    for other, allowed in BY_KEY[key].requires.items():
        if not applies(other, values) or effective(other, values) not in allowed:
            return False
    return True


def effective(key: str, values: dict):
    """The value setting `key` takes: the user's when it applies, else the format's fixed value
    or the default."""
    fmt = format_of(values.get("format", DEFAULTS["format"]))
    if fmt.applies(key):
        return values.get(key, DEFAULTS[key])
    fixed = fixed_value(key, fmt)
    return fixed if fixed is not None else DEFAULTS[key]


# ------------------------------------------------------------------------------ conversion
def _quoted(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value, key, whole):
    what = "a whole number" if whole else "a number"
    if isinstance(value, bool):
        raise QuantcalcError(f"{key} must be {what}, got {value!r}", key)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantcalcError(f"{key} must be a finite number, got {value!r}", key)
        if whole and not value.is_integer():
            raise QuantcalcError(f"{key} must be {what}, got {value!r}", key)
        return int(value) if whole else value
    text = str(value).strip()
    if _WHOLE.match(text):
        return int(text) if whole else _finite_float(text, key)
    if not _NUMBER.match(text):
        raise QuantcalcError(f"{key} must be {what}, got {_quoted(value)}", key)
    number = _finite_float(text, key)
    if whole:
        if not number.is_integer():
            raise QuantcalcError(f"{key} must be {what}, got {_quoted(value)}", key)
        return int(number)
    return number


def _finite_float(text, key):
    number = float(text)
    if not math.isfinite(number):
        raise QuantcalcError(f"{key} must be a finite number, got {_quoted(text)}", key)
    return number


def _in_bounds(setting: Setting, number):
    low, high, above = setting.minimum, setting.maximum, setting.exclusive_minimum
    show = (lambda v: str(int(v)) if len(str(int(v))) <= 24 else f"{v:.4g}") \
        if setting.kind == "int" else (lambda v: f"{v:g}")
    name = setting.label.lower()
    if above is not None and not number > above:
        raise QuantcalcError(f"{name} must be greater than {show(above)} and at most "
                             f"{show(high)}, got {show(number)}", setting.key)
    if (low is not None and number < low) or (high is not None and number > high):
        span = f"greater than {show(above)} and at most {show(high)}" if low is None \
            else f"between {show(low)} and {show(high)}" if high is not None \
            else f"at least {show(low)}"
        raise QuantcalcError(f"{name} must be {span}, got {show(number)}", setting.key)
    return number


def convert(key: str, value):
    """A user's value for setting `key` (from JSON, a form, a link or the CLI) in its type,
    checked against its choices and bounds; raises QuantcalcError at the field."""
    setting = BY_KEY[key]
    if setting.kind == "choice":
        if key == "format":
            return format_of(value).name
        if value not in setting.values:
            raise QuantcalcError(f"{key} must be one of {', '.join(setting.values)}; got "
                                 f"{_quoted(value)}", key)
        return value
    if setting.kind == "flag":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
        raise QuantcalcError(f"{key} must be true or false, got {_quoted(value)}", key)
    if setting.kind == "text":
        return str(value)[:NAME_LENGTH]
    return _in_bounds(setting, _number(value, key, whole=setting.kind == "int"))


def page_schema() -> dict:
    """What the page needs to build its form, check link parameters and know which files its
    inputs take (build.py writes it)."""
    return {
        "settings": [s.to_dict() for s in SETTINGS],
        "formats": [f.to_dict() for f in registry.FORMATS],
        "fields": [f.to_dict() for f in fields.FIELDS],
        "compare_keys": list(fields.COMPARE_KEYS),
        "not_applicable": {f.name: {key: not_applicable_reason(key, f)
                                    for key in registry.FORMAT_SETTINGS if not f.applies(key)}
                           for f in registry.FORMATS},
        "shown_when_off": {f.name: {key: shown_when_off(key, f)
                                    for key in ("mode", "rounding", "granularity")
                                    if shown_when_off(key, f)}
                           for f in registry.FORMATS},
        "format_settings": list(registry.FORMAT_SETTINGS),
        "hidden_when_off": list(HIDDEN_WHEN_OFF),
        "number_pattern": NUMBER,
        "true_words": list(TRUE_WORDS),
        "false_words": list(FALSE_WORDS),
        "name_length": NAME_LENGTH,
        "grades": grades.page_table(),
        "file_types": file_types.page_table(),
    }
