"""Let matplotlib reuse the font list Pyodide ships instead of rebuilding it on every page load.

Pyodide's matplotlib 3.8.4 reads its font cache from `site-packages/matplotlib/fontlist.json`,
but the file in the 0.27.7 wheel says `_version` 390 (a newer matplotlib's) where 3.8.4 expects
330, so matplotlib rescans every font (about a second in the browser) at each import. It was also
made on a Mac: besides matplotlib's own fonts (paths relative to mpl-data, same fields in 3.8.4)
it lists macOS system fonts that do not exist in Pyodide. Keeping the entries whose font file
exists, which is what a rescan in Pyodide finds, and writing 3.8.4's version before matplotlib is
imported skips the rescan. In CPython the cache lives in MPLCONFIGDIR and there is no such file:
this does nothing.
"""

import importlib.util
import json
import re
from pathlib import Path


def repair_matplotlib_font_list() -> bool:
    """Fix the shipped font list's version if its fonts all exist; True when it was fixed."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return False
    package = Path(spec.submodule_search_locations[0])
    font_list = package / "fontlist.json"
    source = package / "font_manager.py"
    if not font_list.is_file() or not source.is_file():
        return False
    match = re.search(r"class FontManager\b.*?__version__ = (\d+)", source.read_text(), re.S)
    try:
        data = json.loads(font_list.read_text())
    except (OSError, ValueError):
        return False
    if match is None or data.get("_version") == int(match.group(1)):
        return False
    data_dir = package / "mpl-data"
    for key in ("ttflist", "afmlist"):
        data[key] = [e for e in data.get(key, [])
                     if not Path(e.get("fname", "/")).is_absolute()
                     and (data_dir / e["fname"]).is_file()]
    if not any(e.get("name") == "DejaVu Sans" for e in data["ttflist"]):
        return False  # not matplotlib's own fonts: let matplotlib rebuild the list
    data["_version"] = int(match.group(1))
    font_list.write_text(json.dumps(data))
    return True
