#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine, then run the whole suite:
# Chromium (Debian's package), a virtual environment with the pinned Python packages, a fresh
# build of dist/ (the e2e tests serve it themselves on 127.0.0.1). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ ! -x "${QUANTCALC_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "tests: installing Chromium (Debian package)"
  apt_install chromium
fi
if ! command -v npm >/dev/null; then
  echo "tests: installing npm (build.py fetches Pyodide with it)"
  apt_install npm
fi

if [ ! -x .venv/bin/python ]; then
  echo "tests: creating .venv"
  python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; python3 -m venv .venv; }
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt

.venv/bin/python build.py
exec .venv/bin/python -m pytest "$@"
