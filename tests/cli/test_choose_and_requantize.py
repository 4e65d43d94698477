"""Choose, don't guess: a file of several tensors needs --tensor (the command lists the first few
and the count), and a result is named after its tensor. A checkpoint that is already quantized
has nothing to plan, said in one line before any scan, unless --allow-requantize asks for its
dequantized values to be measured."""

import json

import numpy as np
import pytest

from tests.support import checkpoints as C
from tests.support.command import quantcalc, refused


@pytest.mark.parametrize("command", ["analyze", "compare"])
def test_a_file_of_several_tensors_needs_tensor(tmp_path, command):
    np.savez(tmp_path / "m.npz", **{f"w{i}": np.arange(4.0) + i for i in range(7)})
    extra = ["--config", "format=int bits=4"] if command == "compare" else []
    line = refused(quantcalc(command, tmp_path / "m.npz", *extra))
    assert "m.npz holds 7 tensors: choose one with --tensor NAME" in line
    assert "w0, w1, w2, w3, w4, ... (7 in all)" in line and "w5" not in line
    chosen = quantcalc(command, tmp_path / "m.npz", "--tensor", "w5", *extra)
    assert chosen.returncode == 0, chosen.stderr


def test_a_result_is_named_after_its_tensor_not_the_file(tmp_path):
    path = tmp_path / "model.safetensors"
    C.write_safetensors(path, {"layers.0.weight": np.linspace(-1, 1, 64, dtype=np.float32)})
    out = quantcalc("analyze", path, "--json", "-")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["name"] == "layers.0.weight"
    named = quantcalc("analyze", path, "--name", "mine", "--json", "-")
    assert json.loads(named.stdout)["name"] == "mine"
    np.save(tmp_path / "act.npy", np.arange(8.0))
    assert json.loads(quantcalc("analyze", tmp_path / "act.npy", "--json", "-").stdout)[
        "name"] == "act"


gguf = pytest.importorskip("gguf", reason="gguf (llama.cpp's gguf-py) writes the test files")


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    folder = tmp_path_factory.mktemp("requantize")
    arrays = C.make_arrays(C.llama_tensors(layers=1, hidden=256, ffn=512, vocab=256,
                                           gguf_names=True), seed=8)
    C.write_gguf(folder / "model.Q4_0.gguf", arrays,
                 {n: "Q4_0" for n, x in arrays.items() if x.ndim == 2})
    return folder / "model.Q4_0.gguf"


def test_a_quantized_gguf_has_nothing_to_plan_before_any_scan(quantized, tmp_path):
    out = quantcalc("scan", quantized, "--format", "q8_0", "--plan-bpw", "6", "--json",
                    tmp_path / "scan.json", "--quiet")
    line = refused(out)
    assert "nothing to plan: model.Q4_0.gguf is already quantized (9 tensors in Q4_0)" in line
    assert "--allow-requantize" in line
    assert not (tmp_path / "scan.json").exists()  # refused before the scan
    scanned = quantcalc("scan", quantized, "--format", "q8_0", "--json", tmp_path / "s.json",
                        "--quiet")
    assert scanned.returncode == 0, scanned.stderr
    line = refused(quantcalc("plan", tmp_path / "s.json", "--target-bpw", "6"))
    assert line.startswith(f"quantcalc: error: {tmp_path / 's.json'}: nothing to plan")


def test_allow_requantize_plans_the_dequantized_values(quantized, tmp_path):
    out = quantcalc("scan", quantized, "--format", "q8_0", "--format", "q4_k",
                    "--allow-requantize", "--quiet", "--plan-bpw", "7",
                    "--plan-json", tmp_path / "plan.json", "--plan-tensor-types",
                    tmp_path / "types.txt")
    assert out.returncode == 0, out.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    command = plan["llama_quantize"]["command"]
    assert "--allow-requantize --pure model.Q4_0.gguf model.Q4_0-" in command
    names = {r["gguf_name"] for r in plan["tensors"]}
    for line in (tmp_path / "types.txt").read_text().split():
        pattern, kind = line.rsplit("=", 1)
        assert kind in ("q8_0", "q4_k") and pattern.replace("\\", "")[:-1] in names
