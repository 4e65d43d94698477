"""Fixtures for end-to-end tests: a built dist/, a local static server, real Chromium.

Chromium is the system one (Debian's package): Playwright cannot download browsers here.
"""

import os
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import build  # noqa: E402

CHROMIUM = os.environ.get("QUANTCALC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BOOT_TIMEOUT_MS = 120_000


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def dist():
    return build.build()


class SubPathHandler(build.Handler):
    """build.py's handler, with the site mounted under a sub-path as on a documentation host."""

    prefix = "/"

    def translate_path(self, path):
        if not path.startswith(self.prefix):
            return "/nonexistent"
        return super().translate_path("/" + path[len(self.prefix):])


class Server:
    """dist/ served by build.py's own handler (same MIME types, cache headers and CSP).

    `directory` may be changed while serving (a new build deployed); `prefix` mounts the site
    under a sub-path.
    """

    def __init__(self, directory, prefix="/", port=0):
        self.directory = str(directory)
        server = self

        class Handler(SubPathHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=server.directory, **kwargs)

        Handler.prefix = prefix
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{prefix}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def server(dist):
    srv = Server(dist)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; run tests/run.sh (it installs it)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Watched:
    """A page plus what it did: console errors, page errors and every request's URL."""

    def __init__(self, context, base_url):
        self.context = context
        self.base_url = base_url
        self.page = context.new_page()
        self.errors, self.requests = [], []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        context.on("request", lambda r: self.requests.append(r.url))

    def open(self, query=""):
        self.page.goto(self.base_url + query)
        self.page.wait_for_selector("#engine-status[data-state=ready]", timeout=BOOT_TIMEOUT_MS)
        return self.page

    def foreign_requests(self):
        origin = urlparse(self.base_url).netloc
        return [u for u in self.requests
                if not (u.startswith(("blob:", "data:")) or urlparse(u).netloc == origin)]


def _watched(browser, server, width=1280):
    context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
    watched = Watched(context, server.url)
    return context, watched


@pytest.fixture(scope="module")
def app(browser, server):
    """One booted page shared by a module's tests (booting Pyodide takes seconds)."""
    context, watched = _watched(browser, server)
    watched.open()
    yield watched
    assert watched.errors == [], watched.errors
    assert watched.foreign_requests() == []
    context.close()


@pytest.fixture
def fresh(browser, server):
    """A new page for tests that need their own start-up."""
    context, watched = _watched(browser, server)
    yield watched
    context.close()


AXE_VERSION = "4.10.3"
AXE_SHA256 = "880970c081707360e64f34cea25ff91892f5bc95675b0776925b9709dd8a68bb"  # axe.min.js


@pytest.fixture(scope="session")
def axe_source():
    """axe-core's axe.min.js (the accessibility checker the e2e tests inject), from npm once
    into .cache/ and checked against its pinned sha256 like the build's downloads."""
    import tarfile

    from sitebuild.common import CACHE, run, verified
    tarball = CACHE / f"axe-core-{AXE_VERSION}.tgz"
    if not tarball.exists():
        CACHE.mkdir(exist_ok=True)
        run(["npm", "pack", f"axe-core@{AXE_VERSION}", "--silent"])
    with tarfile.open(tarball) as archive:
        data = archive.extractfile("package/axe.min.js").read()
    return verified("axe.min.js", data, AXE_SHA256, tarball.name).decode("utf-8")
