"""The documents that describe the code name what is there: every page module in
docs/ARCHITECTURE.md, every subpackage in the README's layout, every result field in the
README's list of `analyze --json` keys, every source path they write out."""

import re
from pathlib import Path

from quantcalc.schema import fields

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
ARCHITECTURE = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
PACKAGE = ROOT / "py" / "quantcalc"


def test_the_readme_lists_every_json_field():
    start = README.index("`analyze --json` has every field of")
    paragraph = README[start:README.index("\n\n", start)]
    words = set(re.findall(r"[a-z_0-9]+", paragraph))
    assert not [key for key in fields.KEYS if key not in words]


def test_the_readme_layout_names_every_subpackage():
    layout = README[README.index("## Layout"):]
    subpackages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert subpackages and not [name for name in subpackages if f"  {name}/" not in layout]


def test_the_architecture_page_names_every_layer_and_page_module():
    subpackages = [p.parent.name for p in PACKAGE.glob("*/__init__.py")]
    assert not [name for name in subpackages if f"{name}/" not in ARCHITECTURE]
    modules = sorted(p.name for p in (ROOT / "web").glob("*.js"))
    assert modules and not [name for name in modules if name not in ARCHITECTURE]


def test_every_source_path_the_documents_name_exists():
    """A path written out in full (`py/quantcalc/schema/grades.py`, `bench/startup.py`) points at a
    file: the layout moved modules once, and a stale path sends a reader nowhere."""
    named = set(re.findall(r"\b((?:py|web|bench|tests|sitebuild|docs)/[\w./-]+\.(?:py|js|md))",
                           README + ARCHITECTURE))
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert named and missing == []
