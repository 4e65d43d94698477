"""The scheme families as modules: every registry family has its scheme, and llama.cpp's
arithmetic (formats/ggml/) is imported only once a llama.cpp format is used."""

import json
import subprocess
import sys

from quantcalc.formats import schemes
from quantcalc.schema import registry
from tests.support.command import ENV, ROOT

LOADED = """
import json, sys
import numpy as np
from quantcalc import Config
from quantcalc.engine import analysis

def ggml_modules():
    return sorted(m for m in sys.modules if m.startswith("quantcalc.formats.ggml"))

seen = {"imported": ggml_modules()}
for name in sys.argv[1:]:
    analysis.analyze(np.linspace(-1, 1, 512).reshape(2, 256), Config(format=name))
    seen[name] = ggml_modules()
print(json.dumps(seen))
"""


def ggml_modules_after(*formats):
    """{"imported": ggml modules after importing the engine, name: after analysing with it}, in
    a fresh interpreter (this one has imported everything already)."""
    done = subprocess.run([sys.executable, "-c", LOADED, *formats], capture_output=True,
                          text=True, cwd=ROOT, env=ENV, timeout=120, check=True)
    return json.loads(done.stdout)


def test_the_calculator_does_not_import_llama_cpp_until_a_llama_cpp_format_is_used():
    seen = ggml_modules_after("int", "fp8_e4m3", "nf4", "mxfp4", "nvfp4", "fp8_b128", "q4_k")
    assert seen["imported"] == []
    assert all(seen[name] == [] for name in ("int", "fp8_e4m3", "nf4", "mxfp4", "nvfp4",
                                             "fp8_b128"))
    assert {"quantcalc.formats.ggml.legacy", "quantcalc.formats.ggml.search",
            "quantcalc.formats.ggml.types"} <= set(seen["q4_k"])


def test_every_registry_family_has_a_scheme_importable_from_the_package():
    for fmt in registry.FORMATS:
        scheme = schemes.FAMILIES[fmt.family]
        assert issubclass(scheme, schemes.Scheme)
        assert getattr(schemes, scheme.__name__) is scheme
        assert scheme.__module__.startswith("quantcalc.formats.schemes.")
