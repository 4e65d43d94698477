"""The fields of a result, declared once: key, label, unit, group and how to show the value.

The JSON summary has these keys in this order; the summary CSV, the PDF's table and the CLI table
list them in this order with these labels; the page's result cards and the comparison table are
built from the copy build.py writes into the site. A field whose value is None does not apply to
the result (a zero point for FP8, a percentile for min-max) and is left out of every table.

Plain Python with no numpy, so build.py can read it without the engine's dependencies.
"""

from quantcalc.records import record

CONFIGURATION, PARAMETER, METRIC = "configuration", "parameter", "metric"


@record(frozen=True)
class Field:
    """One field of a result.

    Args:
        key: the name in JSON, CSV, the page's data-metric attributes and the tests.
        label: how the page, the PDF and the CLI table title it.
        group: configuration (what was asked), parameter (what the format derived), or metric.
        style: how a value is written: int, real, percent, db, text, flag, shape.
        unit: a unit after the value, if any.
        card: shown as a card in the page's results.
        short: the column heading in tables (the label when empty).
    """

    key: str
    label: str
    group: str
    style: str = "real"
    unit: str = ""
    card: bool = False
    short: str = ""

    @property
    def heading(self) -> str:
        return self.short or self.label

    def to_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "group": self.group, "style": self.style,
                "unit": self.unit, "card": self.card, "heading": self.heading}


FIELDS = (
    Field("name", "Tensor name", CONFIGURATION, "text"),
    Field("format", "Format", CONFIGURATION, "text"),
    Field("format_label", "Format name", CONFIGURATION, "text"),
    Field("description", "What the format does", CONFIGURATION, "text"),
    Field("shape", "Shape", CONFIGURATION, "shape"),
    Field("dtype", "Input dtype", CONFIGURATION, "text"),
    Field("stored_format", "Stored as (quantized)", CONFIGURATION, "text"),
    Field("count", "Values", CONFIGURATION, "int"),
    Field("bits", "Element bits", CONFIGURATION, "int"),
    Field("mode", "Mode", CONFIGURATION, "text"),
    Field("narrow_range", "Narrow range", CONFIGURATION, "flag"),
    Field("rounding", "Rounding", CONFIGURATION, "text"),
    Field("seed", "Random seed", CONFIGURATION, "int"),
    Field("convention", "Framework convention", CONFIGURATION, "text"),
    Field("calibration", "Range source", CONFIGURATION, "text"),
    Field("percentile", "Percentile", CONFIGURATION, "real"),
    Field("granularity", "Granularity", CONFIGURATION, "text"),
    Field("axis", "Channel axis", CONFIGURATION, "int"),
    Field("group_size", "Group size", CONFIGURATION, "int"),
    Field("block_size", "Block size", CONFIGURATION, "int"),
    Field("imatrix", "Importance matrix used", CONFIGURATION, "flag"),
    Field("segments", "Scales", PARAMETER, "int"),
    Field("segment_kind", "One scale per", PARAMETER, "text"),
    Field("scale_format", "Scale stored as", PARAMETER, "text"),
    Field("scale", "Scale", PARAMETER, card=True),
    Field("zero_point", "Zero point", PARAMETER, "int", card=True),
    Field("q_min", "Smallest code (q_min)", PARAMETER, "int", card=True),
    Field("q_max", "Largest code (q_max)", PARAMETER, "int", card=True),
    Field("grid_max", "Largest element value", PARAMETER, card=True),
    Field("real_min", "Range min (effective)", PARAMETER, card=True),
    Field("real_max", "Range max (effective)", PARAMETER, card=True),
    Field("range_widened", "Range widened to include 0", PARAMETER, "flag"),
    Field("scale_floored", "Scale floored", PARAMETER, "flag"),
    Field("data_min", "Smallest value", METRIC),
    Field("data_max", "Largest value", METRIC),
    Field("mse", "MSE", METRIC, card=True),
    Field("rmse", "RMSE", METRIC, card=True),
    Field("mae", "MAE", METRIC, card=True),
    Field("max_abs_error", "Max |error|", METRIC, card=True),
    Field("sqnr_db", "SQNR", METRIC, "db", "dB", card=True, short="SQNR (dB)"),
    Field("rel_rmse", "Relative RMSE", METRIC, "percent", card=True),
    Field("clip_count", "Clipped values", METRIC, "int", card=True),
    Field("clip_rate", "Clip rate", METRIC, "percent", card=True),
    Field("weighted_mse", "Importance-weighted MSE", METRIC, card=True),
    Field("weighted_sqnr_db", "Importance-weighted SQNR", METRIC, "db", "dB", card=True),
    Field("weighted_mse_ratio", "Weighted MSE ÷ MSE", METRIC, card=True),
    Field("uniform_noise_mse", "Predicted MSE (scale²/12)", METRIC, card=True),
    Field("bits_per_value", "Bits per value (with scales)", METRIC, card=True,
          short="Bits / value"),
)
BY_KEY = {f.key: f for f in FIELDS}
KEYS = tuple(BY_KEY)
CARDS = tuple(f.key for f in FIELDS if f.card)
# The comparison table's measured columns, after its configuration label.
COMPARE_KEYS = ("bits_per_value", "sqnr_db", "rmse", "rel_rmse", "max_abs_error", "clip_rate")


def label(key: str) -> str:
    return BY_KEY[key].label


def heading(key: str) -> str:
    return BY_KEY[key].heading

