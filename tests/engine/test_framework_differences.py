"""Why do they differ? The table of every convention on the same settings, its counts checked
against the analyses themselves, and the command line's --conventions."""

import numpy as np

from quantcalc.cli.main import main
from quantcalc.engine.analysis import analyze
from quantcalc.engine.config import Config
from quantcalc.engine.framework_differences import REASONS, differences


def _row(doc, name):
    return next(row for row in doc["rows"] if row["convention"] == name)


def test_pytorchs_scale_rule_is_named():
    """amax 127.5: PyTorch's scale is 127.5 / 127.5 = 1, exact's 127.5 / 127; 2.5 codes 2
    under PyTorch (a tie to even) and 2.49 -> 2 under exact, -1.5 -> -2 both, 127.5 -> 127."""
    x = np.array([127.5, 0.5, 2.5, -1.5, 60.3], np.float32)
    doc = differences(x, {})
    pytorch, exact = _row(doc, "pytorch"), _row(doc, "exact")
    assert pytorch["scale"] == 1.0 and exact["scale"] == 127.5 / 127
    codes = analyze(x, Config(convention="pytorch"), keep=5).per_value.codes
    base = analyze(x, Config(), keep=5).per_value.codes
    assert pytorch["codes_differ"] == int((codes != base).sum()) > 0
    assert pytorch["reasons"]["scale_rule"] == pytorch["codes_differ"]
    assert exact["codes_differ"] == 0
    assert "narrow" in _row(doc, "onnxruntime")["refused"]


def test_float32_ties_and_calibration_are_told_apart():
    x = np.random.default_rng(0).standard_normal((64, 256)).astype(np.float32)
    doc = differences(x, {"bits": 16, "narrow_range": True})
    for name in ("pytorch", "onnxruntime", "tensorrt"):
        row = _row(doc, name)
        codes = analyze(x, Config(bits=16, narrow_range=True, convention=name),
                        keep=x.size).per_value.codes
        base = analyze(x, Config(bits=16, narrow_range=True), keep=x.size).per_value.codes
        assert row["codes_differ"] == int((codes != base).sum()) > 0
        assert row["reasons"]["float32"] == row["codes_differ"]  # same rule, float32 only
    doc = differences(x, {"calibration": "percentile", "percentile": 99.9,
                          "narrow_range": True})
    row = _row(doc, "onnxruntime")
    assert row["reasons"]["calibration"] == row["codes_differ"] > 0
    assert sum(row["reasons"][r] for r in REASONS) == row["codes_differ"]
    assert "MinMaxObserver" in _row(doc, "pytorch")["refused"]


def test_floor_is_named():
    x = np.array([1e-9, -3e-9, 2e-9], np.float32)
    row = _row(differences(x, {}), "pytorch")
    assert row["scale"] == float(np.finfo(np.float32).eps)
    assert row["reasons"]["floor"] == row["codes_differ"] > 0


def test_cli_prints_the_table(tmp_path, capsys):
    path = tmp_path / "v.txt"
    path.write_text("0.5 1.5 -2.5 127.5 3.25\n")
    assert main(["analyze", str(path), "--conventions"]) == 0
    out = capsys.readouterr().out
    assert "Why do they differ?" in out
    assert "PyTorch" in out and "1 scale rule" in out
    assert "ONNX Runtime          refused: ONNX Runtime's symmetric INT8" in out
    assert main(["analyze", str(path), "--convention", "tensorrt", "--mode",
                 "asymmetric"]) == 2
    assert "symmetrically" in capsys.readouterr().err
