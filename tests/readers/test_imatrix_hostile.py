"""Importance matrices that would mislead (issue 26, second round): sums whose shape disagrees
with their counts, values that overflow ggml's float32 sums, empty entries, and paths that are
not files."""

import os
import subprocess
import sys

import numpy as np
import pytest

from quantcalc import QuantcalcError, api
from quantcalc.readers import imatrix
from tests.readers.test_imatrix import write_gguf_imatrix, write_legacy_imatrix
from tests.support import checkpoints as C
from tests.support.command import ENV, ROOT

pytest.importorskip("gguf", reason="llama.cpp's gguf package is a test dependency")


@pytest.mark.parametrize("sums, counts", [
    (np.ones((1, 256)), [2, 3]),     # one row of sums, two counts
    (np.ones((128, 2)), [4]),        # 128 rows, one count
    (np.ones((2, 3, 64)), [1, 1]),   # not a matrix
])
def test_sums_whose_shape_disagrees_with_their_counts_are_refused(sums, counts, tmp_path):
    write_gguf_imatrix(tmp_path / "i.gguf", {"blk.0.ffn_up.weight": sums},
                       {"blk.0.ffn_up.weight": counts})
    with pytest.raises(QuantcalcError) as err:
        imatrix.read((tmp_path / "i.gguf").read_bytes(), "i.gguf")
    assert err.value.field == "imatrix"
    assert "'blk.0.ffn_up.weight'" in err.value.message
    assert f"in_sum2 of shape {list(sums.shape)}" in err.value.message
    assert f"{len(counts)} count(s)" in err.value.message


def test_sums_of_one_row_per_count_stay_readable(tmp_path):
    """llama-imatrix's own layout: in_sum2 (matrices, columns), counts (matrices, 1)."""
    sums = np.arange(1, 2 * 64 + 1, dtype=np.float32).reshape(2, 64)
    write_gguf_imatrix(tmp_path / "i.gguf", {"e": sums}, {"e": np.array([[2.0], [4.0]])})
    matrix = imatrix.read((tmp_path / "i.gguf").read_bytes(), "i.gguf")
    assert np.array_equal(matrix.for_tensor("e", 64, expert=1), sums[1] / np.float32(4))


def test_imatrix_values_that_overflow_are_blamed_not_the_data(tmp_path):
    x = np.random.default_rng(0).standard_normal((4, 256)).astype(np.float32)
    np.save(tmp_path / "w.npy", x)
    write_legacy_imatrix(tmp_path / "big.dat", {"w": np.full(256, 3e38, np.float32)}, ncall=1)
    reply = api.analyze({"format": "q4_k"}, {"file_path": str(tmp_path / "w.npy"), "imatrix": {
        "file_path": str(tmp_path / "big.dat"), "entry": "w"}})
    error = reply["error"]
    assert error["field"] == "imatrix", error
    assert "'w'" in error["message"] and "overflow" in error["message"]
    assert "3e+38" in error["message"]
    for bad, words in ((np.inf, "NaN or infinite"), (np.nan, "NaN or infinite"),
                       (-1.0, "negative")):
        values = np.ones(256, np.float32)
        values[7] = bad
        write_legacy_imatrix(tmp_path / "bad.dat", {"w": values}, ncall=1)
        with pytest.raises(QuantcalcError, match=words):
            imatrix.read((tmp_path / "bad.dat").read_bytes(), "bad.dat")


def test_an_empty_entry_says_it_is_empty(tmp_path):
    write_gguf_imatrix(tmp_path / "i.gguf", {"e": np.ones(0, np.float32)}, {"e": [2]})
    with pytest.raises(QuantcalcError) as err:
        imatrix.read((tmp_path / "i.gguf").read_bytes(), "i.gguf")
    assert "'e' is empty" in err.value.message and "-1" not in err.value.message
    # an entry that is empty by the time it is looked up (built by hand) says so too
    matrix = imatrix.ImportanceMatrix({"e": np.ones(0, np.float32)}, source="m")
    with pytest.raises(QuantcalcError, match="entry 'e' is empty"):
        matrix.for_tensor("e", 64)


def test_an_imatrix_path_must_be_a_regular_file(tmp_path):
    for path, words in (("/nonexistent/i.dat", "cannot read i.dat: No such file"),
                        (str(tmp_path), "not a regular file"),
                        ("/dev/zero", "zero is not a regular file")):
        with pytest.raises(QuantcalcError) as err:
            imatrix.read_path(path)
        assert words in err.value.message and err.value.field == "imatrix"
    write_legacy_imatrix(tmp_path / "i.dat", {"w": np.ones(64, np.float32)}, ncall=2)
    os.symlink("/dev/zero", tmp_path / "zero.dat")
    with pytest.raises(QuantcalcError, match="zero.dat is not a regular file"):
        imatrix.read_path(tmp_path / "zero.dat")
    assert np.all(imatrix.read_path(tmp_path / "i.dat").for_tensor("w", 64) == 0.5)


@pytest.mark.parametrize("where", ["/nonexistent/i.dat", "folder", "/dev/zero"])
def test_scan_with_an_imatrix_that_is_not_a_file_is_one_line(where, tmp_path):
    C.write_safetensors(tmp_path / "m.safetensors",
                        {"w": np.ones((4, 256), np.float32)})
    path = str(tmp_path) if where == "folder" else where
    limit = ("import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, "
             "2 << 30)); sys.argv = ['quantcalc'] + sys.argv[1:]; "
             "runpy.run_module('quantcalc', run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", limit, "scan", str(tmp_path / "m.safetensors"),
                          "--format", "q4_k", "--imatrix", path], capture_output=True,
                         text=True, cwd=ROOT, timeout=120, env=ENV)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr[-600:]
    assert any(w in lines[0] for w in ("not a regular file", "No such file", "Is a directory"))
