"""A framework's convention (formats/conventions/) in place of quantcalc's exact arithmetic: the
integer scheme with the framework's scale rule, float32 rounding and grid, and torchao's float8
scaling for FP8."""

from quantcalc.formats import conventions
from quantcalc.formats.conventions import float8
from quantcalc.formats.conventions.base import refuse_beyond_float32
from quantcalc.formats.schemes.floats import FloatScheme
from quantcalc.formats.schemes.integer import IntegerScheme


class ConventionIntegerScheme(IntegerScheme):
    def __init__(self, config, fmt):
        super().__init__(config, fmt)
        self.convention = conventions.get(config.convention)
        self.q_min, self.q_max = self.convention.grid(config)
        self.floor_note = self.convention.floor_note

    def params(self, x, lo, hi, segmentation):
        refuse_beyond_float32(self.convention.label, lo, hi)
        return self.convention.qparams(lo, hi, self.config)

    def note_data_range(self, params, data_min, data_max, rounding):
        refuse_beyond_float32(self.convention.label, data_min, data_max)
        self.clip_free = False  # float32 rounding: always look

    def quantize(self, original, p, rounding, rng, check=True):
        return self.convention.quantize(original, p, self.q_min, self.q_max)

    def fake_quantize(self, values, lo, hi):
        params = self.convention.qparams(lo, hi, self.config)
        p = {"scale": params.scale[:, None], "zero_point": params.zero_point[:, None],
             **{k: v[:, None] for k, v in params.extra.items()}}
        return self.quantize(values[None, :], p, "half-even", None)[1]

    def convention_notes(self, params):
        return _notes(self, params, self.convention.rule(self.config))

    def grid_ends(self, params):
        scale, zero_point = float(params.scale[0]), int(params.zero_point[0])
        return (self.q_min - zero_point) * scale, (self.q_max - zero_point) * scale


class ConventionFloat8Scheme(FloatScheme):
    """torchao's float8 scaling: tensorwise per tensor, rowwise (power-of-two scales) per
    channel."""

    floor_note = "amax below 1e-12: torchao's amax_to_scale raises it to 1e-12"

    def params(self, x, lo, hi, segmentation):
        refuse_beyond_float32("PyTorch (torchao float8)", lo, hi)
        return float8.qparams(lo, hi, self.grid.max_value, float8.rowwise(self.config))

    def note_data_range(self, params, data_min, data_max, rounding):
        refuse_beyond_float32("PyTorch (torchao float8)", data_min, data_max)

    def quantize(self, original, p, rounding, rng):
        return float8.quantize(self.grid, original, p)

    def convention_notes(self, params):
        return _notes(self, params, float8.rule(self.format.label, float8.rowwise(self.config)))


def convention_scheme(config, fmt):
    """The scheme for a framework convention (Config has refused what it does not offer)."""
    if fmt.family == "float":
        return ConventionFloat8Scheme(config, fmt)
    return ConventionIntegerScheme(config, fmt)


def _notes(scheme, params, rule):
    """The convention's rule, and where a segment met its floor."""
    notes = [rule]
    if params.floored.any():
        n = params.scale.size
        where = "" if n == 1 else f" in {int(params.floored.sum())} of {n} segments"
        notes.append(f"{scheme.floor_note}{where}")
    return notes

