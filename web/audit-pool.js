// The audit on the scan's worker pool (scan-pool.js): the measured pairs are handed out a batch
// at a time to the page's engine and its helper engines, each mounting the same Files and
// auditing the pairs it is given by name (audit_model's `names`); the rows come back as they
// finish, and the page's engine puts them in order and totals them (audit_document), which
// gives the document one audit of them all would give.
import { engine } from "./store.js";
import { nextBatch, started, workers } from "./scan-pool.js";

// Audit `tensors` ([{name, bytes}] of audit_list's measured ones) of the pair; resolves to the
// engine's reply: {document} or {error}.
export async function auditOnPool({ original, quantized, imatrix, tensors, onRow, onProgress }) {
  const queue = [...tensors];
  const totalBytes = tensors.reduce((sum, t) => sum + t.bytes, 0);
  const inFlight = new Map();
  const done = { bytes: 0, tensors: 0 };
  const rows = [];
  let failure = null;
  const start = performance.now();
  const report = () => {
    let bytes = done.bytes;
    for (const partial of inFlight.values()) bytes += partial;
    const seconds = (performance.now() - start) / 1000;
    const rate = seconds > 0 ? bytes / seconds : 0;
    onProgress({ bytes, total_bytes: totalBytes, tensors: done.tensors,
      total_tensors: tensors.length, bytes_per_second: rate,
      seconds_left: rate > 0 ? (totalBytes - bytes) / rate : null, workers: inFlight.size });
  };
  const run = async (worker, used) => {
    if (!(await started(worker))) return;
    while (queue.length && !failure) {
      const batch = nextBatch(queue);
      inFlight.set(worker, 0);
      const reply = await worker.request("audit_model", { original, quantized,
        imatrix_path: imatrix, names: batch.names }, (data) => {
        if (data.row) {
          rows.push(data.row);
          onRow(data.row);
        }
        if (data.progress) {
          inFlight.set(worker, Math.min(data.progress.bytes, batch.bytes));
          report();
        }
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
  const used = new Set();
  await Promise.all(workers().map((worker) => run(worker, used)));
  // how many engines audited some pairs: the page's e2e test reads it
  document.body.dataset.auditWorkers = String(used.size);
  if (failure) return { error: failure };
  return engine.request("audit_document", { original, quantized, rows, imatrix_path: imatrix });
}
