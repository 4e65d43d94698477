"""A scan ended by Ctrl-C says so in every report (issue 26): a field of the scan document (and so
of its JSON), a column of its CSV, the first page of its PDF and the terminal's summary; a scan
that ran to the end has none of them, its reports unchanged."""

import csv
import io
import json

import pytest

from quantcalc import api
from quantcalc.reports import tables
from quantcalc.scan import report
from tests.support import checkpoints as C

FORMATS = ["q8_0", "q4_k"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return C.small_llama(tmp_path_factory.mktemp("interrupted"), seed=6)


@pytest.fixture(scope="module")
def interrupted(model):
    path, names = model
    told = []

    def on_row(row):
        told.append(row["name"])
        if len(told) == 2:
            raise KeyboardInterrupt  # Ctrl-C, two tensors in

    reply = api.scan_model([str(path)], FORMATS, on_row=on_row)
    assert reply["interrupted"] is True
    return reply["document"], len(names)


def rows_of(data: bytes):
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def test_the_document_and_its_json_carry_the_marker(interrupted):
    doc, total = interrupted
    marker = {"tensors_done": 2, "tensors_total": total}
    assert doc["interrupted"] == marker
    written = json.loads(api.scan_export(doc, "json")["bytes"])
    assert written["interrupted"] == marker and len(written["tensors"]) == 2


def test_the_csv_has_a_column_that_says_so_on_every_row(interrupted):
    doc, total = interrupted
    rows = rows_of(api.scan_export(doc, "csv")["bytes"])
    header, body = rows[0], rows[1:]
    assert header == [*report.CSV_HEADER, "interrupted"]
    assert len(body) == 2 * len(FORMATS)
    # a plain rectangular table: every reader takes it, and each row says it on its own
    assert all(len(row) == len(header) for row in body)
    assert {row[-1] for row in body} == {f"interrupted: 2 of {total} tensors scanned"}


def test_the_pdf_says_so_on_its_first_page(interrupted, monkeypatch):
    doc, total = interrupted
    pages = []
    real = tables.text_page

    def text_page(title, rows, columns, subtitle=None, **options):
        pages.append((title, subtitle or ""))
        return real(title, rows, columns, subtitle, **options)

    monkeypatch.setattr(tables, "text_page", text_page)
    assert api.scan_export(doc, "pdf")["bytes"].startswith(b"%PDF-")
    title, subtitle = pages[0]
    assert f"interrupted: 2 of {total} tensors scanned" in title + " " + subtitle
    assert all("interrupted" not in t + s for t, s in pages[1:])


def test_the_summary_says_so(interrupted):
    doc, total = interrupted
    first = api.scan_export(doc, "text")["bytes"].decode().splitlines()[0]
    assert f"interrupted: 2 of {total} tensors scanned" in first


def test_a_complete_scan_has_no_marker_and_its_reports_are_unchanged(model):
    path, names = model
    doc = api.scan_model([str(path)], FORMATS)["document"]
    assert "interrupted" not in doc
    header = rows_of(api.scan_export(doc, "csv")["bytes"])[0]
    assert header == list(report.CSV_HEADER)
    assert b"interrupted" not in api.scan_export(doc, "text")["bytes"]


def test_a_plan_of_an_interrupted_scan_is_refused(interrupted):
    doc, total = interrupted
    error = api.plan(doc, {"target_bpw": 5})["error"]
    assert error["kind"] == "input" and error["field"] == "scan"
    assert f"interrupted after 2 of {total} tensors" in error["message"]
    assert "\n" not in error["message"]
