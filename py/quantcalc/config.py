"""The analysis settings, one validated object shared by the library, the CLI and the page.

`Config.from_dict` accepts what JSON, the page's form and the command line produce (numbers may
arrive as strings) and raises `QuantcalcError` naming the offending field.
"""

import math
from dataclasses import asdict, dataclass, field
from typing import Optional

from .errors import QuantcalcError
from .formats import IntegerFormat
from .schemes import FORMATS

MODES = ("symmetric", "asymmetric")
ROUNDINGS = ("half-even", "half-away", "floor", "ceil", "toward-zero", "stochastic")
CALIBRATIONS = ("minmax", "percentile", "mse", "entropy", "custom")
GRANULARITIES = ("tensor", "channel", "group")
DEFAULT_PERCENTILE = 99.99


def _choice(value, allowed, key):
    if value not in allowed:
        raise QuantcalcError(f"{key} must be one of {', '.join(allowed)}; got {value!r}", key)
    return value


def _integer(value, key):
    if isinstance(value, bool):
        raise QuantcalcError(f"{key} must be a whole number, got {value!r}", key)
    if isinstance(value, int):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        raise QuantcalcError(f"{key} must be a whole number, got {value!r}", key) from None
    if not number.is_integer():
        raise QuantcalcError(f"{key} must be a whole number, got {value!r}", key)
    return int(number)


def _real(value, key):
    if isinstance(value, bool):
        raise QuantcalcError(f"{key} must be a number, got {value!r}", key)
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise QuantcalcError(f"{key} must be a number, got {value!r}", key) from None
    if not math.isfinite(number):
        raise QuantcalcError(f"{key} must be a finite number, got {value!r}", key)
    return number


def _flag(value, key):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise QuantcalcError(f"{key} must be true or false, got {value!r}", key)


@dataclass(frozen=True)
class Config:
    """Every setting of one analysis. Field names are the JSON / CSV / CLI names."""

    bits: int = 8
    mode: str = "symmetric"
    narrow_range: bool = False
    rounding: str = "half-even"
    seed: int = 0
    calibration: str = "minmax"
    percentile: float = DEFAULT_PERCENTILE
    range_min: Optional[float] = None
    range_max: Optional[float] = None
    granularity: str = "tensor"
    axis: int = 0
    group_size: int = 32
    name: str = "tensor"
    tensor: Optional[str] = None
    format: str = "int"
    block_size: Optional[int] = None
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        _choice(self.mode, MODES, "mode")
        _choice(self.rounding, ROUNDINGS, "rounding")
        _choice(self.calibration, CALIBRATIONS, "calibration")
        _choice(self.granularity, GRANULARITIES, "granularity")
        self.number_format  # validates bits / narrow range
        if not 0 < self.percentile <= 100:
            raise QuantcalcError(
                f"percentile must be in (0, 100], got {self.percentile:g}", "percentile")
        if self.format not in FORMATS:
            raise QuantcalcError(f"format must be one of {', '.join(FORMATS)}; got "
                                 f"{self.format!r}", "format")
        if self.block_size is not None and self.block_size < 1:
            raise QuantcalcError(f"block size must be at least 1, got {self.block_size}",
                                 "block_size")
        if self.group_size < 1:
            raise QuantcalcError(f"group size must be at least 1, got {self.group_size}",
                                 "group_size")
        if self.calibration == "custom":
            if self.range_min is None:
                raise QuantcalcError("a custom range needs a minimum", "range_min")
            if self.range_max is None:
                raise QuantcalcError("a custom range needs a maximum", "range_max")
            if self.range_min > self.range_max:
                raise QuantcalcError(
                    f"range minimum {self.range_min:g} is greater than maximum "
                    f"{self.range_max:g}", "range_min")

    @property
    def number_format(self) -> IntegerFormat:
        return IntegerFormat(self.bits, signed=self.mode == "symmetric",
                             narrow_range=self.narrow_range)

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        """Build a Config from loosely typed input (JSON, form fields, query strings).

        Unknown keys are kept in `extra` rather than rejected, so newer pages can talk to older
        engines; empty strings mean "not given".
        """
        if not isinstance(data, dict):
            raise QuantcalcError("the configuration must be a mapping of settings", "config")
        given = {k: v for k, v in data.items() if v is not None and v != ""}
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        kwargs = {}
        converters = {
            "bits": _integer, "seed": _integer, "axis": _integer, "group_size": _integer,
            "block_size": _integer,
            "percentile": _real, "range_min": _real, "range_max": _real,
            "narrow_range": _flag,
        }
        for key, value in given.items():
            if key not in known:
                continue
            convert = converters.get(key)
            kwargs[key] = convert(value, key) if convert else str(value)
        # A custom range given without naming the calibration means "use this range".
        if "calibration" not in kwargs and ("range_min" in kwargs or "range_max" in kwargs):
            kwargs["calibration"] = "custom"
        if kwargs.get("calibration") != "custom":
            kwargs.pop("range_min", None)
            kwargs.pop("range_max", None)
        extra = {k: v for k, v in given.items() if k not in known}
        return cls(**kwargs, extra=extra)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("extra")
        return out
