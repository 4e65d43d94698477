"""Ctrl-C during a scan (issue 26): the first stops the scan and the reports of the tensors done
are written; once they are being written, a second Ctrl-C waits until they are whole, then the
command exits 130 with one line, no traceback."""

import csv
import io
import json
import signal
import subprocess
import sys

import pytest

from tests.support import checkpoints as C
from tests.support.command import ENV, ROOT

# The command line with two Ctrl-Cs sent at chosen moments: the first two tensors into the scan,
# then one while each report is made (the reports are then being written).
SCRIPT = r"""
import os, signal, sys
from quantcalc import api
from quantcalc.cli import main

real_scan, real_export, sent = api.scan_model, api.scan_export, []

def scan_model(*args, **kwargs):
    told = kwargs.get("on_progress")
    def on_progress(state):
        if state["tensors"] >= 2 and not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)
        if told:
            told(state)
    kwargs["on_progress"] = on_progress
    return real_scan(*args, **kwargs)

def scan_export(document, kind):
    os.kill(os.getpid(), signal.SIGINT)
    return real_export(document, kind)

api.scan_model, api.scan_export = scan_model, scan_export
sys.exit(main.main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return C.small_llama(tmp_path_factory.mktemp("ctrl_c"), seed=7, layers=2)


def run_with_ctrl_c(*args):
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *map(str, args)], capture_output=True, text=True,
        cwd=ROOT, env=ENV, timeout=300,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_a_second_ctrl_c_while_the_reports_are_written_waits_for_them(model, tmp_path):
    path, names = model
    out = run_with_ctrl_c("scan", path, "--format", "q8_0", "--quiet",
                          "--json", tmp_path / "s.json", "--csv", tmp_path / "s.csv",
                          "--pdf", tmp_path / "s.pdf")
    assert out.returncode == 130, out.stderr[-1500:]
    assert "Traceback" not in out.stderr and "KeyboardInterrupt" not in out.stderr
    doc = json.loads((tmp_path / "s.json").read_text())
    done = len(doc["tensors"])
    assert 0 < done < len(names)
    assert doc["interrupted"] == {"tensors_done": done, "tensors_total": len(names)}
    assert out.stderr.strip().splitlines() == [
        f"quantcalc: interrupted after {done} of {len(names)} tensors; the reports hold those"]
    rows = list(csv.reader(io.StringIO((tmp_path / "s.csv").read_text())))
    assert len(rows) == 1 + done and all(len(r) == len(rows[0]) for r in rows)
    pdf = (tmp_path / "s.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "s.json", "s.pdf"]


def test_ctrl_c_while_a_complete_scans_reports_are_written_finishes_them(model, tmp_path):
    """The scan ran to the end; Ctrl-C comes while its reports are written: they are finished,
    the plan asked for is not made, and the command exits 130."""
    path, names = model
    script_args = ("scan", path, "--format", "q8_0", "--format", "q6_k", "--quiet",
                   "--tensor", names[1], "--json", tmp_path / "s.json",
                   "--plan-bpw", "7", "--plan-json", tmp_path / "p.json")
    out = run_with_ctrl_c(*script_args)
    assert out.returncode == 130, out.stderr[-1500:]
    assert "Traceback" not in out.stderr
    doc = json.loads((tmp_path / "s.json").read_text())
    assert "interrupted" not in doc and len(doc["tensors"]) == 1
    assert not (tmp_path / "p.json").exists()
