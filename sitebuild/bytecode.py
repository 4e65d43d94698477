"""Pyodide's stdlib zip and its wheels hold .py sources only, so every visit compiled each imported
module again: about 1 s of a cold start went to compiling the stdlib at boot and 0.25 s to
compiling numpy on import (and the wasm of CPython's compiler is itself compiled lazily on that
first use). The build compiles them once, with Pyodide's own CPython 3.12 run under Node, into:
  python_stdlib.pyc.zip    the stdlib zip with each .py replaced by its .pyc (zipimport finds
                           it by name; there is no source left to check it against)
  <wheel>.pycache.zip      __pycache__/*.cpython-312.pyc for every .py of one wheel, unpacked
                           over the installed wheel by the worker
and adds quantcalc's own __pycache__ to quantcalc.zip. All are "unchecked hash" pycs: a pyc is
used without looking at its source, which is right because it is built from those exact bytes
and shipped with them. Outputs are cached under the sha256 of their input and of the compiler.
"""

import json
import shutil
import subprocess
from pathlib import Path

from .common import CACHE, BuildError, log, sha256

HERE = Path(__file__).resolve().parent
COMPILER = HERE / "compile_in_pyodide.py"
RUNNER = HERE / "run_in_pyodide.mjs"
STDLIB_PYC = "python_stdlib.pyc.zip"
SITE_PACKAGES = "/lib/python3.12/site-packages/"

# where each layout's files are in Pyodide's file system
INSTALLED_AT = {"stdlib": "/lib/python312.zip/", "package": SITE_PACKAGES,
                "overlay": SITE_PACKAGES}


def compiled(core: dict, jobs: list) -> list:
    """[(archive bytes, layout)] -> the compiled archives, each cached under its input's hash."""
    results, todo = [], []
    for data, layout in jobs:
        # named by what decides its bytes: the input, and how it is compiled
        key = sha256(data + layout.encode() + COMPILER.read_bytes() + RUNNER.read_bytes())
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
        shutil.copy(COMPILER, work / "compile.py")
        shutil.copy(RUNNER, work / "run.mjs")
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


