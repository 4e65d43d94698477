"""The package's shape, checked: lower layers never import higher ones, and modules and
functions stay small enough to read in one sitting (docs/ARCHITECTURE.md explains the layers)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "py" / "quantcalc"
# Each subpackage's floor: a module may import quantcalc modules on its own floor or below.
FLOORS = {"errors": 0, "records": 0, "schema": 1, "formats": 2, "engine": 3, "readers": 4, "reports": 5,
          "scan": 6, "audit": 7, "plan": 8, "api": 9, "cli": 10}
TOP_LEVEL = {"__init__", "__main__"}  # the package's own door: may name anything
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def part_of(module_path: Path) -> str:
    """The first component under quantcalc/: a subpackage, or a top-level module's name."""
    return module_path.relative_to(PACKAGE).with_suffix("").parts[0]


def imported_parts(tree) -> set:
    """The quantcalc parts (subpackages or top-level modules) a module imports, anywhere in it
    (lazy imports inside functions count: they are still dependencies)."""
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "quantcalc" else \
                [f"quantcalc.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError("relative import: this package imports by absolute name")
        for name in names:
            parts = name.split(".")
            if parts[0] == "quantcalc" and len(parts) > 1 and parts[1] in FLOORS:
                found.add(parts[1])
    return found


def test_every_part_has_a_floor():
    parts = {part_of(p) for p in MODULES} - TOP_LEVEL
    assert parts <= set(FLOORS), f"give {sorted(parts - set(FLOORS))} a floor in FLOORS"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_lower_layers_never_import_higher_ones(path):
    part = part_of(path)
    if part in TOP_LEVEL:
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    higher = {other for other in imported_parts(tree) if FLOORS[other] > FLOORS[part]}
    assert not higher, f"{part}/ (floor {FLOORS[part]}) imports {sorted(higher)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_modules_and_functions_stay_small(path):
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") <= MAX_MODULE_LINES, "split it: one job per module"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"break into named steps: {', '.join(long)}"


def test_the_checks_see_a_violation():
    """The import scan finds what a module imports, lazily or not (else the test above could
    pass on nothing)."""
    tree = ast.parse("from quantcalc.scan import model_scan\n"
                     "def f():\n    from quantcalc import cli\n    import quantcalc.api.common\n")
    assert imported_parts(tree) == {"scan", "cli", "api"}
