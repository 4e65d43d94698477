"""The IQ grids quantcalc decodes with are gguf-py's: the generated module
(py/quantcalc/formats/ggml/iq_grids.py) equals what tests/formats/make_iq_grids.py writes from the
installed gguf today (drift), and importing it builds no array."""

import subprocess
import sys

import pytest

from quantcalc.formats.ggml import iq_grids
from tests.formats import make_iq_grids
from tests.support.command import ENV, ROOT

gguf = pytest.importorskip("gguf", reason="gguf (llama.cpp's gguf-py) is a test dependency")


def test_the_generated_tables_are_what_the_installed_gguf_gives():
    text = make_iq_grids.TARGET.read_text(encoding="utf-8")
    assert text == make_iq_grids.source(), (
        "py/quantcalc/formats/ggml/iq_grids.py is out of date with the installed gguf: run "
        "`.venv/bin/python -m tests.formats.make_iq_grids` and review the difference")
    assert iq_grids.GGUF_PY_VERSION == make_iq_grids.data_version()


def test_every_grid_gguf_py_has_is_here_and_stored_once():
    from gguf import quants
    with_grids = {cls.qtype.name for cls in quants._type_traits.values() if cls.grid_hex}
    assert set(iq_grids.GRIDS) == with_grids == {"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S",
                                                 "IQ3_XXS", "IQ3_S"}
    assert iq_grids.GRIDS["IQ1_M"] is iq_grids.GRIDS["IQ1_S"]


def test_importing_the_tables_imports_nothing_else():
    code = ("import sys; before = set(sys.modules); import quantcalc.formats.ggml.iq_grids; "
            "print(sorted(set(sys.modules) - before))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=ENV, timeout=60, check=True)
    assert eval(done.stdout) == ["quantcalc", "quantcalc.formats", "quantcalc.formats.ggml",
                                 "quantcalc.formats.ggml.iq_grids"]
