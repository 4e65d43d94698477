"""The facade the page's worker and every subcommand call: every report of every feature's table
comes back as {"bytes", "mime"} with the table's MIME type, every failure as
{"error": {kind, message, field}}, and a scan ended by Ctrl-C keeps the tensors done."""

import csv
import importlib
import io
import json

import pytest

from quantcalc import api
from quantcalc.cli import main as cli
from quantcalc.reports import exports
from quantcalc.reports.exports import Export
from tests.support import checkpoints as C

CONFIG = {"bits": 4, "mode": "asymmetric"}
SOURCE = {"text": "-1.25, -0.92, -0.51, -0.10, 0, 0.14, 0.37, 0.79, 1.12, 1.46"}
SPECS = ["format=int bits=4", "format=int bits=8 granularity=channel", "format=fp8_e4m3"]
SCAN_FORMATS = ["q4_k", "q6_k", "q8_0"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small Llama-style checkpoint (rows of 256: the K-quants take every matrix)."""
    return C.small_llama(tmp_path_factory.mktemp("facade"), seed=2)


@pytest.fixture(scope="module")
def documents(model):
    """The scan's document and a plan over it, as the page holds them."""
    path, _ = model
    scanned = api.scan_model([str(path)], SCAN_FORMATS)
    assert "error" not in scanned, scanned
    planned = api.plan(scanned["document"], {"target_bpw": 5.5})
    assert "error" not in planned, planned
    return {"scan": scanned["document"], "plan": planned["plan"], "audit": _audit(path.parent)}


def _audit(folder):
    """An audit of a GGUF (gguf-py's writer, ggml's Q4_K) against its Hugging Face original."""
    audit_pairs = pytest.importorskip("tests.support.audit_pairs")
    pytest.importorskip("libggml")
    arrays, config = audit_pairs.hf_llama(folder / "audit_hf", seed=1, layers=1)
    tensors = audit_pairs.gguf_tensors(arrays, config)
    audit_pairs.write_gguf(folder / "audit.gguf", tensors, config, {n: "q4_K" for n in tensors})
    audited = api.audit_model([str(folder / "audit_hf")], [str(folder / "audit.gguf")])
    assert "error" not in audited, audited
    return audited["document"]


def made(feature, kind, documents):
    """One report through the facade function the page calls for that feature."""
    if feature == "analysis":
        return api.export(CONFIG, SOURCE, kind, "facade test")
    if feature == "comparison":
        return api.compare_export(SOURCE, SPECS, "tensor", kind, "facade test")
    if feature == "scan":
        return api.scan_export(documents["scan"], kind)
    if feature == "audit":
        return api.audit_export(documents["audit"], kind)
    return api.plan_export(documents["plan"], kind)


def test_every_record_is_complete_and_names_a_function_that_exists():
    assert set(exports.TABLES) == {"analysis", "comparison", "scan", "plan", "audit"}
    for feature, table in exports.TABLES.items():
        options = [e.option for e in table.values() if e.option]
        assert len(options) == len(set(options)), feature
        assert table["text"].option is None  # the terminal's table: printed, not an option
        for kind, export in table.items():
            assert export.kind == kind and export.suffix.startswith(".")
            assert export.mime.count("/") == 1 and export.help
            assert export.option is None or export.option.startswith("--")
            module, _, name = export.maker.partition(":")
            assert callable(getattr(importlib.import_module(module), name)), export.maker


@pytest.mark.parametrize("feature, kind", [(feature, kind) for feature, table in
                                           exports.TABLES.items() for kind in table])
def test_every_report_of_every_table_has_its_mime_type_and_bytes(feature, kind, documents):
    reply = made(feature, kind, documents)
    export = exports.TABLES[feature][kind]
    assert set(reply) == {"bytes", "mime"}, reply.get("error")
    assert reply["mime"] == export.mime and isinstance(reply["bytes"], bytes)
    data = reply["bytes"]
    assert data
    if export.binary:
        assert data.startswith(b"%PDF-")
    elif export.mime == exports.JSON:
        json.loads(data, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    elif export.mime == exports.CSV:
        header = next(csv.reader(io.StringIO(data.decode("utf-8"))))
        assert len(header) > 1
    else:
        assert data.decode("utf-8").strip()


def test_the_text_reports_are_the_tables_the_terminal_shows(documents):
    assert b"Zero point" in made("analysis", "text", documents)["bytes"]
    assert b"Pareto" in made("comparison", "text", documents)["bytes"]
    assert b"worst tensors under Q4_K" in made("scan", "text", documents)["bytes"]
    assert b"bits per weight" in made("plan", "text", documents)["bytes"]
    assert b"worst tensors (lowest SQNR first" in made("audit", "text", documents)["bytes"]


def test_a_new_report_is_one_entry(monkeypatch, tmp_path, capsys):
    """One record in a table: the facade makes it and the command line has its option."""
    monkeypatch.setitem(exports.ANALYSIS, "table_copy", Export(
        "table_copy", exports.TEXT, ".txt", "quantcalc.reports.exports:analysis_text",
        "--table-copy", "the terminal's table"))
    reply = api.export(CONFIG, SOURCE, "table_copy", "facade test")
    assert reply["mime"] == "text/plain" and b"Zero point" in reply["bytes"]
    path = tmp_path / "table.txt"
    assert cli.main(["analyze", "--values", "1 2 3", "--table-copy", str(path)]) == 0
    assert path.read_text().splitlines() == capsys.readouterr().out.splitlines()


def error_of(reply):
    """The error dict, checked for the shape the page shows at a field."""
    assert set(reply) == {"error"}, reply
    error = reply["error"]
    assert {"kind", "message", "field"} <= set(error)
    assert error["kind"] == "input" and "\n" not in error["message"], error
    return error


@pytest.mark.parametrize("call, field, words", [
    (lambda d, m: api.export({"bits": 99}, SOURCE, "json"), "bits", "between 2 and 16"),
    (lambda d, m: api.export(CONFIG, SOURCE, "docx"), "download", "unknown report 'docx'"),
    (lambda d, m: api.compare_export(SOURCE, SPECS, "t", "docx"), "download", "unknown report"),
    (lambda d, m: api.scan_export(d["scan"], "docx"), "download", "unknown report"),
    (lambda d, m: api.plan_export(d["plan"], "docx"), "download", "unknown report"),
    (lambda d, m: api.scan_model([str(m)], ["q9_z"]), "formats", "q9_z"),
    (lambda d, m: api.scan_model([str(m)], ["q8_0"], names=["nope"]), "tensor", "nope"),
    (lambda d, m: api.scan_model([str(m)], ["q8_0"], "/no/such.imatrix"), "imatrix",
     "cannot read"),
    (lambda d, m: api.plan(d["scan"], {}), "target", "target"),
    (lambda d, m: api.read_scan("/no/such/scan.json"), "scan", "cannot read"),
])
def test_errors_come_back_as_kind_message_and_field(call, field, words, documents, model):
    error = error_of(call(documents, model[0]))
    assert error["field"] == field and words in error["message"], error


def test_a_file_that_is_not_a_scan_is_refused(tmp_path):
    (tmp_path / "a.json").write_text('{"kind": "quantcalc-plan"}')
    (tmp_path / "b.json").write_text("{not json")
    assert "not the JSON of quantcalc scan" in error_of(api.read_scan(tmp_path / "a.json"))[
        "message"]
    assert "is not a scan's JSON" in error_of(api.read_scan(tmp_path / "b.json"))["message"]


def test_ctrl_c_keeps_the_tensors_done(model):
    path, names = model
    told = []

    def on_row(row):
        told.append(row["name"])
        if len(told) == 3:
            raise KeyboardInterrupt  # what Ctrl-C raises in the middle of a scan

    reply = api.scan_model([str(path)], ["q8_0"], on_row=on_row)
    assert reply["interrupted"] is True
    doc = reply["document"]
    assert [t["name"] for t in doc["tensors"]] == names[:3]
    assert doc["totals"][0]["parameters_total"] == sum(t["parameters"] for t in doc["tensors"])


def test_the_plan_of_a_scan_equals_the_plan_of_its_json_file(model, documents, tmp_path):
    """scan --plan-bpw plans on the document it holds; plan SCAN.json reads the file: the same
    plan either way (no trip through JSON text is needed)."""
    path = tmp_path / "scan.json"
    path.write_bytes(api.scan_export(documents["scan"], "json")["bytes"])
    read = api.read_scan(path)["document"]
    assert api.plan(read, {"target_bpw": 5.5}) == {"plan": documents["plan"]}


def test_a_scan_in_worker_processes_equals_one_here(model, documents):
    path, _ = model
    reply = api.scan_model([str(path)], SCAN_FORMATS, jobs=2)
    assert reply == {"document": documents["scan"], "interrupted": False}


def test_a_config_json_chosen_with_the_tensors_names_the_architecture(tmp_path):
    """The page hands the scan every file the user chose, config.json included (a folder drop):
    it holds no tensors, and it names the architecture and blocks the plan's GGUF names need."""
    import json

    import numpy as np

    from quantcalc import api
    from tests.support.checkpoints import write_safetensors
    weights = tmp_path / "model.safetensors"
    write_safetensors(weights, {"model.layers.0.self_attn.q_proj.weight":
                                np.ones((4, 32), np.float32)})
    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "num_hidden_layers": 1}))
    (tmp_path / "tokenizer_config.json").write_text("{}")
    paths = [str(weights), str(tmp_path / "config.json"), str(tmp_path / "tokenizer_config.json")]
    doc = api.scan_model(paths, ["q8_0"])["document"]
    assert [t["name"] for t in doc["tensors"]] == ["model.layers.0.self_attn.q_proj.weight"]
    assert doc["model"]["architecture"] == "llama" and doc["model"]["block_count"] == 1
