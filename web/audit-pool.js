// The audit on the scan's worker pool (scan-pool.js): the measured pairs are handed out a batch
// at a time to the page's engine and its helper engines, each mounting the same Files and
// auditing the pairs it is given by name (audit_model's `names`); the rows come back as they
// finish, and the page's engine puts them in order and totals them (audit_document), which
// gives the document one audit of them all would give.
import { engine } from "./store.js";
import { onPool } from "./scan-pool.js";

// Audit `tensors` ([{name, bytes}] of audit_list's measured ones) of the pair; resolves to the
// engine's reply: {document} or {error}.
export async function auditOnPool({ original, quantized, imatrix, tensors, onRow, onProgress }) {
  const rows = [];
  const ask = (worker, batch, bytesDone) => worker.request("audit_model", { original, quantized,
    imatrix_path: imatrix, names: batch.names }, (data) => {
    if (data.row) {
      rows.push(data.row);
      onRow(data.row);
    }
    if (data.progress) bytesDone(data.progress.bytes);
  });
  const { failure, used } = await onPool(tensors, ask, onProgress);
  // how many engines audited some pairs: the page's e2e test reads it
  document.body.dataset.auditWorkers = String(used.size);
  if (failure) return { error: failure };
  return engine.request("audit_document", { original, quantized, rows, imatrix_path: imatrix });
}
