"""What the page's start-up imports, checked: the calculator is the engine every visit needs first,
so importing it must stay light (issue: a light start; bench/startup.py measures the phases).

Under Pyodide, compiling Python source is the expensive part of an import (CPython's compiler runs
in WebAssembly, and its first use in a visit also makes the browser compile that part of the
wasm): every module ships as bytecode, so any compile at import is source made at run time —
`dataclasses` writing methods, `namedtuple`, `exec`. None may happen on the calculator's path.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import sys, traceback
# Pyodide's own runtime has imported these before quantcalc starts (checked in Pyodide 0.27.7:
# sys.modules after loadPyodide), so whatever they compile is not the engine's cost.
import numpy, inspect, typing, dis, collections, re, enum, functools, ast, textwrap
made = []
def hook(event, args):
    # a module's own code (exec of its bytecode, or compile of its file) is not made at run time
    source = args[0].co_filename if event == "exec" else str(args[1]) if event == "compile" else ""
    if event in ("compile", "exec") and not source.endswith(".py"):
        frames = [f for f in traceback.extract_stack() if "quantcalc" in f.filename]
        where = f"{frames[-1].filename.split('py/')[-1]}:{frames[-1].lineno}" if frames else "?"
        made.append(f"{event} at {where}")
sys.addaudithook(hook)
import quantcalc.api
import quantcalc.api.calculator
loaded = sorted(m for m in sys.modules if m.startswith("quantcalc"))
print("\n".join(made))
print("MODULES", " ".join(loaded))
"""


def probe():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            cwd=ROOT, env={"PYTHONPATH": str(ROOT / "py")}, check=True)
    made, _, modules = result.stdout.partition("MODULES ")
    return [line for line in made.splitlines() if line], set(modules.split())


def test_importing_the_calculator_compiles_nothing():
    made, _ = probe()
    assert made == [], "source compiled at import on the calculator's path:\n" + "\n".join(made)


def test_the_calculator_does_not_load_scan_plan_or_llama_cpp_searches():
    _, modules = probe()
    heavy = {m for m in modules if (m + ".").split(".")[1] in ("scan", "plan", "cli")
             or m.startswith(("quantcalc.formats.ggml", "quantcalc.readers.gguf",
                              "quantcalc.readers.checkpoint", "quantcalc.readers.imatrix"))}
    assert heavy == set()
