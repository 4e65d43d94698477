"""The command line end to end, as a user runs it."""

import csv
import io
import json

import numpy as np
import pytest

from tests.support.command import quantcalc

EXAMPLE = "-1.25, -0.92, -0.51, -0.10, 0, 0.14, 0.37, 0.79, 1.12, 1.46"


def run(*args, stdin=None):
    return quantcalc(*args, stdin=stdin)


def test_json_for_the_example():
    out = run("analyze", "--values", EXAMPLE, "--range", "-1.5", "1.5", "--json", "-")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["scale"] == 1.5 / 127 and summary["zero_point"] == 0
    assert summary["q_min"] == -128 and summary["calibration"] == "custom"


def test_default_table_is_readable():
    out = run("analyze", "--values", "1 2 3", "--bits", "4", "--mode", "asymmetric")
    assert out.returncode == 0
    # labelled rows, the format and the storage cost included
    for label in ("SQNR", "Zero point", "Format name", "Bits per value (with scales)"):
        assert label in out.stdout
    assert "range widened to include 0" in out.stdout


def test_files_reports_and_stdin(tmp_path):
    x = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    np.save(tmp_path / "w.npy", x)
    csv_path, summary_path, pdf_path = (tmp_path / n for n in ("v.csv", "s.csv", "r.pdf"))
    out = run("analyze", str(tmp_path / "w.npy"), "--granularity", "channel", "--axis", "0",
              "--calibration", "percentile", "--percentile", "99", "--rounding", "half-away",
              "--csv", str(csv_path), "--summary-csv", str(summary_path), "--pdf", str(pdf_path),
              "--json", "-")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["name"] == "w" and len(summary["scale"]) == 4
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert len(rows) == 64 and rows[0].keys() == {"index", "original", "quantized",
                                                  "dequantized", "error", "clipped"}
    assert "sqnr_db" in summary_path.read_text()
    assert pdf_path.read_bytes().startswith(b"%PDF")
    piped = run("analyze", "-", "--json", "-", "--name", "piped", stdin="[1, 2, 3]")
    assert json.loads(piped.stdout)["count"] == 3 and json.loads(piped.stdout)["name"] == "piped"


def test_stochastic_and_tensor_choice(tmp_path):
    np.savez(tmp_path / "m.npz", a=np.ones(3), b=np.arange(5.0))
    out = run("analyze", str(tmp_path / "m.npz"), "--tensor", "b", "--rounding", "stochastic",
              "--seed", "3", "--json", "-")
    summary = json.loads(out.stdout)
    assert summary["count"] == 5 and summary["name"] == "b" and summary["seed"] == 3


@pytest.mark.parametrize("args, message", [
    (["analyze", "--values", "1, two"], "'two'"),
    (["analyze", "--values", "1", "--bits", "17"], "between 2 and 16"),
    (["analyze", "--values", "1", "--range", "2", "1"], "greater than"),
    (["analyze", "/no/such/file.npy"], "cannot read"),
    (["analyze"], "no input"),
    (["analyze", "--values", "1", "--mode", "asymmetric", "--narrow-range"], "narrow range"),
])
def test_bad_input_exits_2_with_one_line(args, message):
    out = run(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
