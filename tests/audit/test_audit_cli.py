"""`quantcalc audit` on the command line and through the facade the page will call: the reports
(JSON equal to the facade's document, CSV, PDF, the terminal's summary), rows streamed through
on_row and assembled in parts as the page's workers would, worker processes and Dask giving the
rows made here, and every bad input refused in one plain line naming the file or tensor."""

import csv
import io
import json
import struct

import pytest

from quantcalc import api
from tests.support import audit_pairs as ap
from tests.support.command import quantcalc as cli, refused

pytest.importorskip("libggml", reason="ggml makes the GGUF side")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audit_cli")
    arrays, config = ap.hf_llama(folder / "hf", seed=7, layers=1, hidden=256, heads=4,
                                 kv_heads=2, ffn=256, vocab=256)
    tensors = ap.gguf_tensors(arrays, config)
    types = {n: ("q4_K" if "ffn" in n else "q6_K") for n in tensors}
    ap.write_gguf(folder / "m.gguf", tensors, config, types)
    ap.write_imatrix(folder / "m.imatrix.gguf", ap.importance_for(tensors))
    return folder


def test_the_json_report_is_the_facades_document(pair, tmp_path):
    out = cli("audit", pair / "hf", pair / "m.gguf", "--json", "-", "--csv",
              tmp_path / "a.csv", "--pdf", tmp_path / "a.pdf")
    assert out.returncode == 0, out.stderr
    doc = api.audit_model([str(pair / "hf")], [str(pair / "m.gguf")], slab_values=1 << 22)
    exported = api.audit_export(doc["document"], "json")["bytes"].decode()
    assert out.stdout == exported + "\n"
    printed = json.loads(out.stdout)
    assert printed["kind"] == "quantcalc-audit" and printed["totals"]["reproduced"]["false"] == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a.csv").read_text())))
    assert [r["name"] for r in rows] == [r["name"] for r in printed["tensors"]]
    assert rows[0]["reproduced"] == "true" and float(rows[0]["sqnr_db"]) > 20
    assert (tmp_path / "a.pdf").read_bytes().startswith(b"%PDF-")


def test_the_terminal_summary_and_the_imatrix(pair):
    out = cli("audit", pair / "hf", pair / "m.gguf", "--imatrix", pair / "m.imatrix.gguf")
    assert out.returncode == 0, out.stderr
    assert "bits per weight" in out.stdout and "worst tensors" in out.stdout
    assert "importance-weighted SQNR" in out.stdout and "Q6_K" in out.stdout


def test_rows_stream_and_parts_assemble_into_the_same_document(pair):
    listed = api.audit_list([str(pair / "hf")], [str(pair / "m.gguf")])
    names = [t["name"] for t in listed["tensors"] if t["measured"]]
    assert listed["architecture"] == "llama" and len(names) == len(listed["tensors"])
    heard, progress = [], []
    whole = api.audit_model([str(pair / "hf")], [str(pair / "m.gguf")], on_row=heard.append,
                            on_progress=progress.append)["document"]
    assert [r["name"] for r in heard] == [r["name"] for r in whole["tensors"]]
    assert progress[-1]["tensors"] == progress[-1]["total_tensors"] == len(names)
    parts = [api.audit_model([str(pair / "hf")], [str(pair / "m.gguf")], names=names[k::2])
             ["document"]["tensors"] for k in (1, 0)]
    assembled = api.audit_document([str(pair / "hf")], [str(pair / "m.gguf")],
                                   parts[0] + parts[1])["document"]
    assert json.dumps(assembled, sort_keys=True) == json.dumps(whole, sort_keys=True)
    figures = api.audit_figures(whole)
    assert set(figures["figures"]) == {"heatmap", "spread", "share", "gain"}
    assert all(svg.lstrip().startswith("<?xml") for svg in figures["figures"].values())


def test_worker_processes_give_the_rows_made_here(pair):
    here = api.audit_model([str(pair / "hf")], [str(pair / "m.gguf")])["document"]
    there = api.audit_model([str(pair / "hf")], [str(pair / "m.gguf")], jobs=2)["document"]
    assert json.dumps(there, sort_keys=True) == json.dumps(here, sort_keys=True)


@pytest.mark.slow
def test_a_dask_cluster_gives_the_rows_made_here(pair):
    distributed = pytest.importorskip("dask.distributed")
    here = api.audit_model([str(pair / "hf")], [str(pair / "m.gguf")])["document"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        there = api.audit_model([str(pair / "hf")], [str(pair / "m.gguf")],
                                dask=cluster.scheduler_address)["document"]
    assert json.dumps(there, sort_keys=True) == json.dumps(here, sort_keys=True)


def test_bad_inputs_are_one_plain_line(pair, tmp_path):
    refused(cli("audit", tmp_path / "nope.gguf", pair / "m.gguf"), "original", "nope.gguf")
    refused(cli("audit", pair / "hf", pair / "hf" / "config.json"), "quantized", "config.json")
    refused(cli("audit", pair / "hf", pair / "m.gguf", "--json", pair / "m.gguf"),
            "is the input")
    refused(cli("audit", pair / "hf", pair / "m.gguf", "--csv", pair / "hf" / "config.json"),
            "is the input")
    (tmp_path / "junk.imatrix").write_bytes(b"not an imatrix at all")
    refused(cli("audit", pair / "hf", pair / "m.gguf", "--imatrix", tmp_path / "junk.imatrix"),
            "junk.imatrix")
    refused(cli("audit", pair / "hf", pair / "m.gguf", "--tensor", "blk.9.nope.weight"),
            "blk.9.nope.weight")
    refused(cli("audit", pair / "hf", pair / "m.gguf", "--jobs", "0"), "--jobs")
    data = (pair / "m.gguf").read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[:len(data) // 2])
    refused(cli("audit", pair / "hf", tmp_path / "cut.gguf"), "cut.gguf")


def test_a_bad_quantization_config_is_one_line_and_a_bad_layer_its_rows_reason(tmp_path):
    st = pytest.importorskip("tests.support.audit_stored")
    arrays = st.original(tmp_path / "original")
    st.fp8_block(tmp_path / "quantized", arrays)
    config_path = tmp_path / "quantized" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "quantization_config": "fp8"}))
    refused(cli("audit", tmp_path / "original", tmp_path / "quantized"),
            "quantization_config is a str")
    config_path.write_text(json.dumps({**config, "quantization_config": {
        "quant_method": "fp8", "weight_block_size": [64, 64]}}))  # the scales are per 128
    reply = api.audit_model([str(tmp_path / "original")], [str(tmp_path / "quantized")])
    row = {r["name"]: r for r in reply["document"]["tensors"]}[
        "model.layers.0.mlp.up_proj.weight"]
    assert row["sqnr_db"] is None
    assert "model.layers.0.mlp.up_proj.weight_scale_inv" in row["reason"]
    assert "64x64" in row["reason"]


def test_a_damaged_safetensors_header_names_its_file(tmp_path):
    st = pytest.importorskip("tests.support.audit_stored")
    arrays = st.original(tmp_path / "original")
    st.gptq(tmp_path / "quantized", arrays)
    path = tmp_path / "quantized" / "model.safetensors"
    data = bytearray(path.read_bytes())
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    name = "model.layers.0.mlp.up_proj.qweight"
    header[name]["shape"] = [header[name]["shape"][0] + 1, header[name]["shape"][1]]
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (size - len(text)) if len(text) <= size else b""
    assert len(text) == size
    path.write_bytes(bytes(data[:8]) + text + bytes(data[8 + size:]))
    refused(cli("audit", tmp_path / "original", tmp_path / "quantized"), "model.safetensors",
            name)


def test_ctrl_c_keeps_the_rows_done_and_every_report_says_so(pair):
    heard = []

    def interrupt_after_two(row):
        heard.append(row)
        if len(heard) == 2:
            raise KeyboardInterrupt

    reply = api.audit_model([str(pair / "hf")], [str(pair / "m.gguf")],
                            on_row=interrupt_after_two)
    doc = reply["document"]
    assert reply["interrupted"] is True and len(doc["tensors"]) == 2
    assert doc["interrupted"]["tensors_done"] == 2 and doc["totals"]["tensors"] == 2
    assert api.audit_export(doc, "text")["bytes"].startswith(b"interrupted: 2 of ")
