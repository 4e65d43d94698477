"""A GGUF holding the grid, ternary and FP4 types (IQ1_S ... IQ3_S, TQ1_0, TQ2_0, MXFP4, NVFP4),
written by gguf-py's GGUFWriter, is read, analysed and scanned like one holding Q4_K: the values
are gguf-py's dequantization bit for bit (from a file by offset, in slabs, and from bytes in
memory), `analyze` names the stored type, and a scan lists each tensor with its statistics."""

import json

import numpy as np
import pytest

from quantcalc import Config, api
from quantcalc.engine import analysis
from quantcalc.readers import checkpoint
from quantcalc.readers import gguf as gguf_file
from quantcalc.scan import model_scan as scan
from tests.support.command import quantcalc as cli
from tests.support.ggml_blocks import NUMBERS, weight_blocks

gguf = pytest.importorskip("gguf", reason="llama.cpp's gguf package is a test dependency")
from gguf import GGMLQuantizationType  # noqa: E402

TYPES = ["IQ2_XXS", "TQ1_0", "MXFP4", "IQ1_S", "IQ1_M", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S",
         "TQ2_0", "NVFP4"]
SHAPE = (6, 512)  # rows of two super-blocks, 16 MXFP4 or 8 NVFP4 blocks
GGUF_PY_QUANTIZES = ("TQ1_0", "TQ2_0", "MXFP4")


def name_of(kind):
    return f"blk.0.{kind.lower()}.weight"


def stored_blocks(kind):
    """(rows of block bytes, SHAPE): gguf-py's own quantization of Student-t weights where it
    has one, else random blocks with weight-sized scales (any bytes are a block of these)."""
    rng = np.random.default_rng(NUMBERS[kind])
    if kind in GGUF_PY_QUANTIZES:
        x = (rng.standard_t(3, SHAPE) * 0.02).astype(np.float32)
        return gguf.quants.quantize(x, GGMLQuantizationType[kind])
    count = SHAPE[0] * SHAPE[1] // gguf.GGML_QUANT_SIZES[GGMLQuantizationType[kind]][0]
    return weight_blocks(kind, count, 0).reshape(SHAPE[0], -1)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(path of a GGUF with one tensor of each type and an F32 one, {name: gguf-py's values})."""
    path = tmp_path_factory.mktemp("decoded") / "model.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    for kind in TYPES:
        raw = stored_blocks(kind)
        writer.add_tensor(name_of(kind), raw, raw_shape=raw.shape,
                          raw_dtype=GGMLQuantizationType[kind])
    writer.add_tensor("output_norm.weight", np.linspace(-1, 1, 512, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    reader = gguf.GGUFReader(str(path))
    expected = {t.name: gguf.quants.dequantize(t.data, t.tensor_type).reshape(SHAPE)
                for t in reader.tensors if t.name != "output_norm.weight"}
    return path, expected


def same_bits(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("kind", TYPES)
def test_each_tensor_reads_as_gguf_py_dequantizes_it(model, kind):
    path, expected = model
    name = name_of(kind)
    entry = checkpoint.open_checkpoint([path]).get(name)
    assert entry.dtype == kind and entry.quantized and entry.ggml_type == NUMBERS[kind]
    values = checkpoint.read_tensor(str(path), name)
    assert same_bits(values, expected[name]) and np.isfinite(values).all()
    slabs = [slab for _, slab in checkpoint.SlabReader(entry).slabs(2)]  # 3 slabs of 2 rows
    assert len(slabs) == 3 and same_bits(np.concatenate(slabs), expected[name])
    in_memory = gguf_file.bytes_tensor(path.read_bytes(), name, "model.gguf")
    assert same_bits(in_memory, expected[name])


@pytest.mark.parametrize("kind", TYPES)
def test_analyze_measures_the_stored_values_and_names_their_type(model, kind):
    path, expected = model
    reply = api.analyze({"format": "q8_0"}, {"file_path": str(path), "tensor": name_of(kind)})
    assert "error" not in reply, reply
    assert reply["summary"]["stored_format"] == kind
    assert same_bits(reply["per_value"]["original"], expected[name_of(kind)].reshape(-1))
    independent = analysis.analyze(expected[name_of(kind)], Config(format="q8_0"), keep=0)
    assert reply["summary"]["sqnr_db"] == independent.metrics["sqnr_db"]


@pytest.mark.parametrize("kind", ["IQ2_XXS", "TQ1_0", "MXFP4"])
def test_analyze_on_the_command_line_names_the_stored_type(model, kind, tmp_path):
    path, expected = model
    out = cli("analyze", path, "--tensor", name_of(kind), "--format", "q8_0",
              "--json", tmp_path / "r.json")
    assert out.returncode == 0, out.stderr[-800:]
    assert "Stored as (quantized)" in out.stdout and kind in out.stdout
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["stored_format"] == kind
    independent = analysis.analyze(expected[name_of(kind)], Config(format="q8_0"), keep=0)
    assert result["sqnr_db"] == independent.metrics["sqnr_db"]


def test_a_scan_lists_each_tensor_with_the_statistics_of_its_values(model):
    path, expected = model
    doc = scan.scan(checkpoint.open_checkpoint([path]), scan.formats_from_specs(["q8_0"]))
    rows = {row["name"]: row for row in doc["tensors"]}
    for kind in TYPES:
        row, values = rows[name_of(kind)], expected[name_of(kind)].astype(np.float64)
        assert row["dtype"] == kind and row["results"] == [] and not row["original"]
        assert any(f"already quantized as {kind}" in note for note in row["notes"]), row
        assert not any("not decoded" in note for note in row["notes"]), row
        assert row["data_max"] == values.max() and row["data_min"] == values.min()
        assert row["stored_bits"] == gguf_bits(kind)
    assert rows["output_norm.weight"]["results"][0]["sqnr_db"] is not None


def test_a_streamed_scan_with_allow_requantize_measures_them_as_read_whole(model):
    """--allow-requantize measures each on its dequantized values, the same whether the tensor
    is read whole or streamed in slabs of rows."""
    path, expected = model
    whole = api.scan_model([str(path)], ["q8_0"], allow_requantize=True)["document"]
    streamed = api.scan_model([str(path)], ["q8_0"], allow_requantize=True,
                              whole_values=1024)["document"]
    for rows in (whole["tensors"], streamed["tensors"]):
        measured = {row["name"]: row for row in rows if row["name"] != "output_norm.weight"}
        assert set(measured) == {name_of(kind) for kind in TYPES}
        for row in measured.values():
            assert row["results"][0]["error"] is None and row["results"][0]["sqnr_db"] > 30
    assert any(row["streamed"] for row in streamed["tensors"])
    for a, b in zip(whole["tensors"], streamed["tensors"]):
        assert a["results"][0]["sqnr_db"] == pytest.approx(b["results"][0]["sqnr_db"], abs=1e-9)


def gguf_bits(kind):
    values_per_block, size = gguf.GGML_QUANT_SIZES[GGMLQuantizationType[kind]]
    return 8 * size / values_per_block
