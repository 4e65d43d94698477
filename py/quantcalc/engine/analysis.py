"""The analysis pipeline: calibrate, compute scale / zero point, quantize in chunks, measure.

The tensor is walked in its own memory order in chunks of `CHUNK` values, each converted to
float64 only for the duration of the chunk, so a tensor of N float32 values needs O(N) extra memory
only for the per-value outputs a caller asks to keep (`keep` values at most), never a float64 copy
of the whole tensor.
"""

from dataclasses import field
from typing import Optional

import numpy as np

from quantcalc.engine.config import Config
from quantcalc.engine.metrics import (ErrorAccumulator, WeightedAccumulator,
                                      refuse_unmeasurable, underflow_note)
from quantcalc.engine.ranges import calibrate
from quantcalc.errors import QuantcalcError
from quantcalc.formats.granularity import Segmentation
from quantcalc.formats.integer import SCALE_FLOOR, QParams
from quantcalc.formats.schemes import Scheme, scheme_for
from quantcalc.records import record
from quantcalc.schema import fields

CHUNK = 1 << 16  # 512 KiB of float64 per buffer: the dozen passes per chunk stay in cache (and
#                   Pyodide, where each numpy call costs more, makes a quarter as many calls)
DEFAULT_KEEP = 1_000_000


@record
class PerValue:
    """The first `len(original)` values of the tensor (flat, C order) and what became of them."""

    original: np.ndarray      # input dtype
    codes: np.ndarray         # int32
    dequantized: np.ndarray   # float64
    error: np.ndarray         # float64, original - dequantized
    clipped: np.ndarray       # bool


@record
class Result:
    config: Config
    shape: tuple
    dtype: str
    params: QParams
    calibrated_min: np.ndarray  # the range source's range per segment, before the format makes
    calibrated_max: np.ndarray  # it symmetric or widens it to 0 (params.real_min / real_max)
    segment_sizes: np.ndarray
    metrics: dict
    per_value: Optional[PerValue]
    scheme: object
    notes: list = field(default_factory=list)
    hints: list = field(default_factory=list)  # verdict.hints: what to try, measured (api.run)
    # the quantized type a file stores the tensor in (its values are then dequantized ones)
    stored_format: Optional[str] = None

    @property
    def count(self) -> int:
        return int(self.metrics["count"])

    @property
    def q_min(self):
        return self.scheme.q_min

    @property
    def q_max(self):
        return self.scheme.q_max

    def summary(self) -> dict:
        """The JSON summary: every field of fields.FIELDS, in that order (None: not applicable)."""
        cfg, scheme, params = self.config, self.scheme, self.params
        per_tensor = params.scale.size == 1 and scheme.segment_kind == "tensor"

        def listed(values, kind):
            out = [kind(v) for v in values]
            return out[0] if per_tensor else out

        integer_codes = scheme.format.element == "int" and scheme.has_zero_point
        out = {
            "name": cfg.name,
            "format": cfg.format,
            "format_label": scheme.label,
            "description": describe(self),
            "shape": list(self.shape),
            "dtype": self.dtype,
            "stored_format": self.stored_format,
            "count": self.count,
            "bits": scheme.element_bits(),
            **{key: cfg.effective(key) for key in (
                "mode", "narrow_range", "rounding", "seed", "calibration", "percentile",
                "granularity", "axis", "group_size")},
            # None under exact: every existing report stays as it was
            "convention": None if cfg.convention == "exact" else cfg.convention,
            "block_size": scheme.block_size or None,
            "imatrix": True if scheme.importance is not None else None,
            "segments": int(params.scale.size),
            "segment_kind": scheme.segment_kind,
            "scale_format": scheme.format.scale_format,
            "scale": listed(params.scale, float),
            "zero_point": listed(params.zero_point, int) if integer_codes else None,
            "q_min": scheme.q_min,
            "q_max": scheme.q_max,
            "grid_max": scheme.grid_max,
            "real_min": listed(params.real_min, float),
            "real_max": listed(params.real_max, float),
            "range_widened": bool(params.widened.any()),
            "scale_floored": bool(params.floored.any()),
            **self.metrics,
            "notes": list(self.notes),
            "hints": [hint["text"] for hint in self.hints],
        }
        if scheme.block_size:
            out["granularity"] = None  # blocks, not a granularity the user chose
        return {key: out.get(key) for key in (*fields.KEYS, "notes", "hints")}


def describe(result) -> str:
    """One line saying what the format did: "NF4 · 4-bit codebook elements · 2 blocks of 64 ·
    float32 scale per block"."""
    scheme, n = result.scheme, int(result.params.scale.size)
    element = {"int": "integer", "float": "float", "codebook": "codebook"}[scheme.format.element]
    parts = [scheme.label, f"{scheme.element_bits()}-bit {element} elements"]
    kind = scheme.segment_kind
    shorter = result.segment_sizes.min() if result.segment_sizes.size else 0
    if kind == "tile":
        parts.append(f"{n} tile{'s' if n != 1 else ''} of {scheme.block_size}×{scheme.block_size}")
    elif scheme.block_size:
        parts.append(f"{n} block{'s' if n != 1 else ''} of {scheme.block_size}"
                     + (f" (the last of each row holds {shorter})"
                        if shorter < scheme.block_size else ""))
    elif kind == "group":
        parts.append(f"{n} group{'s' if n != 1 else ''} of {result.config.group_size}")
    elif kind == "channel":
        parts.append(f"{n} channel{'s' if n != 1 else ''} along axis {result.config.axis}")
    else:
        parts.append("one scale for the tensor")
    per = "" if kind == "tensor" and not scheme.block_size else f" per {kind}"
    parts.append(f"{scheme.format.scale_format} scale{per}")
    if scheme.format.applies("mode"):
        parts.append(result.config.mode)
    return " · ".join(parts)


PROGRESS_VALUES = 1 << 20  # report progress about once per million values


def analyze(values, config: Config, *, keep: int = DEFAULT_KEEP, chunk: int = CHUNK,
            progress=None, importance=None, known_range=None) -> Result:
    """Quantize `values` with `config` and measure the error.

    Args:
        values: a float array of any shape (finite values; see `inputs.check_finite`).
        config: the settings.
        keep: how many leading values (flat, C order) to return per-value results for; 0 for none.
        chunk: values per processing step (a tuning knob; results do not depend on it).
        progress: if given, called as progress(phase, fraction) now and then: phase is
            "calibrating" or "quantizing", fraction in [0, 1].
        importance: one non-negative weight per column (the tensor's last axis), as llama.cpp's
            importance matrix gives for a weight; for formats whose search uses it.
        known_range: a function segmentation -> (per-segment min, max) as float64 arrays, or
            None where the caller does not know them (a scan has each row's min and max from
            its statistics already: two passes over the tensor saved).
    Returns:
        A `Result`.
    """
    x = np.ascontiguousarray(values)
    if x.size == 0:
        raise QuantcalcError("there are no values to quantize", "values")
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    scheme = scheme_for(config)
    segmentation = scheme.segmentation(x.shape, config)
    if importance is not None:
        scheme.importance = checked_importance(importance, x.shape, scheme)
    known = None if known_range is None else known_range(segmentation)
    data_min, data_max = known if known is not None else segment_ranges(scheme, segmentation, x)
    report = progress or (lambda phase, fraction: None)
    report("calibrating", 0.0)
    lo, hi, params = fit_parameters(x, scheme, segmentation, config, (data_min, data_max),
                                    progress=lambda fraction: report("calibrating", fraction))
    flat = x.reshape(-1)
    keep = int(min(max(keep, 0), flat.size))
    sizes = segmentation.sizes()
    job = QuantizeJob(
        scheme=scheme, params=params, segmentation=segmentation, rounding=config.rounding,
        rng=np.random.default_rng(config.seed) if config.rounding == "stochastic" else None,
        # a scheme that measures each segment's range while quantizing gives each chunk's bound
        errors=ErrorAccumulator(None if scheme.measures_range else
                                max(abs(float(data_min.min())), abs(float(data_max.max())))),
        weighted=None if importance is None else WeightedAccumulator(
            scheme.importance, x.shape[-1] if x.ndim else 1),
        per_value=_kept_values(flat, keep))
    quantize_into(flat, job, lambda fraction: report("quantizing", fraction), chunk)
    # the data range is read after quantizing: a scheme that measures it fills it in as it goes
    metrics = _metrics(job, sizes, flat.size, float(data_min.min()), float(data_max.max()))
    return Result(config, x.shape, str(x.dtype), params, lo, hi, sizes, metrics, job.per_value,
                  scheme, _notes(scheme, params, metrics, flat.size, keep))


def fit_parameters(x, scheme, segmentation, config, data_range, *, progress=None):
    """Calibrate the range of `x` (a whole tensor, or a slab of a streamed one) and set the
    scheme's scale and zero point per segment, refusing a scale that overflows; the scheme is
    told each segment's data range (it may skip work it proves unnecessary).

    Args:
        data_range: each segment's data (min, max) as float64 arrays.
        progress: progress(fraction) while a per-segment calibration search runs.
    Returns:
        (lo, hi, params): the range source's range per segment, and the scheme's parameters.
    """
    data_min, data_max = data_range
    lo, hi = calibrate(x, segmentation, config, scheme, data_min=data_min, data_max=data_max,
                       progress=progress)
    params = scheme.params(x, lo, hi, segmentation)
    _refuse_overflow(params.scale, config, scheme)
    scheme.note_data_range(params, data_min, data_max, config.rounding)
    return lo, hi, params


def quantize_every_value(x, scheme, segmentation, config, data_range, rng=None) -> PerValue:
    """Quantize `x` (a slab of rows) with ranges set elsewhere and return every value's code,
    reconstruction, error and clip flag: for a caller that sums the errors its own way (an
    estimated scan sums them per sampled row). `data_range` as for fit_parameters."""
    _, _, params = fit_parameters(x, scheme, segmentation, config, data_range)
    flat = x.reshape(-1)
    job = QuantizeJob(scheme=scheme, params=params, segmentation=segmentation,
                      rounding=config.rounding, rng=rng, errors=ErrorAccumulator(None),
                      per_value=_kept_values(flat, flat.size))
    quantize_into(flat, job)
    return job.per_value


def segment_ranges(scheme, segmentation, x):
    """Each segment's data (min, max) as float64 arrays: measured here, or left for a scheme that
    measures them in its own pass while quantizing (Scheme.measures_range) to fill in."""
    if scheme.measures_range:  # every segment's range is written before it is read
        return np.empty(segmentation.count), np.empty(segmentation.count)
    return segmentation.min_max(x)


def _kept_values(flat, keep):
    """Room for the per-value results of the first `keep` values (None for none)."""
    if not keep:
        return None
    return PerValue(flat[:keep].copy(), np.empty(keep, np.int32), np.empty(keep),
                    np.empty(keep), np.empty(keep, bool))


def _metrics(job, sizes, count, data_min, data_max):
    """The result's numbers from the job's accumulators, refusing an error beyond float64."""
    scheme = job.scheme
    metrics = {"data_min": data_min, "data_max": data_max, **job.errors.finish()}
    refuse_unmeasurable(metrics, scheme.label, max(abs(data_min), abs(data_max)))
    if job.weighted is not None:
        metrics.update(job.weighted.finish(metrics["mse"]))
    metrics["uniform_noise_mse"] = scheme.uniform_noise_mse(job.params, sizes, count)
    metrics["bits_per_value"] = scheme.bits_per_value(count, job.segmentation.count)
    return metrics


@record(frozen=True, eq=False)  # eq: arrays have no one truth value to compare by
class QuantizeJob:
    """What the quantizing loop (quantize_into) works with besides the values: the format's
    scheme and the parameters it set, which segment each value is in, how to round, and where
    the errors go. A single analysis makes one; a streamed scan one per slab, all of them adding
    to the same accumulators."""

    scheme: Scheme
    params: QParams
    segmentation: Segmentation
    rounding: str
    # a string: evaluating np.random here would import numpy.random (8 ms, its secrets and
    # hashlib) for every analysis, stochastic or not
    rng: "Optional[np.random.Generator]"  # stochastic rounding's generator, else None
    errors: ErrorAccumulator              # every value's error
    weighted: Optional[WeightedAccumulator] = None  # the importance-weighted error (an imatrix)
    per_value: Optional[PerValue] = None  # the first values' results, where they are kept


def quantize_into(flat, job: QuantizeJob, report=None, chunk=CHUNK):
    """Quantize the flat values chunk by chunk and add their errors to the job's accumulators.

    The one quantizing loop: a single analysis runs it once over the whole tensor, a streamed
    scan (scan/streamed.py) once per slab of rows with the same accumulators. `report`: called
    with the fraction done now and then.
    """
    scheme, params, segmentation = job.scheme, job.params, job.segmentation
    single = segmentation.count == 1
    chunk = scheme.chunk_values or chunk
    run = None if single or not scheme.per_value_params else segmentation.run_length()
    if run:
        chunk = max(run, chunk // run * run)  # chunks of whole segments
    keep = 0 if job.per_value is None else job.per_value.codes.size
    every = max(1, PROGRESS_VALUES // chunk)
    for number, start in enumerate(range(0, flat.size, chunk)):
        if report is not None and number % every == 0:
            report(start / flat.size)
        stop = min(start + chunk, flat.size)
        values = flat[start:stop]
        if run:
            # one parameter per segment, broadcast along its run (a third of the time of
            # gathering one per value)
            first = start // run
            p = {key: value[:, None] for key, value in scheme.gather(
                params, np.arange(first, first + (stop - start) // run)).items()}
        else:
            p = scheme.gather(params, None if single or not scheme.per_value_params
                              else segmentation.ids(start, stop))
        for span in scheme.spans(start, values, p, job.rounding, job.rng, run):
            _measure(span, job, keep)


def _measure(span, job, keep):
    """Add a quantized span's error to the job's accumulators (and keep its first values)."""
    # the reconstruction in float64 (a copy), then the error in place: from float32 a third
    # faster than numpy's mixed-type subtraction
    if span.scratch is None:
        error = span.dequantized.astype(np.float64)
    else:
        error = span.scratch
        np.copyto(error, span.dequantized)
    np.subtract(span.original, error, out=error)
    start = span.start
    if start < keep:
        n = min(start + error.size, keep) - start
        natural, per_value = span.natural, job.per_value
        per_value.codes[start:start + n] = natural(span.codes)[:n]
        per_value.dequantized[start:start + n] = natural(span.dequantized)[:n]
        per_value.error[start:start + n] = natural(error)[:n]
        per_value.clipped[start:start + n] = \
            natural(span.clipped)[:n] if span.clipped is not None else False
    if job.weighted is not None:
        job.weighted.add(start, span.natural(span.original), span.natural(error))
    job.errors.add(span.original, error, span.clipped, span.bound)  # uses both arrays up


def checked_importance(importance, shape, scheme):
    """The importance matrix's weights for a tensor of `shape` as float32, refused (with the
    reason) where the format does not use one or the weights do not fit its rows."""
    weights = np.asarray(importance, np.float64).reshape(-1)
    columns = shape[-1] if shape else 1
    if not scheme.format.uses_importance:
        raise QuantcalcError(f"{scheme.label} does not use an importance matrix (llama.cpp's "
                             f"K-quants do); leave it out or choose one of them", "imatrix")
    if weights.size != columns:
        raise QuantcalcError(f"the importance matrix has {weights.size} values for this tensor "
                             f"but its rows have {columns}", "imatrix")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise QuantcalcError("the importance matrix must hold finite, non-negative values",
                             "imatrix")
    return weights.astype(np.float32)


def _refuse_overflow(scale, config, scheme):
    """Results must be finite or refused: a scale of inf (a range wider than float64 can span,
    such as -1.7e308..1.7e308 in asymmetric mode) would turn every metric into NaN."""
    if np.all(np.isfinite(scale)):
        return
    field = "range_min" if config.applies("range_min") else "values"
    raise QuantcalcError(f"{scheme.label}: the range is too wide for float64 arithmetic (its "
                         f"scale overflows); narrow the range or scale the values down", field)


def _notes(scheme, params, metrics, count, keep):
    exact = scheme.config.convention == "exact"
    notes = [] if exact else scheme.convention_notes(params)  # a framework's rules
    if scheme.format.rule:
        notes.append(f"{scheme.format.label}: {scheme.format.rule}")
    if scheme.clamped:
        notes.append(f"{scheme.clamped} block scale(s) below E4M3's smallest subnormal (2^-9) "
                     f"were raised to it, as NVIDIA ModelOpt does, so those blocks keep their "
                     f"values instead of becoming 0 (torchao clamps to 2^-6)")
    if scheme.importance is not None:
        notes.append("searched with an importance matrix (llama.cpp's imatrix weights each "
                     "column's error, as llama-quantize --imatrix does)")
    n = params.scale.size
    where = "" if n == 1 else f" in {int(params.widened.sum())} of {n} segments"
    if params.widened.any():
        notes.append(f"range widened to include 0{where} (asymmetric mode keeps zero exact)")
    if params.floored.any() and exact:
        where = "" if n == 1 else f" in {int(params.floored.sum())} of {n} segments"
        notes.append(f"zero-width range{where}: no scale to compute, so it is set to float32 "
                     f"eps = {SCALE_FLOOR:.9g}")
    below = (params.scale < SCALE_FLOOR) & ~params.floored
    if scheme.format.family == "int" and below.any() and exact:
        notes.append(f"scale {float(params.scale[below].min()):.4g} is below float32 eps "
                     f"({SCALE_FLOOR:.3g}); PyTorch's observers would raise it to eps (a coarser "
                     f"grid, more error), ONNX Runtime and TensorRT use amax / q_max as here")
    if underflow_note(metrics):
        notes.append(underflow_note(metrics))
    if metrics["clip_count"]:
        notes.append(f"{metrics['clip_count']} of {count} values clipped "
                     f"({metrics['clip_rate'] * 100:.3g} %) to the ends of the grid")
    if 0 < keep < count:
        notes.append(f"per-value results kept for the first {keep} of {count} values")
    return notes
