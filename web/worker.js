// Module worker: boots Pyodide, loads numpy and the quantcalc package, and answers requests by
// calling quantcalc.api. It never builds Python source text: it imports the module and calls its
// functions with plain data, then copies results out of the wasm heap once and transfers them.
// This file is served from app/<build>/; Pyodide lives in pyodide/ at the top of the site.
import { loadPyodide } from "../../pyodide/pyodide.mjs";
import { CALLS, MSG, REPORTS_PROGRESS, STREAMS_FIGURES } from "./protocol.js";

const here = (path) => new URL(path, import.meta.url).href;
const SITE_PACKAGES = "/lib/python3.12/site-packages";
let pyodide = null;
let api = null;
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

// Start-up in small named phases, as jupyterlite's pyodide-kernel does: each can fail on its own
// and the page shows which one.
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
  [, pyodide] = await Promise.all([
    checkWasm(),
    loadPyodide({ indexURL: here("../../pyodide/"), fullStdLib: false,
      stdLibURL: here(`../../pyodide/${bytecode.stdlib}`) }),
  ]);
}

// Load Pyodide packages, then put their compiled modules (build.py) beside their sources before
// anything imports them: importing numpy from bytecode takes a third of the time of compiling it.
async function loadPackages(names) {
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

async function loadNumpy() {
  progress("numpy", "Loading numpy…");
  await loadPackages(["numpy"]);
}

async function installQuantcalc() {
  progress("quantcalc", "Loading the quantcalc engine…");
  pyodide.unpackArchive(await fetchBytes(here("./quantcalc.zip")), "zip", {
    extractDir: SITE_PACKAGES,
  });
  api = pyodide.pyimport("quantcalc.api");
}

function loadMatplotlib(theme) {
  // Figures are drawn only after matplotlib is in; numbers never wait for it.
  matplotlibLoading ??= loadPackages(["matplotlib"])
    .then(() => {
      performance.mark("quantcalc:matplotlib-loaded");
      api.prepare_figures(theme).destroy(); // import it now rather than on the first figure
      performance.mark("quantcalc:matplotlib-imported");
      postMessage({ type: MSG.figuresReady, phases: phaseTimes() });
    });
  return matplotlibLoading;
}

async function boot() {
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

// Python value -> plain JS value. numpy arrays are copied out of the wasm heap once (getBuffer +
// slice) so the page owns the memory and the copy can be transferred, not cloned again.
function toPlain(value, transfers) {
  // Python's None arrives as undefined; null keeps it through JSON (a saved scan) and back
  if (value === undefined) return null;
  if (!(value instanceof pyodide.ffi.PyProxy)) return value;
  const type = value.type;
  if (type === "numpy.ndarray") {
    const view = value.getBuffer();
    try {
      const copy = view.data.slice();
      transfers.push(copy.buffer);
      return copy;
    } finally {
      view.release();
    }
  }
  if (type === "bytes") {
    const copy = value.toJs();
    transfers.push(copy.buffer);
    return copy;
  }
  if (type === "dict") {
    const out = {};
    for (const key of value) {
      const item = value.get(key);
      out[key] = toPlain(item, transfers);
      if (item instanceof pyodide.ffi.PyProxy) item.destroy();
    }
    return out;
  }
  if (type === "list" || type === "tuple") {
    const out = [];
    for (const item of value) {
      out.push(toPlain(item, transfers));
      if (item instanceof pyodide.ffi.PyProxy) item.destroy();
    }
    return out;
  }
  return value.toJs();
}

// Pyodide's CPython cannot seek past 2 GiB (a 32-bit file offset), so a file larger than PART
// is mounted as slices NAME.qcpart-000, -001, ... (Blob.slice reads nothing) that Python's
// readers/file_parts.py reads as one file.
const PART = 2 ** 30;
const partName = (name, k) => `${name}.qcpart-${String(k).padStart(3, "0")}`;
const partsOf = (file) => Array.from({ length: Math.ceil(file.size / PART) }, (_, k) => ({
  name: partName(file.name, k), data: file.slice(k * PART, (k + 1) * PART) }));

// The user's files are mounted, not copied: Pyodide's WORKERFS reads a File's bytes when Python
// reads them. The page names each file it loads with an id; the last few stay mounted.
const MOUNTED_FILES = 2;
const mounts = new Map(); // file id -> {dir, path}
let mountCount = 0;
function mountFile(id, file) {
  if (!mounts.has(id)) {
    const dir = `/input/${++mountCount}`;
    pyodide.FS.mkdirTree(dir);
    // a large .safetensors is read by offset: in slices, as the scan's files are
    pyodide.FS.mount(pyodide.FS.filesystems.WORKERFS, file.size > PART
      && /\.(safetensors|gguf)$/i.test(file.name) ? { blobs: partsOf(file) } : { files: [file] },
    dir);
    mounts.set(id, { dir, path: `${dir}/${file.name}` });
    while (mounts.size > MOUNTED_FILES) {
      const [oldest, { dir: old }] = mounts.entries().next().value;
      pyodide.FS.unmount(old);
      mounts.delete(oldest);
    }
  }
  return mounts.get(id).path;
}

// A scanned checkpoint's files are mounted together in one folder (an index file finds its
// shards beside it) and stay mounted while the scan is shown, so a row can be opened in the
// calculator without choosing the files again. A new scan's files replace them.
let scanMount = null; // {id, dir}
function mountCheckpoint({ id, files }) {
  if (scanMount?.id !== id) {
    if (scanMount) pyodide.FS.unmount(scanMount.dir);
    const dir = `/scan/${++mountCount}`;
    pyodide.FS.mkdirTree(dir);
    const whole = files.filter((file) => file.size <= PART);
    const blobs = files.filter((file) => file.size > PART).flatMap(partsOf);
    pyodide.FS.mount(pyodide.FS.filesystems.WORKERFS, { files: whole, blobs }, dir);
    scanMount = { id, dir };
  }
  // the folder, not the files: Python takes the index if there is one, the data files otherwise,
  // and passes over the rest of a model folder (config.json, tokenizer files, pickles)
  return [scanMount.dir];
}

// A source from the page ({file_id, file: File, tensor, imatrix?} or {text, imatrix?}) as
// quantcalc.api takes it: each File becomes the path it is mounted at.
function sourceForPython(arg) {
  if (!arg || typeof arg !== "object" || Array.isArray(arg)) return arg;
  let out = arg;
  if (arg.file instanceof File) {
    const { file, file_id: id, ...rest } = arg;
    out = { ...rest, file_name: file.name, file_path: mountFile(id, file) };
  }
  if (arg.imatrix) out = { ...out, imatrix: sourceForPython(arg.imatrix) };
  if (arg.checkpoint_files) {
    const { checkpoint_files: files, ...rest } = arg;
    out = { ...rest, checkpoint: mountCheckpoint(files) };
  }
  return out;
}

const needsMatplotlib = (op, args) => STREAMS_FIGURES.includes(op) || args.includes("pdf");

async function handle({ id, op, args = [] }) {
  if (!api) throw new Error("the engine is not ready");
  if (!CALLS.includes(op)) throw new Error(`unknown request ${op}`);
  if (needsMatplotlib(op, args)) await loadMatplotlib();
  let scanNames = null; // scan_model's tensors (all when null)
  if (op === "scan_model") {
    // scan_model(paths, specs, imatrix_path, whole_values, on_row, on_progress, names)
    const [files, specs, imatrix, wholeValues, names] = args;
    args = [mountCheckpoint(files), specs, imatrix ? sourceForPython(imatrix).file_path : null,
      wholeValues ?? null]; // null: the engine's own budget for the page
    scanNames = names ?? null;
  } else if (op === "scan_list" || op === "scan_document") {
    args = [mountCheckpoint(args[0]), ...args.slice(1)];
  }
  const pyArgs = args.map((arg) => pyodide.toPy(sourceForPython(arg)));
  if (op === "scan_model") {
    pyArgs.push((row) => postMessage({ type: MSG.partial, id, data: { row: toPlain(row, []) } }));
    // with the size of Python's memory (wasm memory only grows: the peak so far)
    pyArgs.push((state) => postMessage({ type: MSG.partial, id, data: { progress: {
      ...toPlain(state, []), memory_bytes: pyodide._module?.HEAPU8?.byteLength ?? null } } }));
    pyArgs.push(pyodide.toPy(scanNames));
  }
  if (STREAMS_FIGURES.includes(op)) {
    // each figure goes to the page as soon as it is drawn
    pyArgs.push((name, title, svg, where) => postMessage({ type: MSG.partial, id,
      data: { name, title, svg, where: toPlain(where, []) } }));
  }
  if (REPORTS_PROGRESS.includes(op)) {
    while (pyArgs.length < 3) pyArgs.push(null); // analyze(config, source, analysis_id, on_progress)
    pyArgs.push((phase, fraction) =>
      postMessage({ type: MSG.partial, id, data: { progress: { phase, fraction } } }));
  }
  let result;
  try {
    result = api[op](...pyArgs);
  } finally {
    for (const arg of pyArgs) if (arg instanceof pyodide.ffi.PyProxy) arg.destroy();
  }
  const transfers = [];
  const plain = toPlain(result, transfers);
  result.destroy();
  postMessage({ type: MSG.reply, id, result: plain }, transfers);
}

// Python cannot run any more after a fatal error (a wasm stack overflow, say): every later call
// would answer "Pyodide already fatally failed". The page then starts a new worker.
const isFatal = (error) => /fatal/i.test(String(error?.message ?? error))
  || error instanceof RangeError || error instanceof WebAssembly.RuntimeError;

self.onmessage = (event) => {
  const request = event.data;
  if (request.type === MSG.loadFigures) {
    loadMatplotlib(request.theme).catch((error) =>
      postMessage({ type: MSG.figuresFailed, message: String(error) }));
    return;
  }
  handle(request).catch((error) => {
    if (pyodide && isFatal(error)) {
      postMessage({ type: MSG.fatal, message: String(error.message || error).split("\n")[0] });
      return;
    }
    postMessage({
      type: MSG.reply, id: request.id,
      result: { error: { kind: "internal", field: "values", message: String(error.message || error) } },
    });
  });
};

boot();
