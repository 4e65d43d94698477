"""Reports on the command line, spelled one way in every subcommand: --json / --csv / --pdf PATH
write a file, PATH "-" writes the same bytes to stdout (then the terminal's table stays out of
it), and only one report may go to stdout."""

import json
import subprocess
import sys

import pytest

from quantcalc import api
from quantcalc.cli import main as cli
from quantcalc.reports import exports
from tests.support import checkpoints as C
from tests.support.command import ENV, ROOT, quantcalc

VALUES = "-1.25, -0.92, -0.51, -0.10, 0, 0.14, 0.37, 0.79, 1.12, 1.46"


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """A small Llama-style checkpoint and its scan's JSON (the input of plan)."""
    folder = tmp_path_factory.mktemp("outputs")
    arrays = C.make_arrays(C.llama_tensors(layers=1, hidden=256, ffn=512, vocab=256), seed=3)
    C.write_safetensors(folder / "model.safetensors", arrays)
    out = quantcalc("scan", folder / "model.safetensors", "--format", "q4_k", "--format", "q6_k",
                    "--json", folder / "scan.json", "--quiet")
    assert out.returncode == 0, out.stderr
    return folder


def command(name, folder):
    """Each subcommand with what it needs, before its report options."""
    return {"analyze": ["analyze", "--values", VALUES, "--bits", "4"],
            "compare": ["compare", "--values", VALUES, "--config", "format=int bits=4",
                        "--config", "format=fp8_e4m3"],
            "scan": ["scan", folder / "model.safetensors", "--format", "q4_k", "--quiet"],
            "plan": ["plan", folder / "scan.json", "--target-bpw", "5"]}[name]


SUBCOMMANDS = ["analyze", "compare", "scan", "plan"]
TABLE_WORDS = {"analyze": "Zero point", "compare": "Pareto", "scan": "worst tensors",
               "plan": "bits per weight"}


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_json_dash_prints_the_report_alone(name, scanned):
    out = quantcalc(*command(name, scanned), "--json", "-")
    assert out.returncode == 0, out.stderr
    json.loads(out.stdout)  # the whole of stdout: no table around it
    assert TABLE_WORDS[name] not in out.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_json_path_writes_the_same_bytes_and_the_table_shows(name, scanned, tmp_path):
    path = tmp_path / "report.json"
    to_file = quantcalc(*command(name, scanned), "--json", path)
    assert to_file.returncode == 0, to_file.stderr
    assert TABLE_WORDS[name] in to_file.stdout
    to_stdout = quantcalc(*command(name, scanned), "--json", "-")
    assert to_stdout.stdout == path.read_text() + "\n"


@pytest.mark.parametrize("name, outputs", [
    ("analyze", ["--json", "-", "--csv", "-"]),
    ("compare", ["--pdf", "-", "--json", "-"]),
    ("scan", ["--json", "-", "--plan-bpw", "5", "--plan-json", "-"]),
    ("plan", ["--csv", "-", "--tensor-types", "-"]),
])
def test_two_reports_on_stdout_are_refused_with_one_line(name, outputs, scanned):
    out = quantcalc(*command(name, scanned), *outputs)
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quantcalc: error: only one report"), lines


def run_bytes(*args):
    return subprocess.run([sys.executable, "-m", "quantcalc", *map(str, args)],
                          capture_output=True, cwd=ROOT, env=ENV, timeout=300)


def test_csv_and_pdf_go_to_stdout_as_their_files_are(tmp_path):
    base = ["analyze", "--values", VALUES, "--bits", "4"]
    files = run_bytes(*base, "--csv", tmp_path / "v.csv", "--pdf", tmp_path / "r.pdf")
    assert files.returncode == 0, files.stderr
    csv_out = run_bytes(*base, "--csv", "-")
    assert csv_out.stdout == (tmp_path / "v.csv").read_bytes()  # CRLF rows, no extra line
    pdf_out = run_bytes(*base, "--pdf", "-")
    assert pdf_out.returncode == 0, pdf_out.stderr
    assert pdf_out.stdout.startswith(b"%PDF-") and pdf_out.stdout == (tmp_path / "r.pdf").read_bytes()


def test_json_without_a_path_is_refused():
    out = quantcalc("analyze", "--values", "1 2", "--json")
    assert out.returncode == 2 and "--json: expected one argument" in out.stderr


def test_every_report_with_an_option_is_an_option_of_its_subcommand():
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    expected = {"analyze": [("", exports.ANALYSIS)], "compare": [("", exports.COMPARISON)],
                "scan": [("", exports.SCAN), ("plan-", exports.PLAN)],
                "plan": [("", exports.PLAN)]}
    for name, tables in expected.items():
        have = commands[name]._option_string_actions
        for prefix, table in tables:
            for export in table.values():
                if export.option:
                    option = "--" + prefix + export.option[2:]
                    assert option in have and have[option].metavar == "PATH", (name, option)
                    assert "- for stdout" in have[option].help


def test_the_scan_help_states_the_memory_budget_it_uses():
    out = quantcalc("scan", "--help")
    assert str(api.WHOLE_VALUES) in out.stdout


def test_a_failed_write_is_one_line(tmp_path):
    out = quantcalc("analyze", "--values", "1 2", "--json", tmp_path / "no" / "such" / "s.json")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "cannot write" in out.stderr


def test_the_plan_of_a_scan_in_one_go_goes_to_its_own_files(scanned, tmp_path):
    out = quantcalc(*command("scan", scanned)[:-1], "--format", "q6_k", "--plan-bpw", "5",
                    "--plan-json", tmp_path / "plan.json", "--plan-tensor-types",
                    tmp_path / "types.txt", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "worst tensors" in out.stdout and "bits per weight" in out.stdout
    recipe = json.loads((tmp_path / "plan.json").read_text())
    assert (tmp_path / "types.txt").read_text().split() == \
        recipe["llama_quantize"]["tensor_types"]


def test_a_range_is_a_custom_range_and_contradicts_another_calibration():
    out = quantcalc("analyze", "--values", VALUES, "--range", "-2", "2", "--json", "-")
    summary = json.loads(out.stdout)
    assert summary["calibration"] == "custom" and (summary["real_min"], summary["real_max"]) \
        == (-2, 2)
    both = quantcalc("analyze", "--values", VALUES, "--range", "-2", "2", "--calibration",
                     "minmax")
    assert both.returncode == 2 and "not both" in both.stderr
    alone = quantcalc("analyze", "--values", VALUES, "--calibration", "custom")
    assert alone.returncode == 2 and "custom range needs a minimum" in alone.stderr


@pytest.mark.parametrize("error, status, last_line", [
    ({"kind": "input", "message": "bits must be between 2 and 16", "field": "bits"}, 2,
     "quantcalc: error: bits must be between 2 and 16"),
    ({"kind": "memory", "message": "not enough memory for this tensor", "field": "values"}, 2,
     "quantcalc: error: not enough memory for this tensor"),
    ({"kind": "internal", "message": "internal error: KeyError: 'x'", "field": "values",
      "trace": "Traceback (most recent call last):\nKeyError: 'x'\n"}, 1,
     "quantcalc: internal error: KeyError: 'x'"),
])
def test_the_facades_error_dicts_are_the_command_lines_messages(error, status, last_line,
                                                                 monkeypatch, capsys):
    monkeypatch.setattr(api, "analyze", lambda *args, **kwargs: {"error": error})
    assert cli.main(["analyze", "--values", "1 2"]) == status
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == last_line
    assert len(lines) == (1 if status == 2 else 3)  # a bug keeps its trace
