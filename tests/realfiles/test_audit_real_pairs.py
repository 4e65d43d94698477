"""The audit on pairs of one REAL model (issue 24): the real all-MiniLM-L6-v2 against its GGUF
(ggml's own Q8_0, Q4_K, Q6_K through gguf-py's GGUFWriter), its compressed-tensors W4A16 and
W8A8-int (the library's own compressor) and its FP8 per tensor and in 128x128 tiles (torch's
cast), made by tests/support/real_pairs.py. Each quantized tensor's decoding equals the format's
own library bit for bit, each SQNR equals the SQNR of that library's dequantization, and every
tensor, made by the plain rule, is reproduced."""

import pytest

from quantcalc import api
from tests.support import audit_pairs as ap

pytestmark = pytest.mark.slow
pytest.importorskip("gguf", reason="gguf-py writes and dequantizes the GGUF side")
pytest.importorskip("torch", reason="torch makes the FP8 and compressed-tensors sides")
pytest.importorskip("compressed_tensors", reason="compressed-tensors makes W4A16 and W8A8")
rp = pytest.importorskip("tests.support.real_pairs")


@pytest.fixture(scope="module")
def original():
    return rp.original_folder()


@pytest.mark.parametrize("kind", rp.FORMATS)
def test_real_pair(tmp_path, original, kind):
    reference = rp.make(kind, tmp_path / "quantized", original)
    assert rp.bit_exact(rp.decoded(tmp_path / "quantized"), reference)
    reply = api.audit_model([str(original)], [str(tmp_path / "quantized")])
    assert "error" not in reply, reply
    doc = reply["document"]
    arrays = rp.original_arrays(original)
    rows = {r["name"]: r for r in doc["tensors"]}
    assert set(reference) <= set(rows)
    for name, values in reference.items():
        row = rows[name]
        assert row["reason"] is None, row
        assert row["sqnr_db"] == pytest.approx(ap.sqnr_db(arrays[row["original_name"]], values),
                                               abs=1e-9), name
        assert row["reproduced"] is True, row
        # the plain rule is what made the file: its error is the stored one (summed apart)
        assert row["plain_sqnr_db"] == pytest.approx(row["sqnr_db"], abs=1e-9)
    assert doc["totals"]["tensors_measured"] >= len(reference)
    # only what BERT's converter leaves out (position_ids, the pooler) goes unmeasured
    unpaired = {r["name"] for r in doc["tensors"] if r["reason"]}
    assert unpaired <= {"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"}
