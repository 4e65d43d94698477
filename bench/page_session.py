"""The built page, served on 127.0.0.1 and open in Chromium, ready as a user finds it: the engine
started and the service worker's precache done (matplotlib in), so what a bench times next is
the work it asks for. One place for what the page benches share.

    with ready_page(accept_downloads=True) as tab:
        tab.set_input_files(...)
"""

import threading
from contextlib import contextmanager
from http.server import ThreadingHTTPServer

CHROMIUM = "/usr/bin/chromium"


@contextmanager
def ready_page(init_script=None, console_errors=False, **context_options):
    """A Playwright page of a fresh build of dist/ (build.build()), served by build.Handler on a
    free port; `init_script` runs before the page's own, `console_errors` prints the page's
    console errors as they come, `context_options` go to new_context. Everything is closed and
    the server stopped on leaving."""
    import build
    from playwright.sync_api import sync_playwright

    dist = build.build()

    class Handler(build.Handler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(dist), **kwargs)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                context = browser.new_context(**context_options)
                if init_script:
                    context.add_init_script(init_script)
                tab = context.new_page()
                if console_errors:
                    tab.on("console", lambda m: m.type == "error" and print(
                        f"  page console: {m.text}", flush=True))
                tab.goto(f"http://127.0.0.1:{httpd.server_address[1]}/")
                tab.wait_for_selector("#engine-status[data-state=ready]", timeout=120_000)
                tab.wait_for_selector("#offline-status[data-state=ready]", timeout=300_000)
                yield tab
            finally:
                browser.close()
    finally:
        httpd.shutdown()
