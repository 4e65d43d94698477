"""Markers for the whole suite: `e2e` (the built page in Chromium) and `slow` (the e2e tests,
the real model files and the heavy unit tests marked so). `pytest -m "not slow"` is the quick
run while editing; CI runs everything."""

from pathlib import Path

import pytest

SLOW_FOLDERS = ("e2e", "corpus", "realfiles")
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    for item in items:
        folder = Path(str(item.fspath)).resolve().relative_to(TESTS).parts[0]
        if folder in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)
