"""The bytecode build.py ships so the page does not compile Python on every visit.

Checked twice: the archives' shape (every source has its pyc, each pyc is a CPython 3.12
"unchecked hash" pyc), and, in Pyodide itself under Node as the page's worker would do it, that
the interpreter takes them (no stdlib module is compiled from source, no package pyc is rewritten)
and that the engine gives the same numbers as in CPython.
"""

import io
import json
import shutil
import subprocess
import zipfile

import pytest

import build
from quantcalc import api

MAGIC_3_12 = (3531).to_bytes(2, "little") + b"\r\n"  # importlib's MAGIC_NUMBER for 3.12
UNCHECKED_HASH = 0b01  # pyc flags: hash-based, not checked against the source (PEP 552)
EXAMPLE = "-1.25, -0.92, -0.51, -0.10, 0, 0.14, 0.37, 0.79, 1.12, 1.46"
CONFIG = {"name": "example", "bits": 4, "mode": "asymmetric", "calibration": "mse"}


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    return build.build(tmp_path_factory.mktemp("site") / "dist")


def listing(dist):
    return json.loads(next(dist.glob("app/*/bytecode.json")).read_text())


def pycache_path(source):
    """Where CPython 3.12 looks for the pyc of a .py: folder/__pycache__/name.cpython-312.pyc."""
    folder, _, file = source.rpartition("/")
    return f"{folder}/__pycache__/{file[:-3]}.cpython-312.pyc".lstrip("/")


def assert_unchecked_pyc(data):
    assert data[:4] == MAGIC_3_12
    assert int.from_bytes(data[4:8], "little") == UNCHECKED_HASH


def test_the_stdlib_is_shipped_compiled_and_only_compiled(dist):
    names = zipfile.ZipFile(io.BytesIO(build.core_files()["python_stdlib.zip"])).namelist()
    compiled = zipfile.ZipFile(dist / "pyodide" / listing(dist)["stdlib"])
    shipped = set(compiled.namelist())
    sources = [n for n in names if n.endswith(".py")]
    assert len(sources) > 400
    assert all(n + "c" in shipped for n in sources)
    assert not [n for n in shipped if n.endswith(".py")]
    assert {n for n in names if not n.endswith(".py")} <= shipped  # data files kept
    for name in ("json/__init__.pyc", "asyncio/base_events.pyc", "encodings/utf_8.pyc"):
        assert_unchecked_pyc(compiled.read(name))
    assert not (dist / "pyodide" / "python_stdlib.zip").exists()


def test_each_wheel_and_quantcalc_have_a_pyc_per_module(dist):
    packages = listing(dist)["packages"]
    assert {"numpy", "matplotlib", "pyparsing"} <= set(packages)
    wheels = {p.name.removesuffix(".whl"): p for p in (dist / "pyodide").glob("*.whl")}
    for name, overlay_name in packages.items():
        wheel = zipfile.ZipFile(wheels[overlay_name.removesuffix(".pycache.zip")])
        overlay = zipfile.ZipFile(dist / "pyodide" / overlay_name)
        expected = {pycache_path(n) for n in wheel.namelist() if n.endswith(".py")}
        assert set(overlay.namelist()) == expected, name
    numpy = zipfile.ZipFile(dist / "pyodide" / packages["numpy"])
    assert_unchecked_pyc(numpy.read("numpy/__pycache__/__init__.cpython-312.pyc"))
    package = zipfile.ZipFile(next(dist.glob("app/*/quantcalc.zip")))
    modules = [n for n in package.namelist() if n.endswith(".py")]
    assert len(modules) > 15
    for module in modules:
        assert_unchecked_pyc(package.read(pycache_path(module)))


# Boots Pyodide the way web/worker.js does (compiled stdlib, numpy plus its pycache archive,
# quantcalc.zip), then reports where the modules came from and the engine's answer.
NODE_CHECK = r"""
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";
const [pyodideDir, appDir, listingPath, configJson, text] = process.argv.slice(2);
const listing = JSON.parse(readFileSync(listingPath, "utf8"));
const { loadPyodide } = await import(pathToFileURL(`${pyodideDir}/pyodide.mjs`).href);
const pyodide = await loadPyodide({ indexURL: `${pyodideDir}/`,
  stdLibURL: `${pyodideDir}/${listing.stdlib}` });
await pyodide.loadPackage(["numpy"], { messageCallback: () => {} });
const unpack = (path) => pyodide.unpackArchive(new Uint8Array(readFileSync(path)), "zip",
  { extractDir: "/lib/python3.12/site-packages" });
unpack(`${pyodideDir}/${listing.packages.numpy}`);
unpack(`${appDir}/quantcalc.zip`);
pyodide.globals.set("config_json", configJson);
pyodide.globals.set("text", text);
console.log(pyodide.runPython(`
import json, pathlib, sys
from quantcalc import api
summary = api.analyze(json.loads(config_json), {"text": text})["summary"]
stdlib = [m.__spec__.origin for m in list(sys.modules.values())
          if getattr(m, "__spec__", None) and (m.__spec__.origin or "").startswith("/lib/python312.zip")]
site = pathlib.Path("/lib/python3.12/site-packages")
pycs = [p for top in ("numpy", "quantcalc") for p in (site / top).rglob("*.pyc")]
json.dumps({"summary": summary, "stdlib": stdlib, "pycs": len(pycs),
            "rewritten": [str(p) for p in pycs if p.read_bytes()[4:8] != b"\\x01\\0\\0\\0"],
            "numpy_imported": sys.modules["numpy"].__version__})
`));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs Pyodide here")
def test_pyodide_runs_the_engine_from_the_shipped_bytecode(dist, tmp_path):
    script = tmp_path / "check.mjs"
    script.write_text(NODE_CHECK)
    app_dir = next(dist.glob("app/*/"))
    out = subprocess.run(
        ["node", str(script), str(dist / "pyodide"), str(app_dir), str(app_dir / "bytecode.json"),
         json.dumps(CONFIG), EXAMPLE], check=True, capture_output=True, text=True, timeout=300)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["numpy_imported"] == "2.0.2"
    assert len(report["stdlib"]) > 50
    assert all(origin.endswith(".pyc") for origin in report["stdlib"]), "a stdlib module compiled"
    assert report["pycs"] > 100 and report["rewritten"] == []
    assert report["summary"] == api.analyze(CONFIG, {"text": EXAMPLE})["summary"]
