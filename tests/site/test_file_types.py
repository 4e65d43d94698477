"""The input file types are declared once, in quantcalc/schema/file_types.py; the page reads a
generated copy (schema.js, and the accept= attributes and lists of types build.py writes into
index.html). These tests fail when a copy drifts from the table or a hand-written list of
suffixes comes back into web/."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from quantcalc.schema import file_types
from sitebuild import site

WEB = Path(__file__).resolve().parents[2] / "web"
# the words of every suffix in the table: "safetensors", "index", "json", "gguf", "npz", ...
WORDS = sorted({word for t in file_types.FILE_TYPES for word in t.suffix.split(".") if word})
INPUTS = {"file": "calculator", "imatrix": "imatrix", "scan-files": "scan",
          "scan-imatrix": "imatrix", "audit-original-files": "scan",
          "audit-quantized-files": "scan", "audit-imatrix": "imatrix"}


def generated_schema():
    text = site.schema_module().decode("utf-8")
    return json.loads(re.fullmatch(r"//[^\n]*\nexport default (.*);\n", text, re.S).group(1))


class Inputs(HTMLParser):
    """{id: accept} of the page's file inputs (a folder's input takes any file in it)."""

    def __init__(self):
        super().__init__()
        self.accept = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("type") == "file" and "webkitdirectory" not in attrs:
            self.accept[attrs["id"]] = attrs.get("accept")


def built_page():
    return site.with_file_types((WEB / "index.html").read_text(encoding="utf-8"))


def test_schema_js_carries_the_table():
    assert generated_schema()["file_types"] == json.loads(json.dumps(file_types.page_table()))


def test_each_file_input_accepts_what_its_tool_takes():
    parser = Inputs()
    parser.feed(built_page())
    assert parser.accept == {key: file_types.accept(tool) for key, tool in INPUTS.items()}
    # every type a tool takes is offered by its file picker (which matches last extensions)
    for key, tool in INPUTS.items():
        offered = parser.accept[key].split(",")
        for kind in file_types.taken_by(tool, refused=True):
            assert any(kind.suffix.endswith(pattern) for pattern in offered), (key, kind.suffix)


def test_the_pages_lists_of_types_are_the_tables():
    text = re.sub(r"\s+", " ", built_page())
    calculator = file_types.listed(file_types.CALCULATOR, lambda s: f"<code>{s}</code>")
    assert f"load a {calculator} file" in text and f"drop a {calculator} file here" in text
    assert f"Checkpoint files ({file_types.listed(file_types.SCAN, lambda s: f'<code>{s}</code>')})" \
        in text
    assert ".gguf" in file_types.listed(file_types.CALCULATOR)
    assert "__" not in re.sub(r"__(BUILD|MODULEPRELOAD)__", "", text)  # every mark filled


def test_no_list_of_suffixes_is_written_by_hand_in_the_page():
    words = "|".join(WORDS)
    in_regex = re.compile(rf"\\\.\(?(?:{words})\b")           # /\.(safetensors|gguf)$/
    in_string = re.compile(rf"[\"'`]\.(?:{words})\b")         # ".npz", '.bin'
    for path in sorted(WEB.glob("*.js")):
        text = path.read_text(encoding="utf-8")
        assert not in_regex.search(text), (path.name, in_regex.search(text).group())
        assert not in_string.search(text), (path.name, in_string.search(text).group())
    page = (WEB / "index.html").read_text(encoding="utf-8")
    assert re.findall(r'accept="([^"]*)"', page) == [f"__ACCEPT_{tool}__"
                                                     for tool in INPUTS.values()]
    assert not re.search(rf"<code>\.(?:{words})</code>", page)


@pytest.mark.parametrize("name, suffix", [
    ("model.safetensors", ".safetensors"), ("MODEL.SafeTensors", ".safetensors"),
    ("model.safetensors.index.json", ".safetensors.index.json"), ("w.gguf", ".gguf"),
    ("model.imatrix.gguf", ".gguf"), ("imatrix.dat", ".dat"), ("pytorch_model.bin", ".bin"),
    ("config.json", "config.json"), ("tokenizer_config.json", "config.json"),
    ("tokens.json", None), ("notes", None), ("x.npy.txt", ".txt"),
])
def test_a_name_has_the_type_of_its_longest_suffix(name, suffix):
    kind = file_types.of(name)
    assert (kind and kind.suffix) == suffix


def test_the_table_says_what_each_tool_takes():
    assert file_types.accept(file_types.CALCULATOR) == ".npy,.npz,.safetensors,.gguf,.csv,.txt"
    assert file_types.accept(file_types.IMATRIX) == ".gguf,.dat,.imatrix"
    scan = file_types.accept(file_types.SCAN).split(",")
    assert {".safetensors", ".json", ".gguf", ".npz", ".npy", ".bin", ".pt", ".pth"} <= set(scan)
    for kind in file_types.FILE_TYPES:
        if kind.refused:  # taken only to be refused, and read by nothing
            assert kind.reader is None and kind.tools == (file_types.SCAN,)
        if kind.several:  # a chooser: the engine lists their tensors
            assert kind.reader in ("npz", "safetensors", "gguf", "index")
    assert [t.suffix for t in file_types.FILE_TYPES if t.by_offset and
            file_types.CALCULATOR in t.tools] == [".safetensors", ".gguf"]
