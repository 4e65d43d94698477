"""Where the reports go (issue 26): an output is never one of the inputs (symlinks, hard links
and relative spellings included, the files of a model folder or a shard index too), two reports
never share a file, every output path is checked before any work, a report is never left
half-written, and --jobs is capped at the tensors and the cores."""

import json
import os
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest

from quantcalc import api
from quantcalc.cli import main as cli
from tests.support import checkpoints as C
from tests.support.command import ENV, ROOT, quantcalc
from tests.support.command import refused

VALUES = "-1.25, -0.92, -0.51, -0.10, 0, 0.14, 0.37, 0.79, 1.12, 1.46"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A checkpoint as one file, as shards with their index, a scan's JSON, an array and an
    importance matrix: the inputs a report must never overwrite."""
    from tests.readers.test_imatrix import write_gguf_imatrix

    folder = tmp_path_factory.mktemp("inputs")
    arrays = C.make_arrays(C.llama_tensors(layers=1, hidden=256, ffn=512, vocab=256), seed=5)
    C.write_safetensors(folder / "victim.safetensors", arrays)
    C.write_sharded(folder / "sharded", arrays, shards=2)
    np.save(folder / "v.npy", np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32))
    write_gguf_imatrix(folder / "im.gguf", {"v": np.ones(64, np.float32)}, {"v": [3]})
    out = quantcalc("scan", folder / "victim.safetensors", "--format", "q4_k", "--format", "q6_k",
                    "--json", folder / "s.json", "--quiet")
    assert out.returncode == 0, out.stderr
    return folder


def unchanged(*paths):
    """A context that asserts the files at `paths` hold the same bytes after it."""
    class Same:
        def __enter__(self):
            self.before = {p: p.read_bytes() for p in paths}

        def __exit__(self, *exc):
            for p, data in self.before.items():
                assert p.read_bytes() == data, f"{p.name} was overwritten"
    return Same()


# ---------------------------------------------------------------- 1. an output that is an input
@pytest.mark.parametrize("case", ["scan file", "analyze npy", "analyze imatrix", "plan json",
                                  "folder shard", "index shard", "index itself", "compare npy",
                                  "scan imatrix"])
def test_an_output_that_is_an_input_is_refused(case, files):
    f = files
    sharded = f / "sharded"
    shard = sharded / "model-00002-of-00002.safetensors"
    index = sharded / "model.safetensors.index.json"
    args, victim = {
        "scan file": (["scan", f / "victim.safetensors", "--format", "q8_0", "--csv",
                       f / "victim.safetensors"], f / "victim.safetensors"),
        "analyze npy": (["analyze", f / "v.npy", "--csv", f / "v.npy"], f / "v.npy"),
        "analyze imatrix": (["analyze", f / "v.npy", "--format", "q4_0", "--imatrix",
                             f / "im.gguf", "--pdf", f / "im.gguf"], f / "im.gguf"),
        "plan json": (["plan", f / "s.json", "--target-bpw", "5", "--json", f / "s.json"],
                      f / "s.json"),
        "folder shard": (["scan", sharded, "--format", "q8_0", "--json", shard], shard),
        "index shard": (["scan", index, "--format", "q8_0", "--csv", shard], shard),
        "index itself": (["scan", index, "--format", "q8_0", "--pdf", index], index),
        "compare npy": (["compare", f / "v.npy", "--config", "format=int bits=4", "--json",
                         f / "v.npy"], f / "v.npy"),
        "scan imatrix": (["scan", f / "victim.safetensors", "--format", "q4_k", "--imatrix",
                          f / "im.gguf", "--json", f / "im.gguf", "--quiet"], f / "im.gguf"),
    }[case]
    with unchanged(victim):
        line = refused(quantcalc(*args), "input", victim.name)
    assert "Traceback" not in line


def test_a_report_beside_the_inputs_is_written(files):
    """A folder's other files are not inputs: a scan's JSON may go next to the shards."""
    out = quantcalc("scan", files / "sharded", "--format", "q8_0", "--quiet", "--json",
                    files / "sharded" / "scan.json")
    assert out.returncode == 0, out.stderr
    assert json.loads((files / "sharded" / "scan.json").read_text())["kind"] == "quantcalc-scan"


def test_links_and_relative_spellings_of_an_input_are_the_input(files, tmp_path):
    victim = files / "v.npy"
    link = tmp_path / "link.csv"
    link.symlink_to(victim)
    hard = tmp_path / "hard.csv"
    os.link(victim, hard)
    relative = os.path.relpath(victim, ROOT)  # the command runs in ROOT
    dotted = str(files / "." / ".." / files.name / "v.npy")
    with unchanged(victim):
        for output in (link, hard, relative, dotted):
            refused(quantcalc("analyze", victim, "--csv", output), "input", "v.npy")
        # the input given by a relative path, the output by an absolute one
        refused(quantcalc("analyze", relative, "--summary-csv", victim), "input")


def test_two_reports_to_one_file_are_refused(files, tmp_path):
    target = tmp_path / "r.out"
    out = quantcalc("analyze", "--values", VALUES, "--csv", target, "--summary-csv",
                    tmp_path / "." / "r.out")
    refused(out, "--csv", "--summary-csv", "same file")
    assert not target.exists()
    target.write_text("old")
    (tmp_path / "other.out").symlink_to(target)
    refused(quantcalc("analyze", "--values", VALUES, "--json", target, "--csv",
                      tmp_path / "other.out"), "same file")
    assert target.read_text() == "old"


def test_stdin_is_not_a_file_and_other_outputs_are_written(files, tmp_path):
    out = quantcalc("analyze", "-", "--csv", tmp_path / "v.csv", "--json", "-", stdin="1 2 3")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["count"] == 3 and (tmp_path / "v.csv").exists()


# ---------------------------------------------------------------- 2. bad paths, before any work
@pytest.mark.parametrize("command", ["analyze", "scan", "plan"])
def test_a_bad_output_path_is_refused_before_any_work(command, files, tmp_path, monkeypatch,
                                                      capsys):
    called = []

    def work(*args, **kwargs):
        called.append(args)
        return {"error": {"kind": "input", "message": "the work ran", "field": "values"}}

    name = {"analyze": "analyze", "scan": "scan_model", "plan": "read_scan"}[command]
    monkeypatch.setattr(api, name, work)
    base = {"analyze": ["analyze", "--values", VALUES],
            "scan": ["scan", str(files / "victim.safetensors"), "--format", "q8_0", "--quiet"],
            "plan": ["plan", str(files / "s.json"), "--target-bpw", "5"]}[command]
    ok = tmp_path / "ok.json"
    for bad, words in (("/nonexistent/x.csv", ["cannot write", "/nonexistent", "does not exist"]),
                       (str(tmp_path), ["cannot write", "folder"])):
        assert cli.main(base + ["--json", str(ok), "--csv", bad]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and all(w in lines[0] for w in words), lines
        assert not called and not ok.exists()


def test_an_output_in_a_plain_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    refused(quantcalc("analyze", "--values", VALUES, "--json", tmp_path / "file" / "r.json"),
            "cannot write", "not a folder")


# ---------------------------------------------------------------- 3. never half-written
def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    old = tmp_path / "values.csv"
    old.write_text("the previous report\n")
    many = " ".join(str(v) for v in np.random.default_rng(1).standard_normal(2000))
    out = subprocess.run([sys.executable, "-m", "quantcalc", "analyze", "--values", many, "--csv",
                          str(old)], capture_output=True, text=True, cwd=ROOT, env=ENV,
                         timeout=300, preexec_fn=_limit_file_size)
    refused(out, "cannot write", str(old))
    assert old.read_text() == "the previous report\n"  # not a truncated half of the new one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["values.csv"]


def test_a_report_replaces_a_file_and_writes_through_a_link(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    os.chmod(real, 0o640)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    out = quantcalc("analyze", "--values", VALUES, "--json", link)
    assert out.returncode == 0, out.stderr
    assert link.is_symlink() and json.loads(real.read_text())["count"] == 10
    assert real.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real.json"]
    null = quantcalc("analyze", "--values", VALUES, "--json", "/dev/null")
    assert null.returncode == 0 and os.path.exists("/dev/null") and \
        not os.path.isfile("/dev/null")


# ---------------------------------------------------------------- 6. --jobs
@pytest.fixture(scope="module")
def two_tensors(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two")
    rng = np.random.default_rng(2)
    C.write_safetensors(folder / "two.safetensors",
                        {"a.weight": rng.standard_normal((32, 64)).astype(np.float32),
                         "b.weight": rng.standard_normal((32, 64)).astype(np.float32)})
    return folder / "two.safetensors"


@pytest.mark.parametrize("jobs", ["1000", "99999999999"])
def test_jobs_are_capped_at_the_tensors_and_the_cores(jobs, two_tensors, tmp_path):
    out = quantcalc("scan", two_tensors, "--format", "q8_0", "--jobs", jobs, "--quiet",
                    "--json", tmp_path / "s.json")
    assert out.returncode == 0, out.stderr[-800:]
    lines = out.stderr.strip().splitlines()
    used = min(2, os.cpu_count() or 1)
    assert len(lines) == 1 and lines[0].startswith(f"quantcalc: --jobs {jobs}: "), lines
    assert f"{used} worker process" in lines[0] and "2 tensors" in lines[0], lines
    assert len(json.loads((tmp_path / "s.json").read_text())["tensors"]) == 2


def test_jobs_below_one_are_refused_and_the_facade_caps_too(two_tensors):
    refused(quantcalc("scan", two_tensors, "--format", "q8_0", "--jobs", "0"), "--jobs")
    refused(quantcalc("scan", two_tensors, "--format", "q8_0", "--jobs", "-3"), "--jobs")
    reply = api.scan_model([str(two_tensors)], ["q8_0"], jobs=99999999999)
    assert "error" not in reply, reply
    assert len(reply["document"]["tensors"]) == 2
