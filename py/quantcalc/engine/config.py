"""The analysis settings, one validated object shared by the library, the CLI and the page.

Every setting, its type, bounds and when it applies are declared in schema/settings.py; this object
holds one set of values, converted and checked there. `Config.from_dict` accepts what JSON, the
page's form, links and the command line produce (numbers may arrive as strings) and raises
`QuantcalcError` naming the offending field.
"""

from dataclasses import asdict
from typing import Optional

from quantcalc.schema import registry
from quantcalc.schema import settings
from quantcalc.errors import QuantcalcError
from quantcalc.formats import conventions
from quantcalc.formats.integer import IntegerFormat
from quantcalc.records import record

# Kept as names for callers (tests, scripts); the schema is the source.
MODES, ROUNDINGS = settings.MODES, settings.ROUNDINGS
CALIBRATIONS, GRANULARITIES = settings.CALIBRATIONS, settings.GRANULARITIES
DEFAULT_PERCENTILE = settings.DEFAULTS["percentile"]


@record(frozen=True)
class Config:
    """Every setting of one analysis. Field names are the JSON / CSV / CLI / link names."""

    name: str = "tensor"
    format: str = "int"
    block_size: Optional[int] = None
    bits: int = 8
    mode: str = "symmetric"
    narrow_range: bool = False
    rounding: str = "half-even"
    convention: str = "exact"
    seed: int = 0
    calibration: str = "minmax"
    percentile: float = DEFAULT_PERCENTILE
    range_min: Optional[float] = None
    range_max: Optional[float] = None
    granularity: str = "tensor"
    axis: int = 0
    group_size: int = 32

    def __post_init__(self):
        values = self.to_dict()
        fmt = settings.format_of(self.format)
        for key, value in values.items():
            if value is None:
                continue
            converted = settings.convert(key, value)
            if converted != value or type(converted) is not type(value):
                object.__setattr__(self, key, converted)
            if not fmt.applies(key) and converted != settings.effective(key, values) \
                    and converted != settings.DEFAULTS[key]:
                raise QuantcalcError(
                    f"{key} does not apply: {settings.not_applicable_reason(key, fmt)}", key)
        if self.narrow_range and self.mode != "symmetric" and fmt.applies("narrow_range"):
            raise QuantcalcError("narrow range applies to symmetric (signed) mode only",
                                 "narrow_range")
        if self.calibration not in fmt.calibrations and fmt.applies("calibration"):
            raise QuantcalcError(f"{self.calibration} calibration is not available for "
                                 f"{fmt.label}; choose one of {', '.join(fmt.calibrations)}",
                                 "calibration")
        refused = conventions.refusal(self)
        if refused is not None:  # shown at the convention's control; the reason names the rest
            raise QuantcalcError(refused[0], "convention")
        if self.applies("range_min"):
            if self.range_min is None:
                raise QuantcalcError("a custom range needs a minimum", "range_min")
            if self.range_max is None:
                raise QuantcalcError("a custom range needs a maximum", "range_max")
            if self.range_min > self.range_max:
                raise QuantcalcError(
                    f"range minimum {self.range_min:g} is greater than maximum "
                    f"{self.range_max:g}", "range_min")

    @property
    def format_row(self) -> registry.Format:
        return registry.get(self.format)

    def applies(self, key: str) -> bool:
        """Whether setting `key` takes part in this analysis (settings.applies)."""
        return settings.applies(key, self.to_dict())

    def effective(self, key: str):
        """What setting `key` is for this analysis, or None where it plays no part."""
        values = self.to_dict()
        if settings.applies(key, values):
            return getattr(self, key)
        fmt = self.format_row
        if key in registry.FORMAT_SETTINGS and not fmt.applies(key):
            return settings.fixed_value(key, fmt)
        return None

    @property
    def number_format(self) -> IntegerFormat:
        return IntegerFormat(self.bits, signed=self.mode == "symmetric",
                             narrow_range=self.narrow_range)

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        """Build a Config from loosely typed input (JSON, form fields, query strings).

        Empty strings mean "not given"; an unknown key is refused (a typo such as "bit=4" must
        not silently run the default).
        """
        if not isinstance(data, dict):
            raise QuantcalcError("the configuration must be a mapping of settings", "config")
        given = {k: v for k, v in data.items() if v is not None and v != ""}
        unknown = [k for k in given if k not in settings.BY_KEY]
        if unknown:
            raise QuantcalcError(f"unknown setting {unknown[0]!r}; the settings are "
                                 f"{', '.join(settings.BY_KEY)}", "config")
        kwargs = {key: settings.convert(key, value) for key, value in given.items()}
        # The one custom-range rule (links, the page and the command line's --range MIN MAX
        # all rely on it): a range given without naming the calibration means "use this range";
        # beside another calibration it is a leftover of the form (kept while the user tries
        # other calibrations), not part of this analysis.
        if "calibration" not in kwargs and ("range_min" in kwargs or "range_max" in kwargs):
            kwargs["calibration"] = "custom"
        if kwargs.get("calibration") != "custom":
            kwargs.pop("range_min", None)
            kwargs.pop("range_max", None)
        return cls(**kwargs)

    def to_dict(self) -> dict:
        return asdict(self)
