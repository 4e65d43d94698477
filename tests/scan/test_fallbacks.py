"""Every tensor accounted for (issue 23, item 1): a llama.cpp type refused for a tensor's row
length is measured in the type llama-quantize writes there instead (llama-quant.cpp's
tensor_type_fallback, formats/ggml/fallback.py), and every format's total counts the same
tensors: those measured (fallbacks included) and those kept at their stored size, with the
parameters covered out of all."""

import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest

from quantcalc import api
from quantcalc.engine import analysis
from quantcalc.engine.config import Config
from quantcalc.formats.ggml import fallback as ggml_fallback
from quantcalc.readers import checkpoint
from quantcalc.scan import model_scan as scan
from quantcalc.scan import report as scan_report
from quantcalc.scan.rows import EXACT  # an exact result: no interval, all values
from tests.support import checkpoints as C
from tests.support.command import quantcalc

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("wanted, row_length, used", [
    # llama-quant.cpp tensor_type_fallback: the switch, then F16 where even that does not divide
    ("Q4_K", 384, "Q5_0"), ("Q5_K", 384, "Q5_1"), ("Q6_K", 384, "Q8_0"),
    ("Q2_K", 384, "Q4_0"), ("Q3_K", 384, "Q4_0"), ("IQ4_XS", 384, "IQ4_NL"),
    ("IQ2_XXS", 384, "IQ4_NL"), ("TQ1_0", 96, "Q4_0"),
    ("Q5_K", 100, "F16"), ("IQ4_XS", 100, "F16"),
    ("Q8_0", 100, None), ("Q4_0", 48, None), ("IQ4_NL", 16, None),  # no fallback: it stops
])
def test_the_fallback_table_is_llama_quantizes(wanted, row_length, used):
    found = ggml_fallback.for_row_length(wanted.lower(), row_length)
    assert found.used == used
    assert ggml_fallback.type_for(wanted, row_length) == used
    assert ggml_fallback.for_row_length(wanted, 512) is None  # whole blocks: no fallback
    assert found.reason.startswith(f"row length {row_length} not a multiple of "
                                   f"{ggml_fallback.block_of(wanted)}")


def minilm_like(path, rng=None):
    """A BERT-like file whose rows (384) no K-quant divides, with what no format takes: an
    integer tensor and a zero-size one."""
    rng = rng or np.random.default_rng(3)
    arrays = {"embeddings.word_embeddings.weight": rng.standard_normal((100, 384)) * 0.05,
              "embeddings.position_ids": np.arange(512).reshape(1, 512),
              "encoder.layer.0.attention.self.query.weight": rng.standard_normal((384, 384)) * .04,
              "encoder.layer.0.intermediate.dense.weight": rng.standard_normal((512, 384)) * .04,
              "encoder.layer.0.output.dense.weight": rng.standard_normal((384, 512)) * .03,
              "encoder.layer.0.output.LayerNorm.weight": 1 + rng.standard_normal(384) * .02,
              "empty.weight": np.zeros((0, 384))}
    C.write_safetensors(path, {k: v.astype(np.float32) if v.dtype.kind == "f" else v
                               for k, v in arrays.items()})
    return checkpoint.open_checkpoint([path])


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    path = tmp_path_factory.mktemp("fallback") / "model.safetensors"
    model = minilm_like(path)
    formats = scan.formats_from_specs(["q4_k", "q6_k", "iq4_xs", "q8_0", "q5_0"])
    return model, formats, scan.scan(model, formats)


def _values(model, name):
    return checkpoint.SlabReader(model.get(name)).read_all()


def test_a_row_length_the_type_refuses_is_measured_in_llama_quantizes_fallback(scanned):
    model, formats, doc = scanned
    rows = {row["name"]: row for row in doc["tensors"]}
    query = rows["encoder.layer.0.attention.self.query.weight"]
    q4_k, q6_k, iq4_xs, q8_0, q5_0 = query["results"]
    values = _values(model, query["name"])
    for result, used in ((q4_k, "Q5_0"), (q6_k, "Q8_0"), (iq4_xs, "IQ4_NL")):
        assert result["error"] is None and result["measured_as"] == used
        assert result["notes"][0].startswith(
            f"fallback {used} (row length 384 not a multiple of 256)")
        # the numbers are the fallback type's own, digit for digit
        expected = analysis.analyze(values, Config.from_dict({"format": used.lower()}),
                                    keep=0).metrics
        for key in scan.RESULT_KEYS:
            assert result[key] == expected.get(key, EXACT.get(key)), (used, key)
    assert q8_0["measured_as"] is None and q5_0["measured_as"] is None
    assert {k: q4_k[k] for k in scan.RESULT_KEYS} == {k: q5_0[k] for k in scan.RESULT_KEYS}
    # rows of 512 are whole super-blocks: Q4_K itself
    down = rows["encoder.layer.0.output.dense.weight"]["results"][0]
    assert down["measured_as"] is None and down["bits_per_value"] == 4.5


def test_every_total_counts_the_same_tensors_at_their_size_and_error(scanned):
    model, formats, doc = scanned
    rows = doc["tensors"]
    everything = sum(e.count for e in model.tensors)
    floats = sum(r["parameters"] for r in rows if r["dtype"] == "F32")
    ids = next(r for r in rows if r["name"] == "embeddings.position_ids")
    assert ids["results"] == [] and "I32 values, not floats" in ids["notes"][-1]
    for index, total in enumerate(doc["totals"]):
        assert total["parameters_total"] == everything == \
            total["parameters_covered"] + total["parameters_kept"]
        assert total["parameters_covered"] == floats and total["parameters_kept"] == 512
        measured = [r["results"][index] for r in rows if r["results"]]
        bits = sum(r["parameters"] * res["bits_per_value"] for r, res in zip(
            [r for r in rows if r["results"]], measured))
        assert total["bytes"] == pytest.approx(bits / 8 + ids["bytes"])
        assert total["bits_per_value"] == pytest.approx(total["bytes"] * 8 / everything)
        error = sum(r["parameters"] * res["mse"] for r, res in zip(
            [r for r in rows if r["results"]], measured))
        assert total["total_error"] == pytest.approx(error)
        fallback = sum(r["parameters"] for r, res in zip([r for r in rows if r["results"]],
                                                         measured) if res["measured_as"])
        assert total["parameters_fallback"] == fallback
    q4_k, q6_k, iq4_xs, q8_0, q5_0 = doc["totals"]
    assert q4_k["fallbacks"] == 4 and q8_0["fallbacks"] == 0  # all floats but rows of 512
    assert q8_0["parameters_fallback"] == 0 < q4_k["parameters_fallback"]
    # Q6_K's fallback is Q8_0 where rows are 384 long: it is never the smaller of the two here
    assert q6_k["bytes"] > q4_k["bytes"] and q8_0["bytes"] > q5_0["bytes"]


def test_rows_no_fallback_divides_are_f16_and_a_type_without_one_stops(tmp_path):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((8, 100)) * 0.1).astype(np.float32)
    C.write_safetensors(tmp_path / "m.safetensors", {"odd.weight": x})
    model = checkpoint.open_checkpoint([tmp_path / "m.safetensors"])
    doc = scan.scan(model, scan.formats_from_specs(["q5_k", "q8_0"]))
    q5_k, q8_0 = doc["tensors"][0]["results"]
    assert q5_k["measured_as"] == "F16" and q5_k["bits_per_value"] == 16.0
    error = x.astype(np.float16).astype(np.float64) - x
    assert q5_k["mse"] == pytest.approx(float(np.mean(error ** 2)), rel=1e-12)
    assert q5_k["max_abs_error"] == float(np.abs(error).max())
    assert "nor of Q5_1's 32" in q5_k["notes"][0]
    assert q8_0["measured_as"] is None and q8_0["mse"] is None
    assert q8_0["error"].startswith("llama-quantize stops on this tensor under Q8_0: row length "
                                    "100 not a multiple of 32")
    f16_total, q8_total = doc["totals"]
    assert f16_total["bytes"] == 800 * 2 and f16_total["parameters_fallback"] == 800
    assert q8_total["parameters_kept"] == 800 and q8_total["refused"] == 1
    assert q8_total["bytes"] == 800 * 4  # kept as stored: F32


def test_a_streamed_tensor_falls_back_as_one_read_whole(tmp_path):
    rng = np.random.default_rng(2)
    x = (rng.standard_t(4, (96, 384)) * 0.02).astype(np.float32)
    odd = (rng.standard_normal((64, 100))).astype(np.float32)
    C.write_safetensors(tmp_path / "m.safetensors", {"w": x, "odd": odd})
    model = checkpoint.open_checkpoint([tmp_path / "m.safetensors"])
    formats = scan.formats_from_specs(["q4_k", "q6_k"])
    whole = scan.scan(model, formats)
    streamed = scan.scan(model, formats, whole_values=1000, slab_values=2000)
    for a, b in zip(whole["tensors"], streamed["tensors"]):
        assert b["streamed"] and not a["streamed"]
        for ra, rb in zip(a["results"], b["results"]):
            assert ra["measured_as"] == rb["measured_as"] is not None
            assert rb["sqnr_db"] == pytest.approx(ra["sqnr_db"], rel=1e-9)
            assert rb["bits_per_value"] == ra["bits_per_value"]


def test_an_already_quantized_gguf_tensor_counts_at_its_stored_size(tmp_path):
    rng = np.random.default_rng(4)
    arrays = {"token_embd.weight": rng.standard_normal((64, 256)).astype(np.float32),
              "blk.0.attn_q.weight": rng.standard_normal((256, 256)).astype(np.float32),
              "output_norm.weight": np.ones(256, np.float32)}
    C.write_gguf(tmp_path / "m.gguf", arrays, {"token_embd.weight": "Q4_0"})
    model = checkpoint.open_checkpoint([tmp_path / "m.gguf"])
    doc = scan.scan(model, scan.formats_from_specs(["q8_0"]))
    total = doc["totals"][0]
    assert total["parameters_kept"] == 64 * 256 and total["parameters_total"] == 64 * 256 + \
        256 * 256 + 256
    assert total["bytes"] == 64 * 256 * 18 / 32 + (256 * 256 + 256) * 8.5 / 8


def test_the_totals_say_it_in_every_report(scanned):
    _, _, doc = scanned
    table = list(csv.DictReader(io.StringIO(scan_report.totals_csv_bytes(doc).decode())))
    assert [t["format"] for t in table] == [t["format"] for t in doc["totals"]]
    assert int(table[0]["parameters_covered"]) == doc["totals"][0]["parameters_covered"]
    assert int(table[0]["parameters_total"]) == doc["totals"][0]["parameters_total"]
    reply = api.scan_export(doc, "totals_csv")
    assert reply["bytes"] == scan_report.totals_csv_bytes(doc)
    per_tensor = list(csv.DictReader(io.StringIO(scan_report.csv_bytes(doc).decode())))
    assert {r["measured_as"] for r in per_tensor if r["format"] == "Q4_K"} == {"Q5_0", ""}
    text = scan_report.summary_text(doc)
    total = doc["totals"][0]
    assert f"{total['parameters_covered']:,} of {total['parameters_total']:,} (" \
           f"{total['parameters_fallback']:,} in fallback types)" in text
    assert scan_report.pdf_bytes(doc)[:5] == b"%PDF-"


def test_the_readme_lists_every_key_of_a_scan_total(scanned):
    start = README.index("Each format's total in the scan's JSON has")
    paragraph = README[start:README.index("\n\n", start)]
    words = set(re.findall(r"[a-z_0-9]+", paragraph))
    keys = set(scanned[2]["totals"][0]) | set(scanned[2]["tensors"][0]["results"][0])
    assert not [key for key in sorted(keys) if key not in words]


def test_the_command_line_writes_the_totals_csv(tmp_path):
    minilm_like(tmp_path / "m.safetensors")
    out = quantcalc("scan", tmp_path / "m.safetensors", "--format", "q4_k", "--format", "q8_0",
                    "--totals-csv", "-")
    assert out.returncode == 0, out.stderr[-500:]
    table = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [t["format"] for t in table] == ["Q4_K", "Q8_0"]
    assert table[0]["parameters_total"] == table[1]["parameters_total"]
    assert int(table[0]["parameters_fallback"]) > 0 == int(table[1]["parameters_fallback"])
