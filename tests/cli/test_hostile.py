"""Hostile input: each item found by an adversarial campaign, and properties over random bytes.

Bad input never crashes, hangs or silently misleads: the engine raises QuantcalcError naming the
field, the command line exits 2 with one line, and every report is strict JSON.
"""

import io
import json
import math
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tests.support.command import quantcalc, refused
from quantcalc import Config, QuantcalcError, analyze
from quantcalc import api
from quantcalc.readers import text as inputs
from quantcalc.engine import metrics
from quantcalc.reports import tables as report
from quantcalc.reports.figures import STYLE, matplotlib
from quantcalc.errors import printable



def cli(*args, stdin=None, stdin_file=None):
    return quantcalc(*args, stdin=stdin, stdin_file=stdin_file, timeout=120)


def safetensors(header, payload=b"\0" * 64):
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


# ---------------------------------------------------------------- numbers at float64's edge
def test_the_largest_doubles_no_longer_overflow_the_error_units():
    assert math.isfinite(metrics.power_of_two_unit(1.7976931348623157e308))
    assert metrics.power_of_two_unit(8.99e307) == 2.0 ** 1023  # 2^1023 <= 8.99e307 < 2^1024


def test_values_near_the_float64_limit_are_refused_or_finite():
    out = cli("analyze", "--values", "8.99e307 -1.7e308 1", "--json", "-")
    refused(out, "overflows float64")
    # one huge value among ordinary ones in a format that can represent it: finite numbers
    r = analyze(np.array([1e300, 1.0, -2.0]), Config())
    assert all(math.isfinite(r.metrics[k]) for k in ("mse", "rmse", "mae", "max_abs_error"))


def test_gguf_blocks_beyond_fp16_scales_are_refused_not_nan():
    block = "8.4e6 " + " ".join(["1"] * 31)  # one block of 32
    out = cli("analyze", "--values", block, "--format", "q8_0", "--json", "-")
    refused(out, "fp16", "65504")
    out = cli("compare", "--values", block, "--config", "format=q4_0", "--json", "-")
    refused(out, "fp16")


def test_a_range_wider_than_float64_is_refused_at_the_range():
    with pytest.raises(QuantcalcError) as err:
        analyze(np.array([1.0, 2.0]), Config(mode="asymmetric", calibration="custom",
                                             range_min=-1.7e308, range_max=1.7e308))
    assert err.value.field == "range_min"
    refused(cli("analyze", "--values", "1 2", "--mode", "asymmetric", "--range", "-1.7e308",
                "1.7e308"), "too wide")


def test_reports_are_strict_json():
    r = analyze(np.zeros(4), Config())  # SQNR inf
    text = report.summary_json(r).decode()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    with pytest.raises(ValueError):
        report.json_text({"x": float("nan")})  # never written bare


# ---------------------------------------------------------------- settings on the command line
@pytest.mark.parametrize("args, words", [
    (["--rounding", "stochastic", "--seed", "-1"], ["random seed"]),
    (["--granularity", "group", "--group-size", "99999999999999999999999"], ["group size"]),
    (["--format", "nf4", "--block-size", "99999999999999999999999"], ["block size"]),
    (["--bits", "８"], ["bits", "whole number"]),
])
def test_out_of_range_settings_are_one_line(args, words):
    refused(cli("analyze", "--values", "1 2 3", *args), *words)


def test_values_that_start_with_a_dash_are_values():
    out = cli("analyze", "--values", "-0.0005 0.0007", "--range", "-1e-3", "1e-3", "--name", "-x",
              "--json", "-")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["name"] == "-x" and summary["real_min"] == -1e-3


# ---------------------------------------------------------------- files
@pytest.mark.parametrize("entry, words", [
    ({"dtype": "F32", "shape": [2], "data_offsets": ["0", "8"]}, "data_offsets"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [0.0, 8.0]}, "data_offsets"),
    ({"dtype": "F32", "shape": [2], "data_offsets": {"a": 1}}, "data_offsets"),
    ({"dtype": ["F32"], "shape": [2], "data_offsets": [0, 8]}, "dtype"),
    ({"dtype": "F32", "shape": "abcd", "data_offsets": [0, 8]}, "shape"),
    ({"dtype": "F32", "shape": [-2, -2], "data_offsets": [0, 8]}, "shape"),
    ({"dtype": "F32", "shape": [2 ** 62, 2 ** 62], "data_offsets": [0, 8]}, "offsets"),
    ("not an object", "not a JSON object"),
])
def test_malformed_safetensors_entries_are_named(entry, words):
    with pytest.raises(QuantcalcError) as err:
        inputs.parse_file(safetensors({"t": entry}), "m.safetensors")
    assert words in err.value.message and err.value.field == "file"


def test_a_text_file_named_safetensors_is_not_called_truncated():
    """Its first 8 bytes read as an absurd header length: the message says what the file is not
    (it said "truncated: its header says 7526676540175443304 bytes")."""
    with pytest.raises(QuantcalcError) as err:
        inputs.parse_file(b"hello this is text not a tensor file\n", "notes.safetensors")
    assert "is not a .safetensors file" in err.value.message and err.value.field == "file"
    assert "truncated" not in err.value.message
    # a real header cut short is still "truncated"
    whole = safetensors({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})
    with pytest.raises(QuantcalcError, match="truncated"):
        inputs.parse_file(whole[:20], "cut.safetensors")


def test_a_deeply_nested_safetensors_header_is_refused_before_parsing():
    deep = b'{"t": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    for read in (inputs.tensor_names, inputs.parse_file):
        with pytest.raises(QuantcalcError, match="nested more than 64 deep"):
            read(safetensors(deep), "m.safetensors")
    # brackets inside strings are not nesting
    names = inputs.tensor_names(safetensors(
        {"[[[[" * 40: {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}), "m.safetensors")
    assert names == ["[[[[" * 40]


def test_a_missing_tensor_names_a_few_and_the_count():
    header = {f"layer.{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
              for i in range(50_000)}
    with pytest.raises(QuantcalcError) as err:
        inputs.parse_file(safetensors(header), "m.safetensors", "nope")
    assert len(err.value.message) < 400 and "49,992 more (50,000 in all)" in err.value.message


def test_an_npy_header_claiming_more_than_the_file_holds():
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
    header = header.ljust(117) + "\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(8)
    assert len(data) < 200
    with pytest.raises(QuantcalcError, match="claims 1,000,000,000,000 values"):
        inputs.parse_file(data, "w.npy")


def test_an_npz_decompression_bomb_is_refused_before_expanding(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("w.npy", "w", force_zip64=True) as member:  # 96 MB of zeros
            np.lib.format.write_array_header_1_0(member, {
                "descr": "<f8", "fortran_order": False, "shape": (12_000_000,)})
            zeros = bytes(1 << 20)
            for _ in range(91):
                member.write(zeros)
            member.write(bytes(12_000_000 * 8 - 91 * (1 << 20)))
    data = buffer.getvalue()
    assert len(data) < 200_000
    with pytest.raises(QuantcalcError, match="decompression bomb"):
        inputs.parse_file(data, "bomb.npz")


def test_endless_inputs_are_refused_without_reading_them(tmp_path):
    link = tmp_path / "x.npy"
    link.symlink_to("/dev/zero")
    refused(cli("analyze", str(link)), "not a regular file")
    with open("/dev/zero", "rb") as zero:
        refused(cli("analyze", "-", stdin_file=zero), "device")


def test_a_quoted_decimal_comma_csv_is_not_read_as_twice_the_values():
    with pytest.raises(QuantcalcError, match="decimal comma"):
        inputs.parse_file(b'"1,5";"2,5"\n"3,5";"4,5"\n', "de.csv")
    assert inputs.parse_file(b'"1.5";"2.5"\n"3.5";"4.5"\n', "en.csv").tolist() == \
        [[1.5, 2.5], [3.5, 4.5]]


def test_a_numpy_repr_with_a_long_run_of_spaces_parses_in_linear_time():
    # quadratic before: 200,000 spaces took 33 s; now a clear message at once
    with pytest.raises(QuantcalcError, match="'array'"):
        inputs.parse_text("array(" + " " * 200_000)
    assert inputs.parse_text("array([1, 2]" + " " * 200_000 + ", dtype=float32)").tolist() == [1, 2]


# ---------------------------------------------------------------- text that reaches a terminal
def test_control_characters_never_reach_the_terminal(tmp_path):
    evil = "w\x1b]0;pwned\x07\x1b[2J\u202e"
    assert printable(evil) == "w\\x1b]0;pwned\\x07\\x1b[2J\\u202e"
    path = tmp_path / "m.safetensors"
    path.write_bytes(safetensors({evil: {"dtype": "F32", "shape": [2],
                                        "data_offsets": [0, 8]}}, np.float32([1, 2]).tobytes()))
    out = cli("analyze", str(path), "--tensor", "nope")
    assert "\x1b" not in out.stderr and "\\x1b" in refused(out)
    table = cli("analyze", str(path), "--name", evil)
    assert table.returncode == 0 and "\x1b" not in table.stdout and "\\x1b" in table.stdout


def test_names_are_text_in_the_pdf_never_mathtext():
    r = analyze(np.array([1.0, -2.0]), Config(name="$\\frac{$"))
    assert report.pdf(r).startswith(b"%PDF")  # a mathtext parse error before
    with matplotlib.rc_context({**STYLE, "svg.fonttype": "none"}):
        fig = report.text_page("Quantization report: cost $5 and $6", [("name", "a $x$ b")],
                               ("setting", "value"))
        svg = io.StringIO()
        fig.savefig(svg, format="svg")
    assert "cost $5 and $6" in svg.getvalue() and "a $x$ b" in svg.getvalue()


# ---------------------------------------------------------------- properties
READERS = [".npy", ".npz", ".safetensors", ".csv", ".txt"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512), st.sampled_from(READERS))
def test_random_bytes_give_a_message_never_another_exception(data, kind):
    try:
        inputs.parse_file(data, "x" + kind)
        inputs.tensor_names(data, "x" + kind)
    except QuantcalcError:
        pass


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats()
                    | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=6), children, max_size=4), max_leaves=20)
ENTRY = st.fixed_dictionaries({}, optional={
    "dtype": st.sampled_from(["F32", "F16", "BF16", "I8", "F64", "Q4"]) | JSON,
    "shape": st.lists(st.integers(-3, 2 ** 40), max_size=3) | JSON,
    "data_offsets": st.lists(st.integers(-8, 2 ** 40), max_size=3) | JSON})


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), ENTRY | JSON, max_size=3),
       st.binary(max_size=64))
def test_random_safetensors_headers_give_a_message_never_another_exception(header, payload):
    data = safetensors(json.dumps(header).encode(), payload)
    for tensor in [None, *header]:
        try:
            values = inputs.parse_file(data, "x.safetensors", tensor)
        except QuantcalcError:
            continue
        assert values.dtype.kind == "f"


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["bits", "format", "mode", "rounding", "seed",
                                        "calibration", "percentile", "range_min", "range_max",
                                        "granularity", "axis", "group_size", "block_size",
                                        "narrow_range", "name"]),
                       st.text(max_size=12) | st.integers(-2 ** 70, 2 ** 70) | st.floats()
                       | st.booleans(), max_size=6))
def test_random_settings_give_a_result_or_a_message(config):
    reply = api.analyze(config, {"text": "1 -2 3.5 0.25"})
    if "error" in reply:
        assert reply["error"]["kind"] == "input", reply
    else:
        report.json_text(reply["summary"])  # strict JSON: json_text spells infinities "inf"
