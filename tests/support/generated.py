"""The command line of the scripts that generate a module of the package from gguf-py
(tests/plan/make_gguf_names.py, tests/formats/make_iq_grids.py): write it, or with --check only
say whether the one in the tree is what gguf-py now gives (their drift tests run the same)."""

import argparse
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(description, target: Path, source, argv=None) -> int:
    """Write `source()` (the module's text) to `target`, or compare with --check."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    args = parser.parse_args(argv)
    text = source()
    if args.check:
        same = target.exists() and target.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{target} is out of date: run without --check")
        return 0 if same else 1
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target.relative_to(ROOT)} from gguf {data_version()} "
          f"({text.count(chr(10))} lines, {len(text.encode()) / 1000:.0f} kB)")
    return 0


def data_version() -> str:
    """The installed gguf-py's version: what the generated module is made from."""
    return metadata.version("gguf")
