"""What the calculator says where the scan has a rule (issue 27): a llama.cpp type refused for
its row length names its fallback as data the page offers as one click, and a tensor stored as
integers gets the scan's own reason for leaving such tensors as stored."""

import numpy as np
import pytest

from quantcalc import api
from quantcalc.readers import checkpoint
from quantcalc.scan import model_scan as scan
from tests.support import checkpoints as C

ROWS_384 = np.random.default_rng(0).standard_normal((4, 384)).astype(np.float32)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rules")
    np.save(folder / "rows.npy", ROWS_384)
    np.save(folder / "odd.npy", ROWS_384[:, :40])
    C.write_safetensors(folder / "model.safetensors", {
        "embeddings.position_ids": np.arange(512, dtype=np.int64).reshape(1, 512),
        "encoder.layer.0.output.dense.weight": ROWS_384})
    return folder


@pytest.mark.parametrize("fmt, fallback", [("q4_k", "q5_0"), ("q2_k", "q4_0"), ("q3_k", "q4_0"),
                                           ("q5_k", "q5_1"), ("q6_k", "q8_0"),
                                           ("iq4_xs", "iq4_nl")])
def test_a_refused_llama_cpp_type_offers_its_fallback_as_data(weights, fmt, fallback):
    source = {"file_path": str(weights / "rows.npy")}
    error = api.analyze({"format": fmt}, source)["error"]
    assert error["field"] == "format" and error["try"] == {"format": fallback}
    assert f"as {fallback.upper()} instead" in error["message"]
    reply = api.analyze({"format": fmt, **error["try"]}, source)
    assert "error" not in reply and reply["summary"]["format"] == fallback


@pytest.mark.parametrize("fmt", ["q4_k", "q4_0"])
def test_no_offer_where_llama_quantize_writes_f16_or_stops(weights, fmt):
    """Rows of 40: Q4_K's fallback Q5_0 does not divide them either (llama-quantize writes
    F16, which is no format here); Q4_0 has no fallback (llama-quantize stops)."""
    error = api.analyze({"format": fmt}, {"file_path": str(weights / "odd.npy")})["error"]
    assert error["field"] == "format" and "try" not in error


def test_an_integer_tensor_gets_the_scans_reason_in_the_calculator(weights):
    path = weights / "model.safetensors"
    entry = checkpoint.open_checkpoint([path]).get("embeddings.position_ids")
    reason = entry.not_quantized
    assert "integer tensors" in reason and "usually not quantized" in reason
    doc = scan.scan(checkpoint.open_checkpoint([path]), scan.formats_from_specs(["q8_0"]))
    ids = next(r for r in doc["tensors"] if r["name"] == "embeddings.position_ids")
    assert ids["results"] == [] and ids["notes"][-1] == reason  # the scan: one rule
    source = {"file_path": str(path), "tensor": "embeddings.position_ids"}
    summary = api.analyze({}, source)["summary"]
    assert summary["notes"][0].startswith(reason + "; a model scan keeps them as stored")
    assert api.compare(source, ["format=int bits=8"])["notes"][0] == summary["notes"][0]
    # floats: nothing said
    weights_source = {"file_path": str(path), "tensor": "encoder.layer.0.output.dense.weight"}
    assert not any("not floats" in n for n in api.analyze({}, weights_source)["summary"]["notes"])
    # an .npy of integers read whole says the same
    np.save(weights / "ids.npy", np.arange(64, dtype=np.int32))
    notes = api.analyze({}, {"file_path": str(weights / "ids.npy")})["summary"]["notes"]
    assert "int32 values, not floats: integer tensors" in notes[0]
