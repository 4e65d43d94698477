// Module worker: starts Python (worker-boot.js) and answers the page's requests by calling
// quantcalc.api by keyword. It never builds Python source text: each named argument is converted
// to Python once (the user's Files become the paths they are mounted at, worker-files.js), the
// function is called with callKwargs, and its result is copied out of the wasm heap once and
// transferred to the page.
import { CALLS, MSG, needsMatplotlib } from "./protocol.js";
import { boot, loadMatplotlib, runtime } from "./worker-boot.js";
import { fileMounts } from "./worker-files.js";

let files = null; // the mounts, once Python is running

// Python value -> plain JS value. Numbers stay numbers (inf and NaN too: a structured clone
// carries them), None becomes null (so it survives JSON: a saved scan), numpy arrays and bytes
// are copied out of the wasm heap once (getBuffer + slice) so the page owns the memory and the
// copy can be transferred, not cloned again.
function toPlain(value, transfers) {
  const { pyodide } = runtime;
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
    for (const key of value) out[key] = plainItem(value.get(key), transfers);
    return out;
  }
  if (type === "list" || type === "tuple") {
    // converted while iterating: an iterator's items are destroyed when it is exhausted
    const out = [];
    for (const item of value) out.push(plainItem(item, transfers));
    return out;
  }
  return value.toJs();
}

function plainItem(item, transfers) {
  const plain = toPlain(item, transfers);
  if (item instanceof runtime.pyodide.ffi.PyProxy) item.destroy();
  return plain;
}

// A named argument from the page, as Python takes it. A scan's `paths` come as the checkpoint's
// Files ({id, files}) and its `imatrix_path` as a File ({file_id, file}); an audit's `original`
// and `quantized` come as Files ({id, files}) each mounted in its own folder; a source's Files
// are mounted wherever they are (worker-files.js).
function toPython(name, value) {
  if (name === "paths") return runtime.pyodide.toPy(files.checkpoint(value));
  if (name === "original" || name === "quantized") {
    return runtime.pyodide.toPy(files.checkpoint(value, name));
  }
  if (name === "imatrix_path") return value ? files.file(value.file_id, value.file) : null;
  return runtime.pyodide.toPy(files.source(value));
}

// The callbacks a call gets (protocol.js's CALLS), each sending the page one partial result.
const PARTIALS = {
  figure: (send) => (name, title, svg, where) =>
    send({ name, title, svg, where: toPlain(where, []) }),
  phase: (send) => (phase, fraction) => send({ progress: { phase, fraction } }),
  row: (send) => (row) => send({ row: toPlain(row, []) }),
  // with the size of Python's memory (wasm memory only grows: the peak so far)
  scanned: (send) => (state) => send({ progress: { ...toPlain(state, []),
    memory_bytes: runtime.pyodide._module?.HEAPU8?.byteLength ?? null } }),
};

async function handle({ id, op, args = {} }) {
  const { api, pyodide } = runtime;
  if (!api) throw new Error("the engine is not ready");
  if (!Object.hasOwn(CALLS, op)) throw new Error(`unknown request ${op}`);
  if (Array.isArray(args)) throw new Error(`${op}: name its arguments ({config, source, ...})`);
  if (needsMatplotlib(op, args)) await loadMatplotlib();
  files ??= fileMounts(pyodide);
  const send = (data) => postMessage({ type: MSG.partial, id, data });
  const kwargs = Object.fromEntries(Object.entries(args)
    .map(([name, value]) => [name, toPython(name, value)]));
  for (const [name, kind] of Object.entries(CALLS[op])) kwargs[name] = PARTIALS[kind](send);
  const call = api[op];
  let result;
  try {
    result = call.callKwargs(kwargs);
  } finally {
    call.destroy();
    for (const value of Object.values(kwargs)) {
      if (value instanceof pyodide.ffi.PyProxy) value.destroy();
    }
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
    if (runtime.pyodide && isFatal(error)) {
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
