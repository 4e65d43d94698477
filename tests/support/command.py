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


def refused(out, *words):
    """Exit 2 and one plain line on stderr naming what is wrong (no traceback, no warning),
    containing each of `words`; the line."""
    assert out.returncode == 2, (out.returncode, out.stdout[-300:], out.stderr[-800:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quantcalc: error: "), out.stderr[-800:]
    assert "Traceback" not in out.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]
