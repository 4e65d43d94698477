"""The command line as the tests run it: a fresh process that sees only the package."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": str(ROOT / "py"), "PATH": "/usr/bin:/bin"}


def quantcalc(*args, stdin=None, stdin_file=None, timeout=300):
    """`python -m quantcalc ARGS...` (paths may be Path objects); its CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "quantcalc", *map(str, args)], input=stdin,
                          stdin=stdin_file, capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env=ENV)
