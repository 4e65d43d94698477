#!/usr/bin/env python3
"""Start-up times of the built page in the system Chromium, cold and warm.

For each run: navigation to a link that computes the page's worked example, then the times (from
navigation start) at which the metrics and then all four figures were on screen, read from the
page's own performance marks, and the long tasks (> 50 ms) on the main thread until then, with
the total blocking time (sum of the part of each long task beyond 50 ms).

  cold: a new browser profile per run (empty HTTP cache, no service worker), localhost; the
        browser is left to finish its own start-up for 3 s before the visit.
  warm: one persistent profile, visited once first; then each run is a new visit, either of the
        same link (the page shows the result it saved while Python starts) or of the link with
        one more value (nothing saved applies: the time of the engine itself).
The time at which the engine was ready is reported too, and which of the two gave the result.

The worker's phases are printed as durations: numpy (loading its wheel), quantcalc (unpacking
and importing the engine) and their ratio. With `--against DIR` a second build (a copy of an
earlier dist/) is served beside this one and each kind of visit alternates between the two, so a
change's before and after are measured in one run on the same machine state.

    python3 bench/startup.py [--runs 5] [--only cold|warm] [--against /tmp/dist-before]
"""

import argparse
import json
import statistics
import sys
import tempfile
import threading
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import build  # noqa: E402

QUERY = ("?name=example&calibration=custom&range_min=-1.5&range_max=1.5&values="
         "-1.25,-0.92,-0.51,-0.10,0,0.14,0.37,0.79,1.12,1.46")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SETTLE_MS = 3000
# Injected before any page script (Playwright init scripts are not subject to the page's CSP).
LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push([e.startTime, e.duration]);
}).observe({ type: "longtask", buffered: true });
"""


def measure(page, url):
    phases = {}

    def on_console(message):
        if message.text.startswith("quantcalc worker phases"):
            phases.update(json.loads(message.text.split(":", 1)[1]))
    page.on("console", on_console)
    page.goto(url)
    page.wait_for_selector("[data-figure=transfer] img", timeout=180_000)
    page.wait_for_selector("#figures-status:empty", state="attached", timeout=60_000)
    marks = page.evaluate("""() => ({
        metrics: performance.getEntriesByName('quantcalc:metrics')[0]?.startTime,
        first: performance.getEntriesByName('quantcalc:first-figure')[0]?.startTime,
        figures: performance.getEntriesByName('quantcalc:figures')[0]?.startTime,
        ready: performance.getEntriesByName('quantcalc:engine-ready')[0]?.startTime,
        origin: document.querySelector('#results').dataset.origin,
        workerCreated: performance.getEntriesByName('quantcalc:worker-created')[0]?.startTime,
        html: performance.getEntriesByType('navigation')[0].responseEnd,
        tasks: window.__longTasks })""")
    end = marks["figures"]
    tasks = [(start, duration) for start, duration in marks["tasks"] if start < end]
    return {"metrics": marks["metrics"] / 1000, "first": marks["first"] / 1000,
            "figures": end / 1000, "phases": phases, "origin": marks["origin"],
            "html": marks["html"] / 1000, "worker_created": marks["workerCreated"] / 1000,
            # the engine may still be starting when a saved result is on screen
            "engine_ready": page.evaluate("""async () => {
                const ready = () => performance.getEntriesByName('quantcalc:engine-ready')[0];
                while (!ready()) await new Promise((r) => setTimeout(r, 20));
                return ready().startTime; }""") / 1000,
            "longest_task_ms": max((d for _, d in tasks), default=0.0),
            "tbt_ms": sum(max(0.0, d - 50) for _, d in tasks), "long_tasks": len(tasks),
            "task_list": tasks}


def run_cold(playwright, url, runs):
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as profile:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path="/usr/bin/chromium", args=ARGS)
            context.add_init_script(LONG_TASKS)
            page = context.new_page()
            # a first visit in a browser that is already running, not one still launching
            page.wait_for_timeout(SETTLE_MS)
            results.append(measure(page, url))
            context.close()
    return results


def run_warm(playwright, url, runs, same_values):
    with tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", args=ARGS)
        context.add_init_script(LONG_TASKS)
        page = context.new_page()
        measure(page, url)  # the first visit fills the caches and installs the service worker
        page.wait_for_selector("#offline-status[data-state=ready]", timeout=180_000)
        page.close()
        results = []
        for run in range(runs):
            page = context.new_page()
            # new values on each visit: nothing saved applies, the engine computes them
            results.append(measure(page, url if same_values else f"{url},0.{run + 1}"))
            page.close()
        context.close()
    return results


def report(label, results):
    def median(key):
        return statistics.median(r[key] for r in results)
    print(f"{label}: metrics {median('metrics'):.2f} s, first figure {median('first'):.2f} s, "
          f"all figures {median('figures'):.2f} s, engine ready {median('engine_ready'):.2f} s, "
          f"longest main-thread task {median('longest_task_ms'):.0f} ms, "
          f"total blocking time {median('tbt_ms'):.0f} ms (medians of {len(results)})")
    for r in results:
        print(f"    metrics {r['metrics']:.2f} s  first figure {r['first']:.2f} s  "
              f"figures {r['figures']:.2f} s  "
              f"long tasks {r['long_tasks']}  longest {r['longest_task_ms']:.0f} ms  "
              f"TBT {r['tbt_ms']:.0f} ms  page loaded {r['html']:.2f} s  "
              f"worker created {r['worker_created']:.2f} s  engine ready {r['engine_ready']:.2f} s  "
              f"result: {r['origin']}")
        if r["task_list"]:
            print("      long tasks (start s, ms): " + ", ".join(
                f"{start / 1000:.2f} s {duration:.0f} ms" for start, duration in r["task_list"]))
    names = [name for name in results[0]["phases"]]
    if names:
        print("    worker phases, ms from the worker's start (median): " + ", ".join(
            f"{name} {statistics.median(r['phases'].get(name, float('nan')) for r in results):.0f}"
            for name in names))
    spans = [phase_spans(r["phases"]) for r in results]
    if all(spans):
        numpy_ms = statistics.median(s[0] for s in spans)
        engine_ms = statistics.median(s[1] for s in spans)
        print(f"    phase durations (median): numpy {numpy_ms:.0f} ms, quantcalc {engine_ms:.0f} ms,"
              f" quantcalc / numpy {statistics.median(s[1] / s[0] for s in spans):.2f}")


def phase_spans(phases):
    """(numpy ms, quantcalc ms) from the worker's phase marks: each phase lasts until the next
    one starts (numpy -> quantcalc -> ready), or None when a mark is missing."""
    try:
        return (phases["quantcalc"] - phases["numpy"], phases["ready"] - phases["quantcalc"])
    except (KeyError, TypeError):
        return None


def serve(directory):
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(build.Handler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/{QUERY}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=["cold", "warm"], help="run one kind of visit")
    parser.add_argument("--against", metavar="DIR", help="an earlier build's dist/ to measure "
                        "in the same run, visit for visit")
    args = parser.parse_args()
    builds = [("this build", build.build())]
    if args.against:
        builds.append((f"against {args.against}", Path(args.against)))
    servers = [(label, *serve(directory)) for label, directory in builds]
    kinds = []
    if args.only != "warm":
        kinds.append(("cold", lambda pw, url: run_cold(pw, url, 1)))
    if args.only != "cold":
        kinds.append(("warm, same link (its saved result)",
                      lambda pw, url: run_warm(pw, url, 1, True)))
        kinds.append(("warm, new values (computed)", lambda pw, url: run_warm(pw, url, 1, False)))
    with sync_playwright() as playwright:
        for kind, run in kinds:
            results = {label: [] for label, _, _ in servers}
            for _ in range(args.runs):  # in turns, so drift in the host's speed hits both alike
                for label, _, url in servers:
                    results[label] += run(playwright, url)
            for label, _, _ in servers:
                report(f"{kind} [{label}]", results[label])
    for _, server, _ in servers:
        server.shutdown()


if __name__ == "__main__":
    main()
