"""llama.cpp's importance matrices: both file formats, GGUF headers against llama.cpp's own gguf
package, and the weighted search end to end against ggml."""

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support import ggml_reference as ggml
from quantcalc import QuantcalcError
from quantcalc.readers import gguf as gguf_file
from quantcalc.readers import imatrix

gguf = pytest.importorskip("gguf", reason="llama.cpp's gguf package is a test dependency")
ROOT = Path(__file__).resolve().parents[2]


def write_gguf_imatrix(path, entries, counts, chunks=7, datasets=("wiki.train.raw",)):
    writer = gguf.GGUFWriter(str(path), "imatrix")
    writer.add_uint32("imatrix.chunk_count", chunks)
    writer.add_uint32("imatrix.chunk_size", 512)
    writer.add_array("imatrix.datasets", list(datasets))
    for name, sums in entries.items():
        writer.add_tensor(f"{name}.in_sum2", np.asarray(sums, np.float32))
        writer.add_tensor(f"{name}.counts", np.asarray(counts[name], np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_legacy_imatrix(path, entries, ncall, chunks=5, dataset="calibration.txt"):
    out = struct.pack("<i", len(entries))
    for name, sums in entries.items():
        raw = name.encode()
        sums = np.asarray(sums, np.float32)
        out += struct.pack("<i", len(raw)) + raw + struct.pack("<ii", ncall, sums.size)
        out += sums.tobytes()
    out += struct.pack("<i", chunks) + struct.pack("<i", len(dataset)) + dataset.encode()
    path.write_bytes(out)


def test_gguf_imatrix_weights_are_sums_over_counts(tmp_path):
    rng = np.random.default_rng(0)
    sums = rng.uniform(0, 50, (2, 256)).astype(np.float32)   # two experts
    write_gguf_imatrix(tmp_path / "i.gguf", {"blk.0.ffn_down.weight": sums.reshape(-1),
                                             "blk.0.attn_q.weight": sums[0]},
                       {"blk.0.ffn_down.weight": [10, 0], "blk.0.attn_q.weight": [4]})
    matrix = imatrix.read((tmp_path / "i.gguf").read_bytes(), "i.gguf")
    assert sorted(matrix.names()) == ["blk.0.attn_q.weight", "blk.0.ffn_down.weight"]
    assert matrix.chunk_count == 7 and matrix.datasets == ["wiki.train.raw"]
    assert np.array_equal(matrix.for_tensor("blk.0.attn_q.weight", 256), sums[0] / np.float32(4))
    assert np.array_equal(matrix.for_tensor("blk.0.ffn_down.weight", 256, expert=0),
                          sums[0] / np.float32(10))
    # an expert that saw no input weighs every column 1, as llama-quantize does
    assert np.all(matrix.for_tensor("blk.0.ffn_down.weight", 256, expert=1) == 1)
    with pytest.raises(QuantcalcError, match="2 experts"):
        matrix.for_tensor("blk.0.ffn_down.weight", 256)


def test_legacy_imatrix_weights_are_sums_over_calls(tmp_path):
    sums = np.arange(1, 257, dtype=np.float32)
    write_legacy_imatrix(tmp_path / "i.dat", {"output.weight": sums}, ncall=8)
    matrix = imatrix.read((tmp_path / "i.dat").read_bytes(), "i.dat")
    assert matrix.chunk_count == 5 and matrix.datasets == ["calibration.txt"]
    assert np.array_equal(matrix.for_tensor("output.weight", 256), sums / np.float32(8))


def test_imatrix_errors_name_the_problem(tmp_path):
    write_legacy_imatrix(tmp_path / "i.dat", {f"blk.{i}.attn_k.weight": np.ones(64)
                                              for i in range(40)}, ncall=1)
    matrix = imatrix.read((tmp_path / "i.dat").read_bytes(), "i.dat")
    with pytest.raises(QuantcalcError, match=r"no entry for 'nope'.*and 35 more \(40 in all\)"):
        matrix.for_tensor("nope", 64)
    with pytest.raises(QuantcalcError, match="not a whole number of rows of 48"):
        matrix.for_tensor("blk.0.attn_k.weight", 48)
    for junk in (b"", b"\x01\x00", b"GGUF\x03\x00\x00\x00" + b"\xff" * 16, b"\x05\x00\x00\x00"):
        with pytest.raises(QuantcalcError) as err:
            imatrix.read(junk, "junk")
        assert err.value.field in ("imatrix", "file")


def test_the_gguf_header_reader_agrees_with_llama_cpps_gguf_package(tmp_path):
    path = tmp_path / "model.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_uint32("llama.block_count", 2)
    writer.add_string("general.name", "tiny ☃")
    writer.add_array("tokenizer.ggml.scores", [0.5, -1.25, 3.0])
    writer.add_bool("general.flag", True)
    tensors = {"token_embd.weight": np.arange(24, dtype=np.float32).reshape(4, 6),
               "blk.0.attn_q.weight": np.ones((6, 6), np.float16),
               "output_norm.weight": np.full(6, 2.5, np.float32)}
    for name, value in tensors.items():
        writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    data = path.read_bytes()
    ours = gguf_file.read_bytes_header(data, "model.gguf")
    theirs = gguf.GGUFReader(str(path))
    assert ours.metadata["general.name"] == "tiny ☃"
    assert ours.metadata["tokenizer.ggml.scores"] == [0.5, -1.25, 3.0]
    assert ours.metadata["general.flag"] is True and ours.metadata["llama.block_count"] == 2
    assert set(ours.tensors) == {t.name for t in theirs.tensors}
    for tensor in theirs.tensors:
        info = ours.tensors[tensor.name]
        assert info.offset == tensor.data_offset and info.ggml_type == int(tensor.tensor_type)
        assert info.shape == tuple(reversed([int(n) for n in tensor.shape]))
        assert np.array_equal(gguf_file.plain_tensor(data, ours, info),
                              tensors[tensor.name])


def test_a_hostile_gguf_header_gets_a_message():
    header = b"GGUF" + struct.pack("<IQQ", 3, 2 ** 40, 2 ** 40)
    with pytest.raises(QuantcalcError, match="more than a file"):
        gguf_file.read_bytes_header(header + bytes(64), "x.gguf")
    nested = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + b"k"
    nested += struct.pack("<I", 9) + (struct.pack("<IQ", 9, 1)) * 20
    with pytest.raises(QuantcalcError, match="nested more than 8 deep"):
        gguf_file.read_bytes_header(nested + bytes(64), "x.gguf")


def test_cli_imatrix_end_to_end_equals_ggml(tmp_path):
    rng = np.random.default_rng(5)
    weights = rng.standard_normal((8, 512)).astype(np.float32)
    np.save(tmp_path / "w.npy", weights)
    sums = rng.uniform(0.1, 30, 512).astype(np.float32)
    write_gguf_imatrix(tmp_path / "i.gguf", {"blk.3.ffn_up.weight": sums},
                       {"blk.3.ffn_up.weight": [16]})
    values_csv = tmp_path / "v.csv"
    out = subprocess.run(
        [sys.executable, "-m", "quantcalc", "analyze", str(tmp_path / "w.npy"), "--format", "q4_k",
         "--imatrix", str(tmp_path / "i.gguf"), "--imatrix-entry", "blk.3.ffn_up.weight",
         "--json", "-", "--csv", str(values_csv)],
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "py")})
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["imatrix"] is True
    _, expected = ggml.quantize("q4_K", weights, sums / np.float32(16))
    recon = np.loadtxt(values_csv, delimiter=",", skiprows=1, usecols=3)
    assert np.array_equal(recon, expected.reshape(-1).astype(np.float64))
    missing = subprocess.run(
        [sys.executable, "-m", "quantcalc", "analyze", str(tmp_path / "w.npy"), "--format", "q4_k",
         "--imatrix", str(tmp_path / "i.gguf")],
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "py")})
    assert missing.returncode == 2 and "no entry for 'w'" in missing.stderr


def test_importance_weighted_error_is_reported_beside_the_plain_metrics():
    from quantcalc import Config, analyze
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 256)).astype(np.float32)
    weights = rng.uniform(0, 5, 256).astype(np.float32)
    r = analyze(x, Config(format="q4_k"), importance=weights)
    error = x.astype(np.float64) - r.per_value.dequantized.reshape(x.shape)
    a = np.tile(weights.astype(np.float64), (4, 1))
    expected = np.sum(a * error ** 2) / np.sum(a)
    s = r.summary()
    assert s["weighted_mse"] == pytest.approx(expected, rel=1e-12)
    assert s["weighted_sqnr_db"] == pytest.approx(
        10 * np.log10(np.sum(a * x.astype(np.float64) ** 2) / np.sum(a * error ** 2)), rel=1e-12)
    assert s["weighted_mse_ratio"] == pytest.approx(expected / s["mse"], rel=1e-12)
    # equal weights: the weighted MSE is the MSE
    flat = analyze(x, Config(format="q4_k"), importance=np.ones(256)).summary()
    assert flat["weighted_mse"] == pytest.approx(flat["mse"], rel=1e-12)
    assert analyze(x, Config(format="q4_k")).summary()["weighted_mse"] is None
