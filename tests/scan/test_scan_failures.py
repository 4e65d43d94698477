"""One bad tensor never sinks a scan (issue 26, second round): whatever fails in one tensor under
one format (a refusal, or an exception nobody foresaw: a ValueError from a reshape, a
MemoryError) becomes an error on that row, the scan carries on, and the document, its totals and
every report are produced. Locally, in worker processes (--jobs) and on a Dask cluster."""

import json
import math
import warnings
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor, as_completed

import numpy as np
import pytest

from quantcalc.engine import analysis
from quantcalc.readers import checkpoint
from quantcalc.scan import jobs as scan_jobs
from quantcalc.scan import model_scan as scan
from quantcalc.scan import report as scan_report
from tests.support import checkpoints as C

SPECS = ["iq4_nl", "q8_0", "format=int bits=8"]
MARK = 7.25  # the first value of the tensor a test makes fail


@pytest.fixture
def model(tmp_path):
    rng = np.random.default_rng(4)
    arrays = {"before": rng.standard_normal((4, 256)).astype(np.float32),
              "huge": np.full((4, 256), 1e38, np.float32),
              "marked": rng.standard_normal((4, 256)).astype(np.float32),
              "after": rng.standard_normal((4, 256)).astype(np.float32)}
    arrays["marked"][0, 0] = MARK
    C.write_safetensors(tmp_path / "m.safetensors", arrays)
    return checkpoint.open_checkpoint([tmp_path / "m.safetensors"])


def _reports_work(doc, pdf=False):
    """The reports of scan/report.py are produced from the document (the PDF, which takes a
    few seconds, where `pdf`)."""
    plain = json.loads(scan_report.json_bytes(doc))
    assert plain["tensors"][1]["name"] == "huge"
    csv = scan_report.csv_bytes(doc).decode()
    assert csv.count("\n") == 1 + sum(max(len(r["results"]), 1) for r in doc["tensors"])
    if pdf:
        assert scan_report.pdf_bytes(doc)[:5] == b"%PDF-"
    assert "tensors" in scan_report.summary_text(doc)


def _by_name(doc):
    return {row["name"]: row for row in doc["tensors"]}


def _measured(row):
    return all(r["error"] is None and r["sqnr_db"] is not None for r in row["results"])


def test_a_tensor_of_1e38_is_an_error_on_its_row_and_the_scan_goes_on(model):
    doc = scan.scan(model, scan.formats_from_specs(SPECS))
    rows = _by_name(doc)
    huge = rows["huge"]
    assert huge["shape"] == [4, 256] and huge["dtype"] == "F32"
    iq4, q8, int8 = huge["results"]
    for result in (iq4, q8):
        assert "stores its scales as fp16" in result["error"]
        assert result["sqnr_db"] is None and result["mse"] is None
    assert int8["error"] is None  # a format that can take the values still measures them
    assert all(_measured(rows[n]) for n in ("before", "marked", "after"))
    totals = doc["totals"]
    assert [t["refused"] for t in totals] == [1, 1, 0]
    assert totals[0]["parameters_covered"] == 3 * 1024 and \
        totals[2]["parameters_covered"] == 4 * 1024
    assert [t["parameters_total"] for t in totals] == [4 * 1024] * 3  # the same tensors
    _reports_work(doc, pdf=True)


def _failing_analyze(exception):
    real = analysis.analyze

    def analyze(values, config, **options):
        if values.reshape(-1)[0] == MARK and config.format == "q8_0":
            raise exception
        return real(values, config, **options)
    return analyze


@pytest.mark.parametrize("exception, words", [
    (ValueError("cannot reshape array of size 7 into shape (2,4)"),
     ["ValueError", "cannot reshape array of size 7"]),
    (MemoryError(), ["memory"]),
    (ZeroDivisionError("float division by zero"), ["ZeroDivisionError"]),
])
def test_an_unexpected_exception_in_one_tensor_and_format_is_an_error_on_its_row(
        model, monkeypatch, exception, words):
    monkeypatch.setattr(analysis, "analyze", _failing_analyze(exception))
    doc = scan.scan(model, scan.formats_from_specs(SPECS))
    marked = _by_name(doc)["marked"]
    assert marked["shape"] == [4, 256] and marked["dtype"] == "F32"
    iq4, q8, int8 = marked["results"]
    assert iq4["error"] is None and int8["error"] is None
    assert q8["sqnr_db"] is None and q8["mse"] is None
    for word in words:
        assert word in q8["error"], q8["error"]
    assert [t["refused"] for t in doc["totals"]] == [1, 2, 0]  # huge, and marked under Q8_0
    assert _measured(_by_name(doc)["after"])
    _reports_work(doc)


def test_an_unexpected_exception_in_a_streamed_tensor_is_an_error_on_its_row(model, monkeypatch):
    real = analysis.quantize_into

    def quantize_into(flat, job, *args, **options):
        if job.scheme.format.name == "q8_0" and MARK in flat:
            raise IndexError("index 300 is out of bounds for axis 0 with size 256")
        return real(flat, job, *args, **options)

    monkeypatch.setattr(analysis, "quantize_into", quantize_into)
    doc = scan.scan(model, scan.formats_from_specs(SPECS), whole_values=256, slab_values=512)
    marked = _by_name(doc)["marked"]
    assert marked["streamed"]
    assert "IndexError" in marked["results"][1]["error"]
    assert marked["results"][0]["error"] is None and marked["results"][2]["error"] is None
    assert "stores its scales as fp16" in _by_name(doc)["huge"]["results"][0]["error"]
    _reports_work(doc)


def test_a_tensor_that_fails_to_read_is_a_row_with_the_reason(model, monkeypatch):
    """A failure before any format runs (reading, statistics) is the tensor's, told in its
    notes as an unreadable or non-finite tensor is."""
    real = checkpoint.SlabReader.read_all

    def read_all(self):
        if self.entry.name == "marked":
            raise OSError(5, "Input/output error")
        return real(self)

    monkeypatch.setattr(checkpoint.SlabReader, "read_all", read_all)
    doc = scan.scan(model, scan.formats_from_specs(SPECS))
    marked = _by_name(doc)["marked"]
    assert marked["results"] == [] and marked["shape"] == [4, 256]
    assert "Input/output error" in marked["notes"][-1]
    assert _measured(_by_name(doc)["after"])
    _reports_work(doc)


def _raising_scan_tensor(entry, *args, **options):
    if entry.name == "marked":
        raise RuntimeError("the worker lost its file handle")
    return REAL_SCAN_TENSOR(entry, *args, **options)


REAL_SCAN_TENSOR = scan_jobs.scan_tensor


def _check_task_failure(doc, model):
    assert [row["name"] for row in doc["tensors"]] == [e.name for e in model.tensors]
    marked = _by_name(doc)["marked"]
    assert marked["results"] == [] and marked["shape"] == [4, 256] and marked["dtype"] == "F32"
    assert "RuntimeError" in marked["notes"][-1]
    assert "the worker lost its file handle" in marked["notes"][-1]
    assert _measured(_by_name(doc)["after"]) and _measured(_by_name(doc)["before"])
    _reports_work(doc)


def test_an_exception_in_a_task_becomes_that_tensors_row(model):
    """What the executor's future raises (the task failed, its worker died) is the row."""
    def submit(fn, entry, *args):
        future = Future()
        try:
            future.set_result(_raising_scan_tensor(entry, scan.formats_from_specs(args[0])))
        except Exception as exc:  # noqa: BLE001 - as an executor hands it back
            future.set_exception(exc)
        return future

    rows = []
    doc = scan_jobs.scan_parallel(model, SPECS, submit, lambda futures: iter(futures),
                                  on_row=rows.append)
    assert len(rows) == 4
    _check_task_failure(doc, model)


def test_an_exception_in_a_worker_process_becomes_that_tensors_row(model, monkeypatch):
    monkeypatch.setattr(scan_jobs, "scan_tensor", _raising_scan_tensor)
    # forked workers inherit the patched module
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        doc = scan_jobs.scan_parallel(model, SPECS, pool.submit, as_completed)
    _check_task_failure(doc, model)


def test_an_exception_in_a_dask_task_becomes_that_tensors_row(model, monkeypatch):
    distributed = pytest.importorskip("dask.distributed")
    monkeypatch.setattr(scan_jobs, "scan_tensor", _raising_scan_tensor)
    # threads: the tasks run in this process, with the patched module
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        doc = scan_jobs.scan_parallel(model, SPECS, client.submit, distributed.as_completed)
    _check_task_failure(doc, model)


@pytest.mark.slow
def test_tensors_at_float64s_edges_scan_without_warnings_or_unexpected_errors(tmp_path):
    """Values whose squares underflow (1e-300, subnormals) or overflow (1e200, 1.7e308): the
    statistics are finite (moments in units of a power of two), every format measures or
    refuses with its reason, whole or streamed, and no RuntimeWarning is printed."""
    rng = np.random.default_rng(0)
    arrays = {}
    for i, magnitude in enumerate([5e-324, 1e-310, 1e-300, 1e-160, 1e38, 1e154, 1e200, 1e300,
                                   1.7e308]):
        with np.errstate(over="ignore"):
            x = np.clip(rng.standard_normal((4, 256)) * magnitude, -1.7e308, 1.7e308)
        arrays[f"normal{i}"] = x
        arrays[f"constant{i}"] = np.full((4, 256), magnitude)
        one = np.zeros((4, 256))
        one[1, 3] = magnitude
        arrays[f"one{i}"] = one
    np.savez(tmp_path / "m.npz", **arrays)
    specs = ["format=int bits=8", "nf4", "q4_k", "iq4_nl", "fp8_t128", "nvfp4",
             "format=int bits=8 granularity=channel", "format=int bits=4 calibration=mse"]
    for whole in (1 << 26, 300):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warnings.simplefilter("ignore", ResourceWarning)
            doc = scan.scan(checkpoint.open_checkpoint([tmp_path / "m.npz"]),
                            scan.formats_from_specs(specs), whole_values=whole,
                            slab_values=512)
        for row in doc["tensors"]:
            assert row["results"], (row["name"], row["notes"])
            assert not any("unexpectedly" in n for n in row["notes"]), row["notes"]
            for key in ("std", "data_min", "data_max"):
                assert math.isfinite(row[key]), (row["name"], key, row[key])
            for result in row["results"]:
                if result["error"] is None:
                    assert math.isfinite(result["mse"]) and result["sqnr_db"] is not None
                else:
                    assert "unexpectedly" not in result["error"], result["error"]
        plain = json.loads(scan_report.json_bytes(doc))  # strict JSON: no NaN anywhere
        assert len(plain["tensors"]) == len(doc["tensors"])
        scan_report.csv_bytes(doc)
        scan_report.summary_text(doc)
    assert scan_report.pdf_bytes(doc)[:5] == b"%PDF-"
