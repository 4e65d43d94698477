"""Checkpoints that are not what they claim (issue 26, second round): an index of missing or
pickled shards, big-endian arrays, damaged .npz members, tensors with no values or no axes."""

import io
import json
import os

import numpy as np
import pytest

from quantcalc import QuantcalcError, api
from quantcalc.readers import checkpoint
from quantcalc.scan import model_scan as scan
from tests.readers.gguf_builder import gguf_bytes, safetensors_bytes
from tests.support import checkpoints as C
from tests.support.command import quantcalc as cli, refused


# ---------------------------------------------------------------- E: an index's shards
def test_an_index_of_missing_shards_lists_the_folder_once(tmp_path, monkeypatch):
    for i in range(500):
        (tmp_path / f"other-{i}.txt").write_bytes(b"")
    shards = [f"model-{i:05d}-of-02000.safetensors" for i in range(2000)]
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {f"w{i}": s for i, s in enumerate(shards)}}))
    listings = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path=".": listings.append(path) or real(path))
    with pytest.raises(QuantcalcError) as err:
        checkpoint.open_checkpoint([index])
    assert len(listings) <= 2  # once per shard before: 42 s for 20,000 shards
    message = err.value.message
    assert "2,000 shards and 2,000 of them are missing" in message
    assert "'model-00000-of-02000.safetensors'" in message and "1,995 more" in message


def test_an_index_with_some_shards_missing_names_them(tmp_path):
    arrays = C.make_arrays(C.llama_tensors(layers=1, hidden=32, ffn=64, vocab=64))
    index = C.write_sharded(tmp_path, arrays, shards=3)
    os.remove(tmp_path / "model-00002-of-00003.safetensors")
    with pytest.raises(QuantcalcError, match=r"lists 3 shards and 1 of them are missing: "
                                             r"'model-00002-of-00003.safetensors'\. Give all"):
        checkpoint.open_checkpoint([index])


def test_an_index_naming_a_pickle_says_it_is_a_pickle(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x02}q\x00.")
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"w": "pytorch_model.bin"}}))
    with pytest.raises(QuantcalcError) as err:
        checkpoint.open_checkpoint([index])
    assert "PyTorch pickle" in err.value.message and "runs code" in err.value.message
    assert "npy" not in err.value.message
    refused(cli("scan", index, "--format", "q8_0"), "pytorch_model.bin",
                     "PyTorch pickle")
    index.write_text(json.dumps({"weight_map": {"w": "notes.txt"}}))
    with pytest.raises(QuantcalcError, match="names a shard 'notes.txt' that is not a"):
        checkpoint.open_checkpoint([index])


# ---------------------------------------------------------------- F: big-endian arrays
@pytest.mark.parametrize("dtype", [">f4", ">f8", ">f2"])
def test_a_big_endian_npy_is_read_by_scan_and_analyze_alike(dtype, tmp_path):
    values = np.random.default_rng(2).standard_normal((4, 64)).astype(dtype)
    np.save(tmp_path / "be.npy", values)
    model = checkpoint.open_checkpoint([tmp_path / "be.npy"])
    entry = model.tensors[0]
    assert entry.readable and entry.dtype == {"f4": "F32", "f8": "F64", "f2": "F16"}[dtype[1:]]
    read = checkpoint.SlabReader(entry).read_all()
    assert read.dtype.isnative and np.array_equal(read, values.astype(read.dtype))
    doc = scan.scan(model, scan.formats_from_specs(["q8_0"]))
    row = doc["tensors"][0]
    assert row["notes"] == [] and row["results"][0]["error"] is None
    alone = api.analyze({"format": "q8_0"}, {"file_path": str(tmp_path / "be.npy")})
    assert "error" not in alone, alone
    assert row["results"][0]["sqnr_db"] == pytest.approx(alone["summary"]["sqnr_db"], rel=1e-12)


def test_a_big_endian_npz_member_is_read_in_slabs(tmp_path):
    values = np.arange(6 * 32, dtype=">f4").reshape(6, 32)
    np.savez(tmp_path / "m.npz", w=values)
    entry = checkpoint.open_checkpoint([tmp_path / "m.npz"]).get("w")
    slabs = [s for _, s in checkpoint.SlabReader(entry).slabs(4)]
    assert np.array_equal(np.concatenate(slabs), values.astype(np.float32))


# ---------------------------------------------------------------- H: damaged .npz members
def _damaged_npz(path, compressed, size):
    buffer = io.BytesIO()
    values = np.random.default_rng(3).standard_normal(size).astype(np.float32)
    (np.savez_compressed if compressed else np.savez)(buffer, w=values, v=np.ones(64, np.float32))
    raw = bytearray(buffer.getvalue())
    raw[300] ^= 0xFF  # inside w.npy's values
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("compressed", [False, True])
def test_an_npz_member_with_a_bad_crc_is_one_line_naming_it(compressed, tmp_path):
    _damaged_npz(tmp_path / "bad.npz", compressed, 64)
    with pytest.raises(QuantcalcError, match=r"bad\.npz\[w\.npy\] is damaged: "
                                             r"(Bad CRC-32|Error -3 while decompressing)"):
        checkpoint.open_checkpoint([tmp_path / "bad.npz"])
    refused(cli("scan", tmp_path / "bad.npz", "--format", "q8_0"), "bad.npz[w.npy]",
                     "damaged")


def test_a_large_damaged_member_is_noted_on_its_scan_row(tmp_path):
    """A member whose header reads, its CRC failing only at its end: its row says so, the scan
    goes on."""
    _damaged_npz(tmp_path / "bad.npz", False, 256 * 1024)
    model = checkpoint.open_checkpoint([tmp_path / "bad.npz"])
    with pytest.raises(QuantcalcError, match=r"bad\.npz\[w\.npy\] is damaged"):
        checkpoint.SlabReader(model.get("w")).read_all()
    rows = {r["name"]: r for r in scan.scan(model, scan.formats_from_specs(["q8_0"]))["tensors"]}
    assert "bad.npz[w.npy] is damaged: Bad CRC-32 for file 'w.npy'" in rows["w"]["notes"]
    assert rows["v"]["results"][0]["error"] is None


# ---------------------------------------------------------------- zero-size and 0-d tensors
@pytest.mark.parametrize("suffix", ["safetensors", "gguf", "npy"])
def test_tensors_with_no_values_are_refused_and_0d_ones_read(suffix, tmp_path):
    path = tmp_path / f"m.{suffix}"
    scalar = np.float32(2.5)
    if suffix == "safetensors":
        path.write_bytes(safetensors_bytes({"e": ("F32", [0, 4], b""), "f": ("F32", [4, 0], b""),
                                       "i": ("I32", [0, 2 ** 40], b""),
                                       "s": ("F32", [], scalar.tobytes())}))
    elif suffix == "gguf":
        path.write_bytes(gguf_bytes([("e", [4, 0], 0, 0), ("f", [0, 4], 0, 0),
                                     ("i", [2 ** 40, 0], 26, 0), ("s", [], 0, 0)], [],
                                    scalar.tobytes()))
    else:
        np.save(path, np.zeros((0, 4), np.float32))
    model = checkpoint.open_checkpoint([path])
    for entry in model.tensors:
        if entry.count == 0:
            with pytest.raises(QuantcalcError, match=f"'{entry.name}' (holds no values|is stored as I32)"):
                checkpoint.read_tensor(str(path), entry.name if suffix != "npy" else None)
        else:
            assert checkpoint.read_tensor(str(path), entry.name).shape == ()
            assert float(checkpoint.read_tensor(str(path), entry.name)) == 2.5
    doc = scan.scan(model, scan.formats_from_specs(["q8_0", "format=int bits=8"]))
    for row in doc["tensors"]:
        if row["parameters"] == 0:
            assert row["results"] == [] and row["notes"], row
