// Audit: a quantized checkpoint (GGUF, FP8, GPTQ/AWQ, compressed-tensors) against the original
// it was made from. Both models are mounted in the worker (each in its own folder) and read a
// slab at a time; the engine pairs their tensors (audit_list), measures each pair (audit_model,
// rows as they finish, progress, Cancel), and gives the document the command line's --json
// writes; figures and reports are made from it by the engine.
import { $, $$, batchedRender, engine } from "./store.js";
import { formatBytes } from "./files.js";
import { clearFigures, showFigure } from "./figures.js";
import { downloadReport } from "./downloads.js";
import { cancelScan } from "./scan-pool.js";
import { auditOnPool } from "./audit-pool.js";
import { auditError, wireSides } from "./audit-files.js";
import { buildHead, renderRows, renderTotals } from "./audit-table.js";

const audit = {
  chosen: { original: null, quantized: null }, // {id, files: [File]} of each side chosen now
  imatrix: null,      // {file_id, file} the audit used
  rows: [],
  doc: null,          // the finished document
  running: null,
};

const ready = () => audit.chosen.original && audit.chosen.quantized && !audit.running;
const enableStart = () => { $("#audit-start").disabled = !ready(); };

function showProgress(progress) {
  const bar = $("#audit-progress");
  bar.hidden = progress === null;
  if (progress === null) return;
  bar.value = progress.total_bytes ? progress.bytes / progress.total_bytes : 0;
  $("#audit-status").textContent = `Tensor ${progress.tensors} of ${progress.total_tensors} · ` +
    `${formatBytes(progress.bytes)} of ${formatBytes(progress.total_bytes)} read`;
}

function clearErrors() {
  for (const field of ["original", "quantized", "imatrix"]) auditError(field, "");
}

// An engine error at the field it concerns (the quantized side when it names none).
function showError(error) {
  const field = ["original", "quantized", "imatrix"].includes(error.field) ? error.field
    : "quantized";
  auditError(field, error.message);
  $(`#audit-${field === "imatrix" ? "imatrix" : `${field}-files`}`).focus();
}

async function startAudit() {
  clearErrors();
  const { original, quantized } = audit.chosen;
  if (!original) return auditError("original", "Choose the original model's files or folder.");
  if (!quantized) return auditError("quantized", "Choose the quantized model's files or folder.");
  const imatrixFile = $("#audit-imatrix").files[0];
  const imatrix = imatrixFile ? { file_id: `${quantized.id}-imatrix`, file: imatrixFile } : null;
  const run = {};
  Object.assign(audit, { rows: [], doc: null, imatrix, running: run });
  enableStart();
  $("#audit-cancel").hidden = false;
  $("#audit-status").textContent = "Pairing the tensors…";
  const args = { original, quantized, imatrix_path: imatrix };
  await engine.whenReady();
  const listing = await engine.request("audit_list", { original, quantized });
  let reply = listing;
  if (!listing.error) {
    const measured = listing.tensors.filter((t) => t.measured);
    if (measured.length === 0) {
      reply = { error: { field: "quantized", message: `None of the ${listing.tensors.length} ` +
        "tensors of the quantized model has a partner of the same shape in the original: " +
        "are these two sides of one model? Choose the original it was made from." } };
    } else {
      showResults(true);
      showProgress({ bytes: 0, total_bytes: measured.reduce((s, t) => s + t.bytes, 0),
        tensors: 0, total_tensors: measured.length });
      reply = await auditOnPool({ original, quantized, imatrix, tensors: measured,
        onRow: (row) => {
          if (audit.running !== run) return;
          audit.rows.push(row);
          renderSoon();
        },
        onProgress: (progress) => { if (audit.running === run) showProgress(progress); } });
    }
  }
  if (audit.running !== run) return;
  audit.running = null;
  enableStart();
  $("#audit-cancel").hidden = true;
  showProgress(null);
  if (reply.error?.kind === "cancelled") {
    $("#audit-status").textContent = `Cancelled after ${audit.rows.length} tensors; the rows ` +
      "done are shown. Audit again for the totals, figures and reports.";
    renderNow();
    return;
  }
  if (reply.error) {
    showError(reply.error);
    $("#audit-status").textContent = "";
    if (audit.rows.length === 0) showResults(false);
    return;
  }
  useDocument(reply.document);
  document.body.dataset.audits = String(Number(document.body.dataset.audits || 0) + 1);
}

function showResults(on) {
  $("#audit-results").hidden = !on;
  if (!on) return;
  renderTotals(null);
  $("#audit-downloads").hidden = true;
  clearFigures($("#audit-figures"));
  renderNow();
}

function useDocument(doc) {
  Object.assign(audit, { doc, rows: doc.tensors });
  const t = doc.totals;
  $("#audit-status").textContent = `Audited ${t.tensors_measured} of ${t.tensors} tensors` +
    (t.tensors_not_paired ? `; ${t.tensors_not_paired} not paired (the table says why).` : ".");
  $("#audit-downloads").hidden = false;
  renderNow();
  renderTotals(doc);
  drawFigures();
}

const { now: renderNow, soon: renderSoon } = batchedRender(() => renderRows(audit.rows));

async function drawFigures() {
  const holder = $("#audit-figures");
  const doc = audit.doc;
  clearFigures(holder);
  if (!doc) return;
  await engine.whenFiguresReady();
  const show = (figure) => audit.doc === doc && showFigure(figure, holder);
  const reply = await engine.request("audit_figures", { document: doc }, show);
  if (reply.error && audit.doc === doc) {
    $("#audit-download-status").textContent = `Figures failed: ${reply.error.message}`;
  }
}

document.addEventListener("qc-theme", () => { if (audit.doc) drawFigures(); });

async function downloadAudit(kind) {
  if (audit.doc) {
    await downloadReport("audit_export", audit.doc, kind, $("#audit-download-status"),
      "model_audit");
  }
}

export function wireAudit() {
  buildHead();
  wireSides(audit.chosen, enableStart);
  $("#audit-imatrix").addEventListener("change", () => auditError("imatrix", ""));
  $("#audit-start").addEventListener("click", startAudit);
  // Python cannot be interrupted: the workers are replaced (the chosen files stay chosen)
  $("#audit-cancel").addEventListener("click", cancelScan);
  for (const button of $$("[data-audit-download]")) {
    button.addEventListener("click", () => downloadAudit(button.dataset.auditDownload));
  }
}
