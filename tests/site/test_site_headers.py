"""What a static host needs to serve the page, as build.py ships it, and the dev server."""

import threading
import urllib.error
import urllib.request
from functools import partial
from http.server import ThreadingHTTPServer

import pytest

from sitebuild import server


def test_the_deployable_headers_say_what_the_dev_server_sends():
    headers = server.headers_file()
    assert "Content-Security-Policy: " + server.CSP in headers
    assert "'wasm-unsafe-eval'" in server.CSP and "'unsafe-eval'" not in server.CSP
    assert "X-Content-Type-Options: nosniff" in headers
    assert "/*.wasm\n  Content-Type: application/wasm" in headers
    nginx = server.nginx_snippet()
    assert "application/wasm wasm" in nginx and "autoindex off" in nginx
    assert server.CSP in nginx


@pytest.fixture
def served(tmp_path):
    (tmp_path / "pyodide").mkdir()
    (tmp_path / "pyodide" / "x.wasm").write_bytes(b"\0asm")
    (tmp_path / "index.html").write_text("<!doctype html>")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                partial(server.Handler, directory=str(tmp_path)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_the_dev_server_lists_no_directories(served):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(served + "/pyodide/")
    assert err.value.code == 404
    with urllib.request.urlopen(served + "/pyodide/x.wasm") as response:
        assert response.headers["Content-Type"] == "application/wasm"
        assert response.headers["Content-Security-Policy"] == server.CSP
        assert "immutable" in response.headers["Cache-Control"]
    with urllib.request.urlopen(served + "/") as response:  # index.html, revalidated
        assert response.headers["Cache-Control"] == "no-cache"
