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
export function workers() {
  while (helpers.length < poolSize() - 1) helpers.push(new Engine({ figures: false }));
  return [engine, ...helpers.slice(0, poolSize() - 1)];
}

export function cancelScan() {
  for (const worker of [engine, ...helpers]) worker.cancel();
}

// Resolves true when the worker is ready, false when it could not start.
export const started = (worker) => (worker.state === "ready" ? Promise.resolve(true)
  : Promise.race([worker.next("ready").then(() => true), worker.next("failed").then(() => false)]));

export function nextBatch(queue) {
  const batch = [queue.shift()];
  let bytes = batch[0].bytes;
  while (queue.length && bytes + queue[0].bytes <= BATCH_BYTES) {
    bytes += queue[0].bytes;
    batch.push(queue.shift());
  }
  return { names: batch.map((t) => t.name), bytes, count: batch.length };
}

// Scan `tensors` ([{name, bytes}] in file order) on the pool; returns null, or the first error.
// `estimate` ({db, seed}, or null for exact results) goes to every worker's scan_model: each
// tensor's sample is drawn from the seed alone, so the rows are those of one scan of them all.
export async function scanOnPool({ files, specs, imatrix, wholeValues, estimate = null, tensors,
  onRow, onProgress }) {
  const queue = [...tensors];
  const totalBytes = tensors.reduce((sum, t) => sum + t.bytes, 0);
  const inFlight = new Map();
  const done = { bytes: 0, tensors: 0 };
  let memory = 0;
  let failure = null;
  const start = performance.now();
  const report = () => {
    let bytes = done.bytes;
    for (const partial of inFlight.values()) bytes += partial;
    const seconds = (performance.now() - start) / 1000;
    const rate = seconds > 0 ? bytes / seconds : 0;
    onProgress({ bytes, total_bytes: totalBytes, tensors: done.tensors,
      total_tensors: tensors.length, bytes_per_second: rate,
      seconds_left: rate > 0 ? (totalBytes - bytes) / rate : null, memory_bytes: memory,
      workers: inFlight.size });
  };
  const run = async (worker) => {
    if (!(await started(worker))) return;
    while (queue.length && !failure) {
      const batch = nextBatch(queue);
      inFlight.set(worker, 0);
      const reply = await worker.request("scan_model", { paths: files, specs,
        imatrix_path: imatrix, whole_values: wholeValues, names: batch.names,
        ...(estimate && { estimate_db: estimate.db, estimate_seed: estimate.seed }) }, (data) => {
          if (data.row) onRow(data.row);
          if (data.progress) {
            inFlight.set(worker, Math.min(data.progress.bytes, batch.bytes));
            memory = Math.max(memory, data.progress.memory_bytes ?? 0);
            report();
          }
        });
      inFlight.delete(worker);
      if (reply.error) {
        failure ??= reply.error;
        return;
      }
      done.bytes += batch.bytes;
      done.tensors += batch.count;
      report();
    }
  };
  await Promise.all(workers().map(run));
  return failure;
}
