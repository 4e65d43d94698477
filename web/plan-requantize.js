// Re-quantizing a file that is already quantized (llama-quantize's --allow-requantize). The scan
// leaves such tensors unmeasured: their original values are not in the file. When the user ticks
// the choice, they are measured here on the values the file holds (dequantized) under the scan's
// formats, on the page's engine, which has the scanned files mounted since the scan; with the
// scan's other rows they make one document, as `quantcalc scan --allow-requantize` does, and the
// planner plans on it. Until the measurement is done nothing else is claimed.
import { $, engine } from "./store.js";
import { formatBytes } from "./files.js";

const state = { doc: null, scanId: null, mounted: false, run: null };
let hooks = null; // the planner's: measured(doc), plan(), source()

// The engine restarted (a cancel, a crash): the scanned files are no longer mounted in it.
engine.addEventListener("restarting", () => { state.mounted = false; });

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// Tensors stored quantized that the scan read (it has the statistics of their dequantized
// values) but measured under no format.
function quantized(doc) {
  return doc.tensors.filter((t) => t.original === false && t.results.length === 0
    && t.data_min !== null && t.data_min !== undefined);
}

// Whether the document shown has tensors re-quantizing would measure.
export function offered() {
  return Boolean(state.doc) && quantized(state.doc).length > 0;
}

// A new scan document (or null): the choice is offered for a file with quantized tensors, and
// starts unticked: re-quantizing is asked for each time, as with llama-quantize.
export function useScan(doc, scanId) {
  state.run = null; // a measurement of an earlier document is not used
  state.doc = doc;
  state.scanId = scanId;
  // the page's engine mounted this scan's files for it (a restored scan has none; a cancelled
  // scan restarted the engine)
  state.mounted = Boolean(doc) && scanId !== "saved" && Array.isArray(doc.totals)
    && !doc.interrupted;
  const rows = doc ? quantized(doc) : [];
  $("#plan-requantize-box").hidden = rows.length === 0;
  $("#plan-requantize").checked = false;
  $("#plan-requantize").disabled = false;
  showProgress(null);
  showError("");
  $("#plan-requantize-status").textContent = "";
  if (rows.length === 0) return;
  const types = {};
  for (const row of rows) types[row.dtype] = (types[row.dtype] ?? 0) + 1;
  const stored = Object.entries(types).sort((a, b) => b[1] - a[1])
    .map(([type, n]) => `${n} in ${type}`).join(", ");
  $("#plan-requantize-what").textContent = `${plural(rows.length, "tensor")} of this file ` +
    `${rows.length === 1 ? "is" : "are"} stored quantized (${stored}): the plan keeps ` +
    `${rows.length === 1 ? "it" : "them"} as stored, since the scan could measure no format on ` +
    "values whose originals are not in the file.";
}

function showError(message) {
  $("#error-plan-requantize").textContent = message;
  $("#error-plan-requantize").hidden = !message;
}

function showProgress(progress) {
  const bar = $("#plan-requantize-progress");
  bar.hidden = !progress;
  $("#plan-requantize-cancel").hidden = !progress;
  if (!progress) return;
  bar.value = progress.total_bytes ? progress.bytes / progress.total_bytes : 0;
  $("#plan-requantize-status").textContent = `Measuring the re-quantized tensors: ` +
    `${progress.tensors} of ${progress.total_tensors} · ${formatBytes(progress.bytes)} of ` +
    `${formatBytes(progress.total_bytes)}…`;
}

// The scan's formats as the scan took them ("format=int bits=8 granularity=channel"), or null.
function specsOf(doc) {
  const specs = doc.formats.map((f) => Object.entries(f.settings ?? {})
    .map(([key, value]) => `${key}=${value}`).join(" "));
  return specs.length && specs.every(Boolean) ? specs : null;
}

// Why the tensors cannot be measured here, or null.
function obstacle(doc) {
  if (doc.tensors.some((t) => t.results.some((r) => r.weighted_mse !== null
    && r.weighted_mse !== undefined))) {
    return "This scan used an importance matrix, which re-quantizing here does not get: " +
      "re-quantize on the command line (quantcalc scan FILE --allow-requantize --imatrix " +
      "IMATRIX …).";
  }
  if (!specsOf(doc)) return "This scan does not say how its formats were set: scan the file again.";
  if (!state.mounted) {
    return "Re-quantizing reads the file again, and the calculator no longer has it open (the " +
      "scan was restored from an earlier visit, or the calculator restarted since): choose the " +
      "file, scan it again, then tick this.";
  }
  return null;
}

// Measure the quantized tensors on their dequantized values; {document} with every row, or
// {error}.
async function measure(doc, scanId, run) {
  const specs = specsOf(doc);
  const paths = { id: scanId, files: [] }; // mounted under this id by the scan (worker-files.js)
  const reply = await engine.request("scan_model", { paths, specs, allow_requantize: true,
    names: quantized(doc).map((t) => t.name) },
  (data) => { if (data.progress && state.run === run) showProgress(data.progress); });
  if (reply.error) return reply;
  const measured = new Map(reply.document.tensors.map((row) => [row.name, row]));
  const rows = doc.tensors.map((row) => measured.get(row.name) ?? row);
  return engine.request("scan_document", { paths, specs, rows, allow_requantize: true });
}

async function ticked() {
  showError("");
  $("#plan-requantize-status").textContent = "";
  const { doc, key } = hooks.source();
  if (!$("#plan-requantize").checked || hooks.measuredFor(key)) {
    hooks.plan();
    return;
  }
  const why = obstacle(doc);
  if (why) {
    showError(why);
    $("#plan-requantize").checked = false;
    return;
  }
  const run = {};
  state.run = run;
  $("#plan-requantize").disabled = true;
  showProgress({ tensors: 0, total_tensors: quantized(doc).length, bytes: 0, total_bytes: 0 });
  const reply = await measure(doc, state.scanId, run);
  if (state.run !== run) return; // a new scan, or cancelled
  state.run = null;
  $("#plan-requantize").disabled = false;
  showProgress(null);
  if (reply.error) {
    $("#plan-requantize").checked = false;
    $("#plan-requantize-status").textContent = "";
    showError(reply.error.kind === "cancelled" ? "Cancelled: nothing was re-quantized." :
      `Re-quantizing could not be measured: ${reply.error.message}`);
    return;
  }
  $("#plan-requantize-status").textContent = `Measured ${plural(quantized(doc).length,
    "re-quantized tensor")} under ${plural(doc.formats.length, "format")}.`;
  hooks.measured(reply.document, key);
  hooks.plan();
}

function cancel() {
  if (!state.run) return;
  state.run = null;
  $("#plan-requantize").checked = false;
  $("#plan-requantize").disabled = false;
  showProgress(null);
  // Python cannot be interrupted: the engine is replaced (and the scanned files with it)
  engine.cancel();
  $("#plan-requantize-status").textContent = "";
  showError("Cancelled: nothing was re-quantized. The calculator restarted, so re-quantizing " +
    "now needs the file scanned again.");
}

export function wireRequantize(planner) {
  hooks = planner;
  $("#plan-requantize").addEventListener("change", ticked);
  $("#plan-requantize-cancel").addEventListener("click", cancel);
}
