"""Several configurations on one tensor, side by side at their storage cost.

A configuration is written as `key=value` pairs ("format=int bits=4 granularity=group"), the same
keys as the JSON configuration. Rows are sorted by bits per value; a row is on the Pareto front
when no other row reaches at least its SQNR with no more bits per value (one of the two strictly).
"""

import math

from quantcalc.engine import analysis
from quantcalc.schema import fields
from quantcalc.schema import registry
from quantcalc.engine.config import Config
from quantcalc.errors import QuantcalcError
from quantcalc.engine.verdict import SCALE_SHARE, SMALL_SAMPLE

PRESETS = {
    "common": [
        "format=int bits=8",
        "format=int bits=8 granularity=channel",
        "format=int bits=4 granularity=channel",
        "format=int bits=4 mode=asymmetric granularity=group group_size=128",
        "format=fp8_e4m3",
        "format=fp8_e5m2",
        "format=mxfp8_e4m3",
        "format=mxfp6_e2m3",
        "format=mxfp4",
        "format=nvfp4",
        "format=nf4",
        "format=q8_0",
        "format=q4_0",
    ],
}
# llama.cpp's types that quantcalc computes bit-exactly (more follow as they are added)
PRESETS["llama.cpp"] = ["format=q8_0", "format=q6_k", "format=q5_k", "format=q5_1",
                        "format=q5_0", "format=q4_k", "format=q4_1", "format=iq4_nl",
                        "format=q4_0", "format=iq4_xs",
                        "format=q3_k", "format=q2_k"]
PRESET_TITLES = {"common": "Common inference formats", "llama.cpp": "llama.cpp types"}
SWEEP_BITS = range(2, 17)


def parse_spec(spec: str) -> dict:
    """'format=int bits=4, mode=asymmetric' -> {'format': 'int', 'bits': '4', ...}."""
    settings = {}
    for part in spec.replace(",", " ").split():
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise QuantcalcError(f"configuration '{spec}': '{part}' is not key=value", "configs")
        settings[key.strip()] = value.strip()
    if not settings:
        raise QuantcalcError("an empty configuration", "configs")
    return settings


def label_of(settings: dict) -> str:
    """A short readable name: the format, then what differs from its defaults."""
    fmt = registry.BY_NAME.get(settings.get("format", "int"))
    if fmt is None:
        name = str(settings.get("format"))
    elif fmt.applies("bits"):
        name = f"INT{settings.get('bits', 8)}"
        if settings.get("mode") == "asymmetric":
            name += " asym"
    else:
        name = fmt.label.removeprefix("GGUF ")
    granularity = settings.get("granularity")
    if granularity == "channel":
        name += " per-channel"
    elif granularity == "group":
        name += f" g{settings.get('group_size', 32)}"
    for key in ("calibration", "rounding"):
        if key in settings:
            name += f" {settings[key]}"
    if "block_size" in settings:
        name += f" b{settings['block_size']}"
    return name


def _row(values, settings, config):
    """The row of one configuration, and the share of its bits per value spent on scales."""
    result = analysis.analyze(values, config, keep=0)
    s = result.summary()
    bits = s["bits_per_value"]
    overhead = (bits - result.scheme.element_bits()) / bits if bits > 0 else 0.0
    return {"label": label_of(settings), "format": config.format,
            "settings": " ".join(f"{k}={v}" for k, v in settings.items()),
            **{k: s[k] for k in fields.COMPARE_KEYS}}, overhead


def _overhead_note(count, overheads):
    """Few values and a configuration spending much of its bits on scales (the thresholds of
    engine/verdict.py's hint on one result): the sizes compared are not a full tensor's."""
    worst = max(overheads, key=lambda item: item[1])
    if count >= SMALL_SAMPLE or worst[1] <= SCALE_SHARE:
        return []
    row, share = worst
    return [f"Only {count} values: each scale (8 to 32 bits) is shared by few of them, so the "
            f"scales dominate bits per value (up to {share:.0%} of it, {row['label']}) — a "
            f"full-size tensor pays far less, and the ranking by size may differ."]


def mark_pareto(rows):
    """Set row["pareto"]: no other row has <= bits and >= SQNR with one strictly better."""
    for row in rows:
        row["pareto"] = not any(
            other is not row and other["bits_per_value"] <= row["bits_per_value"]
            and other["sqnr_db"] >= row["sqnr_db"]
            and (other["bits_per_value"] < row["bits_per_value"]
                 or other["sqnr_db"] > row["sqnr_db"])
            for other in rows)
    return rows


def compare(values, specs, name="tensor", skipped=None, notes=None):
    """Rows for each configuration spec (strings or dicts), sorted by bits per value.

    Every spec is checked first, and all bad ones are reported together (a typo in the third of
    five lines is not found one run at a time). A valid configuration that does not fit these
    values (per channel on 1-D values, a K-quant on rows that are not whole super-blocks) is
    left out and listed in `skipped` as {"label", "reason"}. What the reader should know about
    the comparison as a whole (few values: scales dominate) is added to `notes`."""
    if not specs:
        raise QuantcalcError("give at least one configuration or a preset", "configs")
    configs, problems = [], []
    for spec in specs:
        try:
            settings = parse_spec(spec) if isinstance(spec, str) else dict(spec)
            configs.append((settings, Config.from_dict({**settings, "name": name})))
        except QuantcalcError as exc:
            problems.append(f"'{spec if isinstance(spec, str) else label_of(spec)}': "
                            f"{exc.message}")
    if problems:
        raise QuantcalcError("; ".join(problems), "configs")
    skipped = [] if skipped is None else skipped
    measured = []
    for settings, config in configs:
        try:
            measured.append(_row(values, settings, config))
        except QuantcalcError as exc:
            skipped.append({"label": label_of(settings), "reason": exc.message})
    rows = [row for row, _ in measured]
    if notes is not None and measured:
        notes += _overhead_note(int(values.size), measured)
    if not rows:
        reasons = "; ".join(f"{s['label']}: {s['reason']}" for s in skipped[:3])
        raise QuantcalcError(f"no configuration fits these values ({reasons})", "configs")
    rows.sort(key=lambda r: (r["bits_per_value"], -_finite(r["sqnr_db"])))
    return mark_pareto(rows)


# Sizes people choose between (bits per value, scales included): 8-bit formats with their
# scales, 6-bit, the 4- to 5-bit block formats, 3-bit and 2-bit K-quants.
BUDGETS = (8.5, 6.6, 5.0, 4.5, 3.5, 2.7)


def choices(rows):
    """For each size in BUDGETS, the row with the most SQNR at no more bits per value: the
    page's "Which format should I choose?" on the user's own values. Each pick is listed once,
    at the smallest budget it answers."""
    picks = []
    for budget in BUDGETS:
        fitting = [r for r in rows if r["bits_per_value"] <= budget + 1e-9]
        if not fitting:
            continue
        best = max(fitting, key=lambda r: (_finite(r["sqnr_db"]), -r["bits_per_value"]))
        if picks and picks[-1]["label"] == best["label"]:
            picks[-1]["budget"] = budget
            continue
        picks.append({"budget": budget, "label": best["label"],
                      "bits_per_value": best["bits_per_value"], "sqnr_db": best["sqnr_db"]})
    return picks


def bit_sweep(values, base=None, name="tensor"):
    """SQNR of the integer format at 2..16 bits, other settings from `base`."""
    base = {k: v for k, v in (base or {}).items() if k not in ("bits", "format")}
    points = []
    for bits in SWEEP_BITS:
        config = Config.from_dict({**base, "bits": bits, "name": name})
        s = analysis.analyze(values, config, keep=0).summary()
        points.append({"bits": bits, "bits_per_value": s["bits_per_value"],
                       "sqnr_db": s["sqnr_db"]})
    return points


def _finite(value):
    return value if math.isfinite(value) else 1e300
