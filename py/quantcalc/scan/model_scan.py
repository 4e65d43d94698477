"""Model scan: every tensor of a checkpoint under every chosen format, read once.

A tensor that fits the memory budget (`whole_values`) is read in one piece and each format runs the
single-tensor analysis on it (analysis.analyze), so a scan row equals what the calculator shows for
that tensor, digit for digit. A larger tensor (a 1.8 GB embedding in the page's 512 MB worker) is
streamed in slabs of whole rows, twice: the first pass gathers its statistics and, for formats
whose scales span the whole tensor (per tensor, per channel along a later axis, NVFP4's tensor
scale), each segment's range; the second feeds every slab to every format with the same
accumulators the single analysis uses. Each segment then gets exactly the scale it would get in
memory; only the order of the float64 error sums differs. Calibrations that need all of a
segment's values at once (percentile, MSE, entropy) over a whole-tensor segment are refused for
such a tensor, with the reason, rather than approximated.
"""

import math
import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from quantcalc.engine import analysis
from quantcalc.engine import compare
from quantcalc.formats.ggml import decode as ggml_decode
from quantcalc.readers.checkpoint import SlabReader
from quantcalc.scan.roles import layer_and_role
from quantcalc.engine.config import Config
from quantcalc.errors import QuantcalcError, printable
from quantcalc.engine.metrics import ErrorAccumulator, WeightedAccumulator
from quantcalc.engine.ranges import calibrate
from quantcalc.formats.schemes import scheme_for
from quantcalc.scan.tensor_stats import TensorStats

WHOLE_VALUES = 1 << 26   # command line: tensors up to 64M values (256 MB as float32) in one piece
SLAB_VALUES = 1 << 22    # values per slab when streaming
ONE_D_VALUES = 1 << 27   # a 1-D tensor is read whole up to this many values
RESULT_KEYS = ("bits_per_value", "sqnr_db", "rel_rmse", "max_abs_error", "clip_rate", "mse",
               "weighted_mse", "weighted_sqnr_db")
STAT_KEYS = ("data_min", "data_max", "std", "amax_over_std", "kurtosis", "beyond_6_sigma",
             "worst_channel", "worst_channel_ratio")


@dataclass(frozen=True)
class ScanFormat:
    label: str
    settings: tuple   # ((key, value), ...) as given, for reports and recipes
    config: Config

    @property
    def uses_importance(self) -> bool:
        return self.config.format_row.uses_importance


def formats_from_specs(specs) -> list:
    """ScanFormats from "q4_k" or "format=int bits=4 granularity=group" strings, in order."""
    out, labels = [], set()
    for spec in specs:
        text = str(spec).strip()
        settings = compare.parse_spec(text if "=" in text else f"format={text}")
        try:
            config = Config.from_dict(dict(settings))
        except QuantcalcError as exc:
            raise QuantcalcError(f"format '{printable(text)}': {exc.message}", "formats") from None
        label = compare.label_of(settings)
        if label in labels:
            continue
        labels.add(label)
        out.append(ScanFormat(label, tuple(settings.items()), config))
    if not out:
        raise QuantcalcError("choose at least one format to scan with", "formats")
    return out


def preset_formats(name) -> list:
    if name not in compare.PRESETS:
        raise QuantcalcError(f"unknown preset '{printable(str(name))}'; choose "
                             f"{', '.join(sorted(compare.PRESETS))}", "formats")
    return formats_from_specs(compare.PRESETS[name])


def describe_entry(entry) -> dict:
    """The row's facts that need no reading: name, layer, role, shape, storage."""
    layer, role = layer_and_role(entry.name)
    stored_bits = (ggml_decode.bits_per_value(entry.ggml_type) if entry.ggml_type is not None
                   else 8.0 * entry.nbytes / entry.count if entry.count else None)
    return {"name": entry.name, "file": entry.path.rsplit("/", 1)[-1], "layer": layer,
            "role": role, "shape": list(entry.shape), "dtype": entry.dtype,
            "parameters": entry.count, "bytes": entry.nbytes, "stored_bits": stored_bits,
            "high_precision": len(entry.shape) <= 1}


def scan_tensor(entry, formats, importance=None, whole_values=WHOLE_VALUES,
                slab_values=SLAB_VALUES, on_bytes=None) -> dict:
    """One checkpoint tensor under every format: a row of facts, statistics and results.

    Args:
        importance: a function name -> (weights or None, note or None) for formats that use
            llama.cpp's importance matrix, or None.
        on_bytes: called with the number of file bytes just read (progress).
    """
    row = describe_entry(entry)
    row.update({key: None for key in STAT_KEYS})
    row.update({"streamed": False, "original": entry.readable, "results": [], "notes": []})
    notes = row["notes"]
    if row["high_precision"]:
        notes.append("1-D (a norm or bias): usually kept in high precision")
    if not entry.readable:
        if not entry.quantized:
            notes.append(f"{entry.dtype} values, not floats: not quantized")
            return row
        notes.append(f"already quantized as {entry.dtype} ({row['stored_bits']:g} bits per "
                     f"value): the original values are not in the file, so no format can be "
                     f"measured against them")
        if not ggml_decode.can_dequantize(entry.ggml_type):
            notes.append(f"{entry.dtype} is not decoded here: no statistics")
            return row
    if entry.fortran_order:
        notes.append("stored in Fortran order: re-save it in C order to scan it")
        return row
    weights, weight_note = (None, None) if importance is None or not any(
        f.uses_importance for f in formats) else importance(entry)
    if weight_note:
        notes.append(weight_note)
    measured = formats if entry.readable else []
    try:
        # 1-D tensors are read whole: a llama.cpp type searches a whole row at once, and norms
        # and biases are small (one of more than ONE_D_VALUES is refused below)
        one_d = len(entry.shape) <= 1 and entry.count <= ONE_D_VALUES
        if entry.count <= whole_values or one_d:
            _scan_whole(entry, measured, weights, row, on_bytes)
        else:
            _scan_streamed(entry, measured, weights, row, slab_values, on_bytes)
    except QuantcalcError as exc:  # the tensor itself is unreadable or not finite
        notes.append(exc.message)
        row["results"] = []
    return row


def _finite(values, stats):
    """Refuse NaN and infinities, which the statistics' min and max catch without a pass."""
    if not stats.finite:
        bad = int(np.count_nonzero(~np.isfinite(values)))
        raise QuantcalcError(f"{bad:,} values are NaN or infinite: not quantized", "tensor")


def _scan_whole(entry, formats, weights, row, on_bytes):
    values = SlabReader(entry).read_all()
    if on_bytes:
        on_bytes(entry.nbytes)
    stats = TensorStats(entry.shape)
    stats.add(values)
    _finite(values, stats)
    stats.add_beyond(values)
    row.update(stats.finish())
    for fmt in formats:
        def measure():
            result = analysis.analyze(values, fmt.config, keep=0,
                                      importance=weights if fmt.uses_importance else None,
                                      known_range=stats.segment_range)
            return result.metrics, result.notes
        row["results"].append(_result(fmt, measure))


def _result(fmt, measure) -> dict:
    out = {"format": fmt.label, **{key: None for key in RESULT_KEYS}, "error": None, "notes": []}
    try:
        metrics, notes = measure()
    except QuantcalcError as exc:
        out["error"] = exc.message
        return out
    out.update({key: metrics.get(key) for key in RESULT_KEYS})
    out["notes"] = [n for n in notes if not n.startswith(f"{fmt.config.format_row.label}:")]
    return out


def _scan_streamed(entry, formats, weights, row, slab_values, on_bytes):
    if len(entry.shape) <= 1:
        raise QuantcalcError(f"a 1-D tensor of {entry.count:,} values is too large to read in "
                             f"one piece here", "tensor")
    rows_per_slab = max(1, slab_values // max(entry.row_values, 1))
    if any(f.config.format_row.tile for f in formats):
        rows_per_slab = -(-rows_per_slab // 128) * 128  # slabs of whole tiles
    reader = SlabReader(entry)
    streams = [_Streamed(fmt, entry, weights if fmt.uses_importance else None)
               for fmt in formats]
    stats = TensorStats(entry.shape)
    for _, slab in reader.slabs(rows_per_slab):
        stats.add(slab)
        _finite(slab, stats)
        for stream in streams:
            stream.first_pass(slab)
        if on_bytes:  # each pass counts as reading half of the slab's bytes
            on_bytes(entry.nbytes * len(slab) // entry.rows // 2)
    for stream in streams:
        stream.ready(stats)
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
        row["results"].append(_result(stream.format, stream.finish))


class _Streamed:
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
        self.acc = self.weighted = None
        self.segments = 0
        self.count = 0
        self.clamped = 0
        self.rng = np.random.default_rng(self.config.seed) \
            if self.config.rounding == "stochastic" else None

    def _scheme(self, shape):
        scheme = scheme_for(self.config)
        if self.weights is not None:
            scheme.importance = analysis._checked_importance(self.weights, shape, scheme)
        return scheme, scheme.segmentation(shape, self.config)

    def first_pass(self, slab):
        if self.error is not None or not self.whole_segments:
            return
        try:
            _, segmentation = self._scheme(slab.shape)
        except QuantcalcError as exc:
            self.error = exc
            return
        lo, hi = segmentation.min_max(slab)
        self.lo = lo if self.lo is None else np.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else np.maximum(self.hi, hi)

    def ready(self, stats):
        self.acc = ErrorAccumulator(stats.amax)
        self.tensor_amax = np.float32(stats.amax)

    def second_pass(self, slab):
        if self.error is not None:
            return
        try:
            scheme, segmentation = self._scheme(slab.shape)
            if self.weights is not None and self.weighted is None:
                self.weighted = WeightedAccumulator(scheme.importance, slab.shape[-1])
            if self.needs_tensor_amax:
                scheme.tensor_amax = self.tensor_amax
            data_lo, data_hi = (self.lo, self.hi) if self.whole_segments \
                else analysis.segment_ranges(scheme, segmentation, slab)
            lo, hi = calibrate(slab, segmentation, self.config, data_lo, data_hi, scheme)
            params = scheme.params(slab, lo, hi, segmentation)
            analysis._refuse_overflow(params.scale, self.config, scheme)
            scheme.note_data_range(params, data_lo, data_hi, self.config.rounding)
            analysis.quantize_into(slab.reshape(-1), scheme, params, segmentation,
                                   self.config.rounding, self.rng, self.acc, self.weighted)
        except QuantcalcError as exc:
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
        metrics = self.acc.finish()
        if self.weighted is not None:
            metrics.update(self.weighted.finish(metrics["mse"]))
        metrics["bits_per_value"] = self.scheme.bits_per_value(self.count, self.segments)
        notes = []
        if self.clamped:
            notes.append(f"{self.clamped} block scale(s) raised to E4M3's smallest subnormal "
                         f"(2^-9), as NVIDIA ModelOpt does")
        if metrics["clip_count"]:
            notes.append(f"{metrics['clip_count']} of {self.count} values clipped "
                         f"({metrics['clip_rate']:.4%})")
        return metrics, notes


def scan(checkpoint, formats, importance=None, whole_values=WHOLE_VALUES,
         slab_values=SLAB_VALUES, on_row=None, on_progress=None, names=None) -> dict:
    """Scan every tensor (or those named in `names`) of `checkpoint` in file order.

    on_row(row) hears each tensor's row as it finishes; on_progress(progress dict) hears bytes
    and tensors done, throughput and the time left. Returns the scan document (`document`).
    """
    entries, progress = chosen_tensors(checkpoint, names, on_progress)
    rows = []
    for entry in entries:
        row = scan_tensor(entry, formats, importance, whole_values, slab_values,
                          progress.add_bytes)
        rows.append(row)
        progress.tensor_done(entry)
        if on_row:
            on_row(row)
    return document(checkpoint, formats, rows)


def chosen_tensors(checkpoint, names, on_progress):
    """The tensors to scan (those in `names`, or all) in file order, and their Progress."""
    entries = [e for e in checkpoint.tensors if names is None or e.name in names]
    return entries, Progress(sum(e.nbytes for e in entries), len(entries), on_progress)


class Progress:
    """Bytes and tensors done, throughput and time left, told now and then (at most ~10/s)."""

    def __init__(self, total_bytes, total_tensors, tell, clock=time.monotonic):
        self.total_bytes, self.total_tensors, self.tell, self.clock = \
            total_bytes, total_tensors, tell, clock
        self.bytes = self.tensors = 0
        self.started = clock()
        self.told = -1.0
        self.bytes_of_tensor = 0

    def add_bytes(self, n):
        self.bytes += n
        self.bytes_of_tensor += n
        self._maybe_tell()

    def tensor_done(self, entry):
        self.bytes += max(entry.nbytes - self.bytes_of_tensor, 0)  # tensors read nothing
        self.bytes_of_tensor = 0
        self.tensors += 1
        self._maybe_tell(force=True)

    def state(self) -> dict:
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = self.bytes / elapsed
        left = (self.total_bytes - self.bytes) / rate if rate > 0 else None
        return {"bytes": self.bytes, "total_bytes": self.total_bytes, "tensors": self.tensors,
                "total_tensors": self.total_tensors, "bytes_per_second": rate,
                "seconds_left": left, "seconds": elapsed}

    def _maybe_tell(self, force=False):
        if self.tell is None:
            return
        now = self.clock()
        if force or now - self.told >= 0.1:
            self.told = now
            self.tell(self.state())


def document(checkpoint, formats, rows) -> dict:
    """The scan as plain data: the formats, one row per tensor, and per-format totals."""
    return {"kind": "quantcalc-scan", "version": 1,
            "files": [{"name": f.rsplit("/", 1)[-1], "bytes": size}
                      for f, size in checkpoint.files],
            "formats": [{"label": f.label, "settings": dict(f.settings)} for f in formats],
            "tensors": rows, "totals": totals(formats, rows), "notes": list(checkpoint.notes)}


def rows_from_plain(rows) -> list:
    """Scan rows back from JSON (or the page): "inf" and "-inf" become floats again."""
    def number(value):
        return float(value) if value in ("inf", "-inf") else value

    def fix(row, keys):
        return {k: number(v) if k in keys else v for k, v in row.items()}

    return [{**fix(row, STAT_KEYS), "results": [fix(r, RESULT_KEYS) for r in row["results"]]}
            for row in rows]


def from_plain(doc) -> dict:
    """A scan document back from JSON (or the page), its totals computed if it has none."""
    doc = dict(doc)
    doc["tensors"] = rows_from_plain(doc["tensors"])
    if doc.get("totals") is None:  # a scan cancelled in the page: its rows, totalled here
        labels = [SimpleNamespace(label=f["label"]) for f in doc["formats"]]
        doc["totals"] = totals(labels, doc["tensors"])
    return doc


def totals(formats, rows) -> list:
    """Per format: parameters it measured, their size and average bits per value, total error
    (sum of MSE x parameters) and each role's share of it, and the tensors it could not take."""
    out = []
    for index, fmt in enumerate(formats):
        params = bits = error = 0.0
        by_role, refused = {}, 0
        for row in rows:
            if index >= len(row["results"]):
                continue
            result = row["results"][index]
            if result["error"]:
                refused += 1
                continue
            n = row["parameters"]
            params += n
            bits += n * result["bits_per_value"]
            part = result["mse"] * n
            error += part
            by_role[row["role"]] = by_role.get(row["role"], 0.0) + part
        out.append({"format": fmt.label, "parameters": int(params),
                    "bytes": bits / 8.0, "bits_per_value": bits / params if params else None,
                    "total_error": error, "refused": refused,
                    "error_share_by_role": {role: part / error if error else 0.0
                                            for role, part in sorted(by_role.items())}})
    return out


def worst_first(rows, format_index=0):
    """Rows by the SQNR of one format, lowest first (rows it could not measure last)."""
    def key(row):
        results = row["results"]
        if format_index < len(results) and results[format_index]["sqnr_db"] is not None:
            value = results[format_index]["sqnr_db"]
            return (0, value if math.isfinite(value) else math.inf)
        return (1, 0.0)
    return sorted(rows, key=key)
