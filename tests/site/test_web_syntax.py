"""Every module of the page parses: a syntax error in the worker only shows in a browser as "the
Python worker stopped", so each file is checked by Node's parser first (Node is a build need)."""

import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"


@pytest.mark.parametrize("name", sorted(p.name for p in WEB.glob("*.js")))
def test_the_module_parses(name, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; build.py needs it too")
    module = tmp_path / (Path(name).stem + ".mjs")  # parsed as an ES module, as the page loads it
    module.write_bytes((WEB / name).read_bytes())
    checked = subprocess.run([node, "--check", str(module)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
