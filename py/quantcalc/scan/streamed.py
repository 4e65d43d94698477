"""A tensor too large to read in one piece, measured in slabs of whole rows, read twice.

The first pass gathers its statistics and, for formats whose scales span the whole tensor (per
tensor, per channel along a later axis, NVFP4's tensor scale), each segment's range; the second
feeds every slab to every format with the same accumulators the single analysis uses
(engine/analysis.py quantize_into). Each segment then gets exactly the scale it would get in
memory; only the order of the float64 error sums differs. Calibrations that need all of a
segment's values at once (percentile, MSE, entropy) over a whole-tensor segment are refused for
such a tensor, with the reason, rather than approximated.
"""

import numpy as np

from quantcalc.engine import analysis
from quantcalc.engine.metrics import (ErrorAccumulator, WeightedAccumulator,
                                      refuse_unmeasurable, underflow_note)
from quantcalc.errors import QuantcalcError
from quantcalc.formats.schemes import scheme_for
from quantcalc.formats.schemes.protocol import FLOAT32_MAX
from quantcalc.readers.stored_safetensors import values_reader
from quantcalc.scan import estimated
from quantcalc.scan.rows import format_result, refuse_non_finite
from quantcalc.scan.tensor_stats import TensorStats


def scan_streamed(entry, formats, weights, row, *, slab_values, on_bytes=None, estimate=None):
    """Fill in `row` (scan_tensor's) from a tensor read in slabs of about `slab_values` values.

    Args:
        weights: the importance matrix's weights for this tensor, or None.
        on_bytes: called with the number of file bytes just read (progress).
        estimate: an estimated.Target: after the first pass, each format that can be is
            estimated from a sample of rows read by offset, and skips the second pass.
    """
    if len(entry.shape) <= 1:
        raise QuantcalcError(f"a 1-D tensor of {entry.count:,} values is too large to read in "
                             f"one piece here", "tensor")
    rows_per_slab = max(1, slab_values // max(entry.row_values, 1))
    if any(f.config.format_row.tile for f in formats):
        rows_per_slab = -(-rows_per_slab // 128) * 128  # slabs of whole tiles
    reader = values_reader(entry)
    streams = [StreamedFormat(fmt, entry, weights if fmt.uses_importance else None)
               for fmt in formats]
    stats = TensorStats(entry.shape)
    for _, slab in reader.slabs(rows_per_slab):
        stats.add(slab)
        refuse_non_finite(slab, stats)
        for stream in streams:
            stream.first_pass(slab)
        if on_bytes:  # each pass counts as reading half of the slab's bytes
            on_bytes(entry.nbytes * len(slab) // entry.rows // 2)
    for stream in streams:
        stream.ready(stats)
        if estimate is not None and getattr(reader, "seekable", False):
            stream.estimate(estimated.RowsInFile(reader, entry.shape), stats, estimate)
    for first, slab in reader.slabs(rows_per_slab):
        stats.add_beyond(slab, first)
        for stream in streams:
            stream.second_pass(slab)
        if on_bytes:
            part = entry.nbytes * len(slab) // entry.rows
            on_bytes(part - part // 2)
    row.update(stats.finish())
    row["streamed"] = True
    slabs = -(-entry.rows // rows_per_slab)
    row["notes"].append(f"streamed in {slabs} slabs of {rows_per_slab} rows, read twice: more "
                        f"values than are read in one piece here")
    for stream in streams:
        row["results"].append(format_result(stream.format, stream.finish))


class StreamedFormat:
    """One format over a tensor fed slab by slab (see the module docstring)."""

    def __init__(self, fmt, entry, weights):
        self.format, self.config, self.entry = fmt, fmt.config, entry
        self.weights = weights
        self.error = None
        probe = scheme_for(self.config)
        kind = probe.segment_kind
        self.whole_segments = (kind == "tensor" or (kind == "channel" and
                                                    self.config.axis % len(entry.shape) != 0))
        self.needs_tensor_amax = probe.format.family == "nvfp4"
        self.lo = self.hi = None
        if self.whole_segments and self.config.calibration not in ("minmax", "custom"):
            self.error = QuantcalcError(
                f"{self.config.calibration} calibration of a segment that spans the whole "
                f"tensor needs all its values in memory at once, and this tensor "
                f"({entry.count:,} values) is streamed; use min-max, or scan it with a larger "
                f"memory budget", "calibration")
        self.errors = self.weighted = None
        self.estimated = None  # (metrics, notes) from a sample of rows, if estimated
        self.segments = 0
        self.count = 0
        self.clamped = 0
        self.rng = np.random.default_rng(self.config.seed) \
            if self.config.rounding == "stochastic" else None

    def _scheme(self, shape):
        scheme = scheme_for(self.config)
        if self.weights is not None:
            scheme.importance = analysis.checked_importance(self.weights, shape, scheme)
        return scheme, scheme.segmentation(shape, self.config)

    def first_pass(self, slab):
        if self.error is not None or not self.whole_segments:
            return
        try:
            _, segmentation = self._scheme(slab.shape)
        except Exception as exc:  # noqa: BLE001 - told as this format's error (format_result)
            self.error = exc
            return
        lo, hi = segmentation.min_max(slab)
        self.lo = lo if self.lo is None else np.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else np.maximum(self.hi, hi)

    def ready(self, stats):
        self.errors = ErrorAccumulator(stats.amax)
        # beyond float32 (float64 values) NVFP4 refuses the blocks that reach there
        self.tensor_amax = np.float32(min(stats.amax, FLOAT32_MAX))

    def estimate(self, rows, stats, target):
        """Measure this format on a sample of `rows` (estimated.RowsInFile) instead of the
        second pass, where a sample can stand for the tensor (else nothing changes)."""
        if self.error is not None:
            return
        try:
            self.estimated = estimated.measure(self.format, rows, stats, self.weights,
                                               target_db=target.db, seed=target.seed)
        except Exception as exc:  # noqa: BLE001 - told as this format's error (format_result)
            self.error = exc

    def second_pass(self, slab):
        if self.error is not None or self.estimated is not None:
            return
        try:
            scheme, segmentation = self._scheme(slab.shape)
            if self.weights is not None and self.weighted is None:
                self.weighted = WeightedAccumulator(scheme.importance, slab.shape[-1])
            if self.needs_tensor_amax:
                scheme.tensor_amax = self.tensor_amax
            data_range = (self.lo, self.hi) if self.whole_segments \
                else analysis.segment_ranges(scheme, segmentation, slab)
            _, _, params = analysis.fit_parameters(slab, scheme, segmentation, self.config,
                                                   data_range)
            analysis.quantize_into(slab.reshape(-1), analysis.QuantizeJob(
                scheme=scheme, params=params, segmentation=segmentation,
                rounding=self.config.rounding, rng=self.rng, errors=self.errors,
                weighted=self.weighted))
        except Exception as exc:  # noqa: BLE001 - told as this format's error (format_result)
            self.error = exc
            return
        self.segments = segmentation.count if self.whole_segments else \
            self.segments + segmentation.count
        self.count += slab.size
        self.clamped += scheme.clamped
        self.scheme = scheme

    def finish(self):
        if self.error is not None:
            raise self.error
        if self.estimated is not None:
            return self.estimated
        metrics = self.errors.finish()
        refuse_unmeasurable(metrics, self.scheme.format.label, self.errors.signal_bound)
        if self.weighted is not None:
            metrics.update(self.weighted.finish(metrics["mse"]))
        metrics["bits_per_value"] = self.scheme.bits_per_value(self.count, self.segments)
        notes = [underflow_note(metrics)] if underflow_note(metrics) else []
        if self.clamped:
            notes.append(f"{self.clamped} block scale(s) raised to E4M3's smallest subnormal "
                         f"(2^-9), as NVIDIA ModelOpt does")
        if metrics["clip_count"]:
            notes.append(f"{metrics['clip_count']} of {self.count} values clipped "
                         f"({metrics['clip_rate']:.4%})")
        return metrics, notes
