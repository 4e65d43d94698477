"""The thresholds behind a result's plain cues ("good", "fair", ...), declared once.

engine/verdict.py grades results with them; the page's FAQ lists them (build.py copies them into the
site's schema). Plain Python with no numpy, so build.py can read it without the engine's
dependencies.

Reference points on a standard normal weight tensor (bench/ggml_speed.py): per-channel INT8
about 40 dB, Q6_K 35 dB, Q4_K 23 dB, Q3_K 16 dB, Q2_K 10.5 dB.
"""

import math

# (lowest SQNR in dB, level, cue), best first
SQNR = (
    (30.0, "good", "good: what 8-bit weights usually get"),
    (20.0, "fair", "fair: typical of 4-bit weights; check the model's accuracy"),
    (13.0, "poor", "poor: 3-bit territory, expect a measurable accuracy loss"),
    (-math.inf, "bad", "very poor: most models degrade at this error"),
)
# (highest clip rate, level, cue), best first
CLIP_RATE = (
    (0.0, "good", "nothing clipped"),
    (0.001, "good", "only rare outliers clipped"),
    (0.01, "fair", "some values clipped: look at the max error"),
    (math.inf, "poor", "heavy clipping: the range is narrower than the data"),
)


def sqnr(db: float):
    """(level, cue) for an SQNR in dB (inf: no error at all)."""
    if db == math.inf:
        return "exact", "exact: no error at all"
    # NaN (no signal and no error to compare) passes no bound: the lowest grade says so plainly
    return next(((level, cue) for bound, level, cue in SQNR if db >= bound), SQNR[-1][1:])


def clip_rate(rate: float):
    """(level, cue) for a share of clipped values."""
    return next(((level, cue) for bound, level, cue in CLIP_RATE if rate <= bound),
                CLIP_RATE[-1][1:])


def page_table() -> dict:
    """The tables for the page's FAQ (JSON has no infinities: an open end is None)."""
    def rows(table):
        return [{"bound": None if math.isinf(b) else b, "level": level, "cue": cue}
                for b, level, cue in table]
    return {"sqnr": rows(SQNR), "clip_rate": rows(CLIP_RATE)}
