"""The font-list repair that spares Pyodide's matplotlib a font rescan on every page load."""

import json
import types

from quantcalc.reports import fontcache


def fake_matplotlib(tmp_path, version_in_file, entries):
    package = tmp_path / "matplotlib"
    (package / "mpl-data" / "fonts" / "ttf").mkdir(parents=True)
    (package / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf").write_bytes(b"font")
    (package / "__init__.py").write_text("")
    (package / "font_manager.py").write_text("class FontManager:\n    __version__ = 330\n")
    (package / "fontlist.json").write_text(json.dumps(
        {"_version": version_in_file, "ttflist": entries, "afmlist": []}))
    return package


def repair_in(tmp_path, monkeypatch):
    spec = types.SimpleNamespace(submodule_search_locations=[str(tmp_path / "matplotlib")])
    monkeypatch.setattr(fontcache.importlib.util, "find_spec", lambda name: spec)
    return fontcache.repair_matplotlib_font_list()


def test_keeps_existing_fonts_and_sets_the_version(tmp_path, monkeypatch):
    entries = [{"fname": "fonts/ttf/DejaVuSans.ttf", "name": "DejaVu Sans"},
               {"fname": "/System/Library/Fonts/Impact.ttf", "name": "Impact"},
               {"fname": "fonts/ttf/Missing.ttf", "name": "Missing"}]
    package = fake_matplotlib(tmp_path, 390, entries)
    assert repair_in(tmp_path, monkeypatch)
    data = json.loads((package / "fontlist.json").read_text())
    assert data["_version"] == 330
    assert [e["name"] for e in data["ttflist"]] == ["DejaVu Sans"]


def test_leaves_a_current_or_foreign_list_alone(tmp_path, monkeypatch):
    package = fake_matplotlib(tmp_path, 330, [{"fname": "fonts/ttf/DejaVuSans.ttf",
                                               "name": "DejaVu Sans"}])
    assert not repair_in(tmp_path, monkeypatch)
    (package / "fontlist.json").write_text(json.dumps(
        {"_version": 390, "ttflist": [{"fname": "/x/Other.ttf", "name": "Other"}]}))
    assert not repair_in(tmp_path, monkeypatch)  # no DejaVu Sans: matplotlib must rebuild
    assert json.loads((package / "fontlist.json").read_text())["_version"] == 390


def test_does_nothing_in_cpython():
    assert fontcache.repair_matplotlib_font_list() is False
