"""The headers the page needs, as the dev server sends them and as deployable files for static
hosts (`_headers` for Netlify / Cloudflare Pages, an nginx snippet), and the dev server itself.

What must hold on any host: .wasm served as application/wasm (Pyodide can hang otherwise), a CSP
that allows only this origin and WebAssembly compilation ('wasm-unsafe-eval', never JS eval),
nosniff, and long caching only for the versioned paths (pyodide/, app/<build>/).
"""

import http.server
import os
from functools import partial
from pathlib import Path

from .common import DIST

MIME_TYPES = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
              ".json": "application/json", ".zip": "application/zip", ".whl": "application/zip",
              ".svg": "image/svg+xml", ".css": "text/css", ".html": "text/html",
              ".webmanifest": "application/manifest+json"}
CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
       "worker-src 'self'; connect-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer"}
# Pyodide's files are pinned by version and hash, and app/<build>/ changes name with every build:
# cache both for a year. index.html and sw.js are revalidated on each load so a new build shows.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
VERSIONED = ("/pyodide/", "/app/")


def cache_control(path: str) -> str:
    return IMMUTABLE if any(part in path for part in VERSIONED) else REVALIDATE


def headers_file() -> str:
    """Netlify / Cloudflare Pages `_headers`: the same headers as the dev server."""
    lines = ["/*"] + [f"  {k}: {v}" for k, v in SECURITY_HEADERS.items()]
    lines += [f"  Cache-Control: {REVALIDATE}"]
    for prefix in VERSIONED:
        lines += [f"{prefix}*", f"  Cache-Control: {IMMUTABLE}"]
    lines += ["/*.wasm", "  Content-Type: application/wasm"]
    return "\n".join(lines) + "\n"


def nginx_snippet() -> str:
    """An nginx `location` block serving dist/ with the same headers (see README)."""
    add = "\n".join(f'    add_header {k} "{v}" always;' for k, v in SECURITY_HEADERS.items())
    return f"""# quantcalc: include inside a server {{}} block; root points at dist/
types {{ application/wasm wasm; text/javascript mjs; }}
location / {{
{add}
    add_header Cache-Control "{REVALIDATE}" always;
    autoindex off;
}}
location ~ ^/(pyodide|app)/ {{
{add}
    add_header Cache-Control "{IMMUTABLE}" always;
}}
"""


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with the right MIME types, cache headers and the CSP; no directory lists."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def end_headers(self):
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Cache-Control", cache_control(self.path))
        super().end_headers()

    def list_directory(self, path):
        self.send_error(404, "No directory listing")
        return None

    def log_message(self, format, *args):
        if os.environ.get("QUANTCALC_SERVE_LOG"):
            super().log_message(format, *args)


def serve(host: str, port: int, directory: Path = DIST):
    handler = partial(Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    print(f"quantcalc is served at http://{host}:{server.server_address[1]}/  (Ctrl+C stops)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
