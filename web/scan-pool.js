// The scan's workers: the page's engine and, on a machine with more cores, helper engines that
// boot at the first scan (numpy only, no matplotlib) and stay for later ones. Tensors are handed
// out one batch at a time, so a worker that finishes early takes the next; rows and progress are
// merged here. Each worker mounts the same Files and reads its tensors by offset.
import { Engine } from "./engine.js";
import { engine } from "./store.js";

const hooks = globalThis.quantcalcTestHooks ?? {};
const MAX_WORKERS = 4;
// small tensors go several to a request (a test sets 1: one tensor per request)
const BATCH_BYTES = hooks.scanBatchBytes ?? 64 * 2 ** 20;
const helpers = [];

// One worker per core, at most four, and no more than one per 2 GB of the device's memory
// (navigator.deviceMemory, where the browser tells it): each may hold a few hundred MB.
export function poolSize() {
  if (hooks.scanWorkers) return hooks.scanWorkers;
  const cores = navigator.hardwareConcurrency ?? 2;
  const byMemory = navigator.deviceMemory ? Math.floor(navigator.deviceMemory / 2) : MAX_WORKERS;
  return Math.max(1, Math.min(cores, MAX_WORKERS, byMemory));
}

// The pool, shared with the audit (audit-pool.js), which hands out its pairs the same way.
function workers() {
  while (helpers.length < poolSize() - 1) helpers.push(new Engine({ figures: false }));
  return [engine, ...helpers.slice(0, poolSize() - 1)];
}

export function cancelScan() {
  for (const worker of [engine, ...helpers]) worker.cancel();
}

// Resolves true when the worker is ready, false when it could not start.
const started = (worker) => (worker.state === "ready" ? Promise.resolve(true)
  : Promise.race([worker.next("ready").then(() => true), worker.next("failed").then(() => false)]));

function nextBatch(queue) {
  const batch = [queue.shift()];
  let bytes = batch[0].bytes;
  while (queue.length && bytes + queue[0].bytes <= BATCH_BYTES) {
    bytes += queue[0].bytes;
    batch.push(queue.shift());
  }
  return { names: batch.map((t) => t.name), bytes, count: batch.length };
}

// Hand `tensors` ([{name, bytes}]) out a batch at a time to every worker that starts:
// `ask(worker, batch, bytesDone)` sends one batch and resolves to the engine's reply, calling
// bytesDone(n) as the batch goes; the bytes done over all workers, the rate and the time left go
// to onProgress, with `more()` merged in. Resolves to {failure, used}: the first error (or
// null) and the workers that finished a batch. The scan and the audit share it.
export async function onPool(tensors, ask, onProgress, more = () => ({})) {
  const queue = [...tensors];
  const totalBytes = tensors.reduce((sum, t) => sum + t.bytes, 0);
  const inFlight = new Map();
  const done = { bytes: 0, tensors: 0 };
  const used = new Set();
  let failure = null;
  const start = performance.now();
  const report = () => {
    let bytes = done.bytes;
    for (const partial of inFlight.values()) bytes += partial;
    const seconds = (performance.now() - start) / 1000;
    const rate = seconds > 0 ? bytes / seconds : 0;
    onProgress({ bytes, total_bytes: totalBytes, tensors: done.tensors,
      total_tensors: tensors.length, bytes_per_second: rate,
      seconds_left: rate > 0 ? (totalBytes - bytes) / rate : null, ...more(),
      workers: inFlight.size });
  };
  const run = async (worker) => {
    if (!(await started(worker))) return;
    while (queue.length && !failure) {
      const batch = nextBatch(queue);
      inFlight.set(worker, 0);
      const reply = await ask(worker, batch, (bytes) => {
        inFlight.set(worker, Math.min(bytes, batch.bytes));
        report();
      });
      inFlight.delete(worker);
      if (reply.error) {
        failure ??= reply.error;
        return;
      }
      used.add(worker);
      done.bytes += batch.bytes;
      done.tensors += batch.count;
      report();
    }
  };
  await Promise.all(workers().map(run));
  return { failure, used };
}

// Scan `tensors` ([{name, bytes}] in file order) on the pool; returns null, or the first error.
// `estimate` ({db, seed}, or null for exact results) goes to every worker's scan_model: each
// tensor's sample is drawn from the seed alone, so the rows are those of one scan of them all.
export async function scanOnPool({ files, specs, imatrix, wholeValues, estimate = null, tensors,
  onRow, onProgress }) {
  let memory = 0;
  const ask = (worker, batch, bytesDone) => worker.request("scan_model", { paths: files, specs,
    imatrix_path: imatrix, whole_values: wholeValues, names: batch.names,
    ...(estimate && { estimate_db: estimate.db, estimate_seed: estimate.seed }) }, (data) => {
    if (data.row) onRow(data.row);
    if (data.progress) {
      memory = Math.max(memory, data.progress.memory_bytes ?? 0);
      bytesDone(data.progress.bytes);
    }
  });
  const { failure } = await onPool(tensors, ask, onProgress, () => ({ memory_bytes: memory }));
  return failure;
}
