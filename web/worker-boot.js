// The worker's start-up: Pyodide, numpy and the quantcalc package, in small named phases (as
// jupyterlite's pyodide-kernel does), each of which can fail on its own so the page shows which
// one; and matplotlib later, when the page asks for it. Pyodide lives in pyodide/ at the top of
// the site; this file is served from app/<build>/.
import { loadPyodide } from "../../pyodide/pyodide.mjs";
import { MSG } from "./protocol.js";

const here = (path) => new URL(path, import.meta.url).href;
const SITE_PACKAGES = "/lib/python3.12/site-packages";
export const runtime = { pyodide: null, api: null }; // set once start-up is done
let matplotlibLoading = null;
// build.py's bytecode.json: the compiled stdlib, and each package's __pycache__ archive
let bytecode = null;
const compiledPackages = new Set();

// Each phase's start is a performance mark in the worker; the page gets the times with "ready".
// Every file start-up fetches is counted as it arrives (resource timing), so the page can show
// the bytes loaded of the total build.py wrote into bytecode.json.
const startUp = { phase: "runtime", text: "", loaded: 0, total: null, observer: null };

function progress(phase, text) {
  performance.mark(`quantcalc:${phase}`);
  Object.assign(startUp, { phase, text });
  postMessage({ type: MSG.progress, phase, text, loaded: startUp.loaded,
    total: startUp.total });
}

function countBootBytes() {
  if (typeof PerformanceObserver === "undefined") return;
  startUp.observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) startUp.loaded += entry.encodedBodySize || 0;
    postMessage({ type: MSG.progress, phase: startUp.phase, text: startUp.text,
      loaded: startUp.loaded, total: startUp.total });
  });
  startUp.observer.observe({ type: "resource", buffered: true });
}

function phaseTimes() {
  return Object.fromEntries(performance.getEntriesByType("mark")
    .filter((m) => m.name.startsWith("quantcalc:"))
    .map((m) => [m.name.slice(10), Math.round(m.startTime)]));
}

// Pyodide 0.27 only warns and then waits forever when its wasm is missing or served with the
// wrong MIME type; a HEAD request in parallel turns both into an immediate, named failure.
async function checkWasm() {
  const url = here("../../pyodide/pyodide.asm.wasm");
  const response = await fetch(url, { method: "HEAD" });
  if (!response.ok) throw new Error(`pyodide.asm.wasm: HTTP ${response.status}`);
  const type = response.headers.get("Content-Type") || "";
  if (!type.startsWith("application/wasm")) {
    throw new Error(`pyodide.asm.wasm is served as "${type}"; the server must send ` +
      "application/wasm");
  }
}

async function fetchOk(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url.split("/").pop()}: HTTP ${response.status}`);
  return response;
}

const fetchBytes = async (url) => (await fetchOk(url)).arrayBuffer();

async function startRuntime() {
  countBootBytes();
  progress("runtime", "Starting Python (Pyodide 0.27.7)…");
  bytecode = await (await fetchOk(here("./bytecode.json"))).json();
  startUp.total = bytecode.boot_bytes;
  [, runtime.pyodide] = await Promise.all([
    checkWasm(),
    loadPyodide({ indexURL: here("../../pyodide/"), fullStdLib: false,
      stdLibURL: here(`../../pyodide/${bytecode.stdlib}`) }),
  ]);
}

// Load Pyodide packages, then put their compiled modules (build.py) beside their sources before
// anything imports them: importing numpy from bytecode takes a third of the time of compiling it.
async function loadPackages(names) {
  const { pyodide } = runtime;
  const archive = (name) => fetchBytes(here(`../../pyodide/${bytecode.packages[name]}`));
  const early = new Map(names.map((name) => [name, archive(name)])); // while the wheels load
  await pyodide.loadPackage(names, { checkIntegrity: true, messageCallback: () => {} });
  const loaded = Object.keys(pyodide.loadedPackages)
    .filter((name) => bytecode.packages[name] && !compiledPackages.has(name));
  const archives = await Promise.all(loaded.map((name) => early.get(name) ?? archive(name)));
  loaded.forEach((name, i) => {
    pyodide.unpackArchive(archives[i], "zip", { extractDir: SITE_PACKAGES });
    compiledPackages.add(name);
  });
}

let engineArchive = null; // quantcalc.zip, fetched while numpy loads

async function loadNumpy() {
  progress("numpy", "Loading numpy…");
  engineArchive = fetchBytes(here("./quantcalc.zip"));
  engineArchive.catch(() => {}); // a failed fetch is reported where it is awaited
  await loadPackages(["numpy"]);
  // importing numpy is part of loading it (about 150-200 ms of its own): done here, the
  // quantcalc phase measures quantcalc alone
  runtime.pyodide.runPython("import numpy");
}

async function installQuantcalc() {
  progress("quantcalc", "Loading the quantcalc engine…");
  runtime.pyodide.unpackArchive(await (engineArchive ?? fetchBytes(here("./quantcalc.zip"))),
    "zip", { extractDir: SITE_PACKAGES });
  performance.mark("quantcalc:engine-unpacked"); // the rest of the phase is Python's imports
  runtime.api = runtime.pyodide.pyimport("quantcalc.api");
  // the calculator is what every visit needs first: its import belongs to this phase (scan,
  // plan, importance matrices and llama.cpp's searches load when first used)
  runtime.pyodide.pyimport("quantcalc.api.calculator").destroy();
}

// Figures are drawn only after matplotlib is in; numbers never wait for it.
export function loadMatplotlib(theme) {
  matplotlibLoading ??= loadPackages(["matplotlib"])
    .then(() => {
      performance.mark("quantcalc:matplotlib-loaded");
      const prepare = runtime.api.prepare_figures;
      try { // import it now rather than on the first figure
        prepare.callKwargs({ theme: theme ?? null }).destroy();
      } finally {
        prepare.destroy();
      }
      performance.mark("quantcalc:matplotlib-imported");
      postMessage({ type: MSG.figuresReady, phases: phaseTimes() });
    });
  return matplotlibLoading;
}

export async function boot() {
  try {
    await startRuntime();
    await loadNumpy();
    await installQuantcalc();
    startUp.observer?.disconnect();
    progress("ready", "Ready.");
    postMessage({ type: MSG.ready, phases: phaseTimes() });
    // matplotlib waits for the page's "load-figures", sent after the requests it had waiting:
    // unpacking its wheels here would hold up the first numbers by a few hundred ms.
  } catch (error) {
    postMessage({ type: MSG.bootFailed, message: String(error && error.message || error) });
  }
}
