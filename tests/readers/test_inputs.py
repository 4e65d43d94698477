"""Parsing pasted text and files, and the one-line messages for everything that can go wrong."""

import io
import json
import struct

import numpy as np
import pytest

from quantcalc import QuantcalcError
from quantcalc import api
from quantcalc.readers.text import (check_finite, parse_file, parse_text, tensor_details, tensor_names)


@pytest.mark.parametrize("text, expected", [
    ("-1.25, -0.92, 0.14", [-1.25, -0.92, 0.14]),
    ("1 2\t3\n4;5,,6", [1, 2, 3, 4, 5, 6]),
    ("[-1.25 -0.92  0.14]", [-1.25, -0.92, 0.14]),
    ("array([1.5e-3, -2E+2, .5, 7.], dtype=float32)", [1.5e-3, -200, 0.5, 7]),
    ("  +3  ", [3]),
    ("(1, 2)", [1, 2]),
])
def test_text_formats(text, expected):
    assert parse_text(text).tolist() == expected


def test_nested_brackets_keep_the_shape():
    assert parse_text("[[1, 2, 3], [4, 5, 6]]").shape == (2, 3)
    assert parse_text("[[[1, 2], [3, 4]], [[5, 6], [7, 8]]]").shape == (2, 2, 2)
    assert parse_text("[[1. 2.]\n [3. 4.]]").tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize("text, words", [
    ("1, 2, abc, 4", ["'abc'", "line 1, column 7", "item 3", "not a number"]),
    ("1\n2\n  3x", ["'3x'", "line 3, column 3"]),
    ("1, nan, 2", ["'nan'", "NaN and Inf"]),
    ("-inf", ["'-inf'", "not a finite number"]),
    ("1e999", ["too large"]),
    ("1_000", ["'1_000'", "not a number"]),
    ("", ["no numbers found"]),
    ("[ ]", ["no numbers found"]),
    ("[[1, 2], [3]]", ["different lengths"]),
    ("[1, 2", ["not closed"]),
    ("1, 2]", ["unmatched ']'"]),
    ("0x1F", ["'0x1F'"]),
])
def test_bad_text_says_what_and_where(text, words):
    with pytest.raises(QuantcalcError) as err:
        parse_text(text)
    assert err.value.field == "values"
    assert "\n" not in err.value.message
    for word in words:
        assert word in err.value.message


def test_csv_files():
    assert parse_file(b"value\n1\n2\n3\n", "a.csv").tolist() == [1, 2, 3]
    m = parse_file(b"a,b,c\r\n1,2,3\r\n4,5,6\r\n", "m.csv")
    assert m.shape == (2, 3)
    assert parse_file("\ufeff1;2;3".encode("utf-8"), "b.csv").tolist() == [1, 2, 3]
    assert parse_file(b"1 2 3\n4 5\n", "c.txt").tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(QuantcalcError, match=r"'oops' on line 3, field 2"):
        parse_file(b"x,y\n1,2\n3,oops\n", "d.csv")
    with pytest.raises(QuantcalcError, match="not a UTF-8"):
        parse_file(b"\xff\xfe\x00garbage", "e.csv")
    with pytest.raises(QuantcalcError, match="header but no numbers"):
        parse_file(b"a,b\n", "f.csv")


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "int32", "uint8"])
def test_npy_round_trip(dtype):
    a = (np.arange(12).reshape(3, 4) - 5).astype(dtype)
    out = parse_file(npy_bytes(a), "a.npy")
    assert out.shape == (3, 4) and np.array_equal(out, a.astype(np.float64))
    assert out.dtype in (np.float32, np.float64)


def test_npy_hostile_files():
    with pytest.raises(QuantcalcError, match="truncated|cannot be read"):
        parse_file(npy_bytes(np.arange(100.0))[:-40], "t.npy")
    with pytest.raises(QuantcalcError, match="pickled"):
        parse_file(npy_bytes(np.array([{"a": 1}], dtype=object)), "o.npy")
    with pytest.raises(QuantcalcError, match="complex128"):
        parse_file(npy_bytes(np.array([1 + 2j])), "c.npy")
    with pytest.raises(QuantcalcError, match="not a .npy"):
        parse_file(b"hello world", "x.npy")
    with pytest.raises(QuantcalcError, match="empty"):
        parse_file(b"", "x.npy")
    with pytest.raises(QuantcalcError, match="unsupported file type"):
        parse_file(b"1", "x.xlsx")


def test_npz_choose_the_array():
    buffer = io.BytesIO()
    np.savez(buffer, weight=np.ones((2, 2)), bias=np.arange(3.0))
    data = buffer.getvalue()
    assert tensor_names(data, "m.npz") == ["weight", "bias"]
    assert tensor_details(data, "m.npz") == [("weight", (2, 2), "float64"),
                                              ("bias", (3,), "float64")]
    assert api.describe_file({"file_bytes": data, "file_name": "m.npz"})["details"] == [
        "2 × 2 float64", "3 float64"]
    assert parse_file(data, "m.npz", "bias").tolist() == [0, 1, 2]
    assert parse_file(data, "m.npz").shape == (2, 2)  # the first by default
    with pytest.raises(QuantcalcError) as err:
        parse_file(data, "m.npz", "gamma")
    assert err.value.field == "tensor" and "'weight', 'bias'" in err.value.message
    with pytest.raises(QuantcalcError, match="not a readable .npz"):
        parse_file(data[:50], "m.npz")


def safetensors_bytes(tensors, metadata=None):
    """Write the format by hand: u64 header length, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def test_safetensors_dtypes():
    values = np.array([[-1.5, 0.25], [3.0, -0.125]])
    bf16 = (values.astype(np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
    data = safetensors_bytes({
        "f32": ("F32", [2, 2], values.astype("<f4").tobytes()),
        "f16": ("F16", [2, 2], values.astype("<f2").tobytes()),
        "bf16": ("BF16", [2, 2], bf16),
        "f64": ("F64", [4], values.astype("<f8").tobytes()),
        "i8": ("I8", [3], np.array([-3, 0, 7], np.int8).tobytes()),
    }, metadata={"format": "pt"})
    assert tensor_names(data, "m.safetensors") == ["f32", "f16", "bf16", "f64", "i8"]
    assert [d[1:] for d in tensor_details(data, "m.safetensors")] == [
        ((2, 2), "F32"), ((2, 2), "F16"), ((2, 2), "BF16"), ((4,), "F64"), ((3,), "I8")]
    for name in ("f32", "f16", "bf16"):
        out = parse_file(data, "m.safetensors", name)
        assert out.shape == (2, 2) and np.array_equal(out, values), name
    assert parse_file(data, "m.safetensors", "f64").tolist() == values.reshape(-1).tolist()
    assert parse_file(data, "m.safetensors", "i8").tolist() == [-3, 0, 7]


def test_safetensors_hostile_files():
    good = safetensors_bytes({"w": ("F32", [4], np.ones(4, "<f4").tobytes())})
    with pytest.raises(QuantcalcError, match="truncated"):
        parse_file(good[:-3], "m.safetensors")
    with pytest.raises(QuantcalcError, match="header says"):
        parse_file(struct.pack("<Q", 10**6) + good[8:], "m.safetensors")
    with pytest.raises(QuantcalcError, match="not a .safetensors file"):  # over the format's limit
        parse_file(struct.pack("<Q", 10**9) + good[8:], "m.safetensors")
    with pytest.raises(QuantcalcError, match="malformed JSON"):
        parse_file(struct.pack("<Q", 5) + b"{nope" + b"\0" * 8, "m.safetensors")
    with pytest.raises(QuantcalcError, match="too short"):
        parse_file(b"\x01\x02", "m.safetensors")
    fp8 = safetensors_bytes({"w": ("F8_E4M3", [4], b"\0" * 4)})
    with pytest.raises(QuantcalcError, match="F8_E4M3"):
        parse_file(fp8, "m.safetensors")
    wrong = safetensors_bytes({"w": ("F32", [5], np.ones(4, "<f4").tobytes())})
    with pytest.raises(QuantcalcError, match="do not match its shape"):
        parse_file(wrong, "m.safetensors")
    with pytest.raises(QuantcalcError, match="no tensor named 'v'"):
        parse_file(good, "m.safetensors", "v")


def test_non_finite_values_in_files_are_refused_with_their_index():
    with pytest.raises(QuantcalcError) as err:
        check_finite(np.array([1.0, 2.0, np.nan, np.inf]), "file")
    assert "2 value(s)" in err.value.message and "index 2" in err.value.message


def test_the_facade_never_raises_and_names_fields():
    assert api.analyze({}, {"text": "1, x"})["error"]["field"] == "values"
    assert api.analyze({"bits": 1}, {"text": "1"})["error"]["field"] == "bits"
    assert api.analyze({"bits": "eight"}, {"text": "1"})["error"]["field"] == "bits"
    reply = api.analyze({"calibration": "custom", "range_min": 2, "range_max": 1}, {"text": "1"})
    assert reply["error"]["field"] == "range_min" and "greater" in reply["error"]["message"]
    assert api.analyze({}, {"text": "   "})["error"]["field"] == "values"
    assert api.analyze({}, {"file_name": "a.npy", "file_bytes": b"junk"})["error"]["field"] == "file"
    assert api.analyze({"mode": "weird"}, {"text": "1"})["error"]["field"] == "mode"
    assert api.analyze({"percentile": 0}, {"text": "1"})["error"]["field"] == "percentile"
    assert api.analyze({"calibration": "custom", "range_min": "nan", "range_max": 1},
                       {"text": "1"})["error"]["field"] == "range_min"


# ---------------------------------------------------------------- file types (schema/file_types)
def test_each_file_type_goes_to_the_reader_the_table_names(tmp_path):
    """The calculator reads what the table says it takes, a file on disk of a by-offset type by
    offset and bytes in memory whole; what it does not take is refused naming what it does."""
    from quantcalc.readers import sources
    from quantcalc.schema import file_types

    assert sources.read_by_offset({"file_path": "/x/W.SafeTensors"}) == "/x/W.SafeTensors"
    assert sources.read_by_offset({"file_path": "/x/m.gguf"}) == "/x/m.gguf"
    assert sources.read_by_offset({"file_path": "/x/w.npz"}) is None
    assert sources.read_by_offset({"file_path": "/x/m.safetensors.index.json"}) is None
    with pytest.raises(QuantcalcError, match=r"unsupported file type; use a \.npy, .*\.gguf"):
        parse_file(b"{}", "model.safetensors.index.json")
    for kind in file_types.taken_by(file_types.CALCULATOR):
        assert kind.reader in ("text", "npy", "npz", "safetensors", "gguf"), kind


@pytest.mark.parametrize("name", ["pytorch_model.bin", "w.pt", "model.ckpt", "x.pkl"])
def test_a_pickle_given_to_the_calculator_is_refused_with_the_reason(name):
    with pytest.raises(QuantcalcError, match="PyTorch pickle: loading one runs code"):
        parse_file(b"\x80\x02}q\x00.", name)
    reply = api.analyze({}, {"file_name": name, "file_bytes": b"\x80\x02}q\x00."})
    assert reply["error"]["field"] == "file" and "safetensors" in reply["error"]["message"]


def test_gguf_bytes_in_memory_read_as_the_file_by_offset(tmp_path):
    from quantcalc.readers import checkpoint
    from tests.support import checkpoints as C

    rng = np.random.default_rng(3)
    arrays = {"a.weight": rng.standard_normal((4, 64)).astype(np.float32),
              "b.weight": rng.standard_normal((2, 64)).astype(np.float32),
              "c.weight": rng.standard_normal((3, 64)).astype(np.float32)}
    path = tmp_path / "m.gguf"
    C.write_gguf(path, arrays, {"b.weight": "Q8_0", "c.weight": "F16"})
    data = path.read_bytes()
    assert tensor_details(data, "m.gguf") == [("a.weight", (4, 64), "F32"),
                                              ("b.weight", (2, 64), "Q8_0"),
                                              ("c.weight", (3, 64), "F16")]
    for name in [None, *arrays]:
        got = parse_file(data, "M.GGUF", name)
        want = checkpoint.read_tensor(str(path), name)
        assert got.dtype == want.dtype and np.array_equal(got, want), name
    with pytest.raises(QuantcalcError, match="no tensor named 'd'; it has 'a.weight'"):
        parse_file(data, "m.gguf", "d")
    with pytest.raises(QuantcalcError, match="truncated"):
        parse_file(data[:-40], "m.gguf", "c.weight")
