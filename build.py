#!/usr/bin/env python3
"""Assemble dist/ (the static site) and serve it.

    python3 build.py                 build dist/
    python3 build.py serve [--port N] [--host H]    build, then serve dist/ and print the URL

dist/ holds the page (web/), the settings schema generated from the engine, the quantcalc package
(quantcalc.zip, unpacked by the worker) and Pyodide 0.27.7: its core files and exactly the wheels
numpy and matplotlib need, every one checked against a pinned sha256. Also `_headers` and
`nginx-quantcalc.conf`: the headers the page needs, for deploying dist/ on a static host.
Needs only the standard library and the node, npm and pip clients. The steps live in sitebuild/.
"""

import argparse
import sys

from sitebuild.common import WEB, BuildError
from sitebuild.pyodide_dist import core_files
from sitebuild.server import Handler, serve
from sitebuild.site import build

# what the tests and bench/startup.py use, as build.<name>
__all__ = ["Handler", "WEB", "build", "core_files", "main", "serve"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    serve_parser = commands.add_parser("serve", help="build, then serve dist/ on localhost")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--no-build", action="store_true", help="serve dist/ as it is")
    args = parser.parse_args(argv)
    try:
        if not (args.command == "serve" and args.no_build):
            build()
    except BuildError as exc:
        print(f"build: error: {exc}", file=sys.stderr)
        return 1
    if args.command == "serve":
        serve(args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
