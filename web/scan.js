// Model scan: the user's checkpoint files (picked, or a folder) are mounted in the worker and
// read there a slab at a time; every tensor is measured under each chosen format. Rows arrive as
// they finish; the table sorts and filters them; a row opens its tensor in the calculator. The
// page keeps the scan document (it survives a restarted worker and, saved, a reload); figures
// and reports are made from it by the engine. A quick estimate (scan-estimate.js) can be made
// exact afterwards for the tensors picked: they are scanned again and the engine builds the
// document again from the rows.
import { $, $$, batchedRender, engine } from "./store.js";
import { formatBytes, useCheckpointTensor, wireDropZone } from "./files.js";
import { applyForm, DEFAULTS, form } from "./form.js";
import { clearFigures, showFigure } from "./figures.js";
import { downloadReport } from "./downloads.js";
import * as saved from "./scan-saved.js";
import { usePlannerScan } from "./planner.js";
import { cancelScan, scanOnPool } from "./scan-pool.js";
import { buildTableHead, renderTable, wireShowAll, worstEstimated } from "./scan-table.js";
import { fileType, listed, takes } from "./file-types.js";
import { chooseForSize, choiceState, estimateArgs, estimateAsked, picked, restoreChoice,
  showEstimate, statusWords, updatePicked, wireEstimate } from "./scan-estimate.js";

const hooks = globalThis.quantcalcTestHooks ?? {};
const scan = {
  files: null,        // {id, files: [File]} of the checkpoint chosen now
  scanned: null,      // {id, files} the rows shown were read from (null: restored from storage)
  rows: [],           // tensors done, as the engine sent them
  formats: [],        // labels, in the order of each row's results
  specs: [],
  imatrix: null,      // {file_id, file} the scan used, or null
  doc: null,          // the finished document
  running: null,
  madeExact: 0,       // tensors of an estimated scan measured again exactly
};
let nextScanId = 1;
let presets = {};

// ---------------------------------------------------------------- choosing files and formats
function scanError(field, message) {
  const node = $(`#error-scan-${field}`);
  node.textContent = message;
  node.hidden = !message;
}

function takeFiles(list) {
  scanError("files", "");
  // what the scan reads, and what it refuses (Python says why): a folder's other files stay out
  const files = [...list].filter((file) => takes("scan", file.name));
  const names = new Set();
  for (const file of files) {
    if (names.has(file.name)) {
      scanError("files", `Two files are named ${file.name}; choose the files of one checkpoint.`);
      return;
    }
    names.add(file.name);
  }
  if (files.length === 0) {
    scanError("files", `No ${listed("scan")} files among those chosen.`);
    return;
  }
  const data = files.filter((f) => fileType(f.name).reader !== "index");
  const total = files.reduce((sum, f) => sum + f.size, 0);
  scan.files = { id: `s${nextScanId++}`, files };
  $("#scan-files-info").textContent = `${data.length} file${data.length === 1 ? "" : "s"} ` +
    `(${formatBytes(total)})` + (files.length > data.length ? " and an index" : "") +
    ": read in place, a slab at a time; nothing is uploaded.";
  $("#scan-start").disabled = engine.state !== "ready";
  chooseForSize(total);
  if (scan.doc && !scan.scanned && !scan.running && sameFiles(scan.doc.files, files)) {
    // the files of a restored scan, chosen again: its tensors open and can be made exact
    scan.scanned = scan.files;
    $("#scan-saved-note").textContent += " Its files are chosen again.";
    renderNow();
  }
}

// Whether the chosen files hold every data file a scan document names, at the same size.
const sameFiles = (named, chosen) => named.length > 0 && named.every((want) =>
  chosen.some((file) => file.name === want.name && file.size === want.bytes));


function wireDrop() {
  wireDropZone($("#scan-drop"), takeFiles, (message) => scanError("files", message));
}

export async function loadScanPresets() {
  const reply = await engine.request("compare_presets");
  if (reply.error) return;
  presets = reply;
  const chooser = $("#scan-preset");
  chooser.replaceChildren(...Object.entries(reply).map(([name, { title }]) =>
    new Option(title, name)), new Option("My own list", "custom"));
  chooser.value = "llama.cpp" in reply ? "llama.cpp" : chooser.options[0].value;
  const fill = () => {
    if (chooser.value === "custom") return;
    $("#scan-formats").value = presets[chooser.value].configs
      .map(({ spec }) => spec.replace(/^format=(\S+)$/, "$1")).join("\n");
  };
  chooser.onchange = fill;
  $("#scan-formats").addEventListener("input", () => { chooser.value = "custom"; });
  if (scan.specs.length) showSpecs(scan.specs);
  else if (!$("#scan-formats").value) fill();
  $("#scan-start").disabled = !scan.files;
}

// The formats of a restored scan in the Formats box, under their preset's name if they are one.
function showSpecs(specs) {
  const text = specs.join("\n");
  $("#scan-formats").value = text;
  const preset = Object.entries(presets).find(([, { configs }]) => configs
    .map(({ spec }) => spec.replace(/^format=(\S+)$/, "$1")).join("\n") === text);
  if ($("#scan-preset").options.length) $("#scan-preset").value = preset ? preset[0] : "custom";
}

// ---------------------------------------------------------------- running a scan
function showProgress(state) {
  const bar = $("#scan-progress");
  bar.hidden = state === null;
  if (state === null) return;
  bar.value = state.total_bytes ? state.bytes / state.total_bytes : 0;
  const left = state.seconds_left === null || state.seconds_left === undefined ? ""
    : ` · about ${clock(state.seconds_left)} left`;
  $("#scan-status").textContent = `Tensor ${state.tensors} of ${state.total_tensors} · ` +
    `${formatBytes(state.bytes)} of ${formatBytes(state.total_bytes)} · ` +
    `${formatBytes(Math.round(state.bytes_per_second))}/s${left}` +
    (state.memory_bytes ? ` · memory in use ${formatBytes(state.memory_bytes)}` : "");
  if (state.memory_bytes) {
    document.body.dataset.scanMemoryBytes = String(Math.max(state.memory_bytes,
      Number(document.body.dataset.scanMemoryBytes || 0)));
  }
}

const clock = (seconds) => {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
};

async function startScan() {
  scanError("files", "");
  scanError("formats", "");
  scanError("imatrix", "");
  const specs = $("#scan-formats").value.split("\n").map((l) => l.trim()).filter(Boolean);
  if (!scan.files) return scanError("files", "Choose the checkpoint's files or its folder.");
  if (specs.length === 0) return scanError("formats", "Enter at least one format.");
  const imatrixFile = $("#scan-imatrix").files[0];
  const files = scan.files;
  const run = {};
  Object.assign(scan, { rows: [], formats: [], specs, doc: null, scanned: files, running: run });
  $("#scan-results").hidden = false;
  $("#scan-saved-note").hidden = true;
  usePlannerScan(null, null);
  clearFigures($("#scan-figures"));
  renderSoon();
  const focused = document.activeElement === $("#scan-start");
  $("#scan-cancel").hidden = false;
  if (focused) $("#scan-cancel").focus(); // Scan is disabled while it runs: Cancel takes focus
  $("#scan-start").disabled = true;
  showProgress({ bytes: 0, total_bytes: 0, tensors: 0, total_tensors: 0, bytes_per_second: 0,
    seconds_left: null });
  const imatrix = imatrixFile ? { file_id: `${files.id}-imatrix`, file: imatrixFile } : null;
  const estimate = estimateAsked();
  Object.assign(scan, { imatrix, madeExact: 0 });
  picked.clear();
  showEstimate(null);
  // the tensors (and a check of the formats) first, then the workers share them out
  const listing = await engine.request("scan_list", { paths: files, specs });
  let reply = listing;
  if (!listing.error && scan.running === run) {
    // the tensors are known: say how many now, not when a worker first reports progress
    showProgress({ bytes: 0, total_bytes: listing.tensors.reduce((sum, t) => sum + t.bytes, 0),
      tensors: 0, total_tensors: listing.tensors.length, bytes_per_second: 0,
      seconds_left: null });
  }
  if (!listing.error) {
    const failure = await scanOnPool({ files, specs, imatrix, estimate,
      wholeValues: hooks.scanWholeValues ?? null, tensors: listing.tensors,
      onRow: (row) => {
        if (scan.running !== run) return;
        scan.rows.push(row);
        if (scan.formats.length === 0) scan.formats = row.results.map((r) => r.format);
        renderSoon();
      },
      onProgress: (progress) => scan.running === run && showProgress(progress) });
    reply = failure ? { error: failure }
      : await engine.request("scan_document", { paths: files, specs, rows: scan.rows,
        ...estimateArgs(estimate) });
  }
  if (scan.running !== run) return;
  scan.running = null;
  const refocus = document.activeElement === $("#scan-cancel");
  $("#scan-start").disabled = false;
  if (refocus) $("#scan-start").focus();
  $("#scan-cancel").hidden = true;
  showProgress(null);
  if (reply.error && reply.error.kind !== "cancelled") {
    const field = { formats: "formats", configs: "formats", imatrix: "imatrix" }[reply.error.field]
      ?? (scan.rows.length ? "formats" : "files");
    scanError(field, reply.error.message);
    $("#scan-status").textContent = "";
    if (scan.rows.length === 0) $("#scan-results").hidden = true;
    return;
  }
  if (reply.error) {
    $("#scan-status").textContent = `Cancelled after ${scan.rows.length} tensors; ` +
      "the rows done are kept.";
    useDocument(partialDocument(estimate));
  } else {
    useDocument(reply.document);
    $("#scan-status").textContent = `Scanned ${scan.doc.tensors.length} tensors under ` +
      `${scan.formats.length} format${scan.formats.length === 1 ? "" : "s"}.` +
      statusWords(scan.doc);
  }
  document.body.dataset.scans = String(Number(document.body.dataset.scans || 0) + 1);
}

// A finished, cancelled or re-measured scan's document: shown, kept, planned and drawn.
function useDocument(doc) {
  Object.assign(scan, { doc, rows: doc.tensors, formats: doc.formats.map((f) => f.label) });
  renderNow();
  saved.keep({ doc, files: scan.scanned.files.map((f) => f.name), specs: scan.specs,
    choice: choiceState(), madeExact: scan.madeExact }).then(() => { // (tests wait for it)
    document.body.dataset.scansKept = String(Number(document.body.dataset.scansKept || 0) + 1);
  });
  $("#scan-clear").hidden = false;
  // the id its files are mounted under: re-quantizing in the planner reads them again
  usePlannerScan(doc, scan.scanned.id);
  drawScanFigures();
}

// What a cancelled scan has done, in the document's shape (totals are computed by the engine).
function partialDocument(estimate) {
  return { kind: "quantcalc-scan", version: 1, files: scan.scanned.files
    .map((f) => ({ name: f.name, bytes: f.size })),
  formats: scan.formats.map((label) => ({ label, settings: {} })), tensors: scan.rows,
  totals: null, notes: ["cancelled: only the tensors done are included"],
  ...(estimate && { estimate }) };
}

// ---------------------------------------------------------------- the table
const { now: renderNow, soon: renderSoon } = batchedRender(drawTable);

function drawTable() {
  renderTable({ tensors: scan.rows, formats: scan.formats,
    totals: scan.doc?.totals ?? [], notes: scan.doc?.notes ?? [],
    canOpen: Boolean(scan.scanned), onOpen: openInCalculator, picked,
    onPick: (name, on) => {
      if (on) picked.add(name);
      else picked.delete(name);
      updatePicked();
    } });
  if (!scan.running) showEstimate(scan.doc, { madeExact: scan.madeExact, why: exactRefusal() });
}

// Why the doc's tensors cannot be measured again now, or "".
function exactRefusal() {
  if (!scan.doc?.totals) return "A cancelled scan cannot be made exact: scan again.";
  if (!scan.scanned) return "Choose the files again to make tensors exact.";
  const weighted = scan.rows.some((t) => t.results.some((r) => r.weighted_mse != null));
  if (weighted && !scan.imatrix) return "Scan again with the importance matrix to make " +
    "tensors exact.";
  return "";
}

// ---------------------------------------------------------------- from a row to the calculator
function openInCalculator(tensor, index) {
  const settings = scan.doc?.formats?.[index]?.settings ?? specSettings(scan.specs[index]);
  applyForm({ ...DEFAULTS, ...settings, name: tensor.name, values: form.elements.values.value });
  useCheckpointTensor({ scanId: scan.scanned.id, files: scan.scanned.files, tensor: tensor.name });
  form.requestSubmit();
}

function specSettings(spec = "") {
  const text = spec.includes("=") ? spec : `format=${spec}`;
  return Object.fromEntries(text.split(/[\s,]+/).filter(Boolean).map((p) => p.split("=")));
}

// ---------------------------------------------------------------- figures and reports
async function drawScanFigures() {
  const holder = $("#scan-figures");
  const doc = scan.doc;
  clearFigures(holder);
  if (!doc || doc.tensors.length === 0) return;
  await engine.whenFiguresReady();
  const index = Math.max(0, Number($("#scan-format-filter").value || 0));
  const show = (figure) => scan.doc === doc && showFigure(figure, holder);
  const reply = await engine.request("scan_figures", { document: doc, heatmap_index: index }, show);
  if (reply.error && scan.doc === doc) {
    $("#scan-download-status").textContent = `Figures failed: ${reply.error.message}`;
  }
}

document.addEventListener("qc-theme", () => { if (scan.doc && !$("#scan-results").hidden) drawScanFigures(); });

async function downloadScan(kind) {
  if (scan.doc) {
    await downloadReport("scan_export", scan.doc, kind, $("#scan-download-status"), "model_scan");
  }
}

async function restoreSaved() {
  const found = await saved.load();
  if (!found || scan.rows.length || scan.running) return;
  Object.assign(scan, { doc: found.doc, rows: found.doc.tensors, specs: found.specs ?? [],
    formats: found.doc.formats.map((f) => f.label), madeExact: found.madeExact ?? 0 });
  restoreChoice(found.choice);
  if (scan.specs.length) showSpecs(scan.specs);
  $("#scan-results").hidden = false;
  $("#scan-saved-note").textContent = `Saved from an earlier visit: a scan of ` +
    `${found.files.slice(0, 3).join(", ")}${found.files.length > 3 ? " …" : ""}. Choose the ` +
    "files again to open a tensor in the calculator" +
    (found.doc.estimate ? " or make tensors exact." : ".");
  $("#scan-saved-note").hidden = false;
  $("#scan-clear").hidden = false;
  renderNow();
  engine.whenReady().then(() => {
    drawScanFigures();
    usePlannerScan(scan.doc, "saved");
  });
}

async function clearSaved() {
  await saved.clear();
  Object.assign(scan, { rows: [], formats: [], doc: null, scanned: null, madeExact: 0 });
  picked.clear();
  $("#scan-results").hidden = true;
  usePlannerScan(null, null);
  $("#scan-clear").hidden = true;
  $("#scan-status").textContent = "The saved scan is cleared.";
}

export function wireScan() {
  buildTableHead(renderNow);
  wireShowAll(renderNow);
  wireDrop();
  $("#scan-files").addEventListener("change", (e) => e.target.files.length && takeFiles(e.target.files));
  $("#scan-folder").addEventListener("change", (e) => e.target.files.length && takeFiles(e.target.files));
  $("#scan-start").addEventListener("click", startScan);
  $("#scan-cancel").addEventListener("click", cancelScan);
  $("#scan-clear").addEventListener("click", clearSaved);
  for (const id of ["#scan-role-filter", "#scan-layer-filter", "#scan-name-filter"]) {
    $(id).addEventListener("input", renderNow);
  }
  $("#scan-format-filter").addEventListener("change", () => {
    renderNow();
    drawScanFigures();
  });
  for (const button of $$("[data-scan-download]")) {
    button.addEventListener("click", () => downloadScan(button.dataset.scanDownload));
  }
  wireEstimate(scan, { renderSoon, showProgress, useDocument, worst: worstEstimated,
    wholeValues: hooks.scanWholeValues ?? null });
  restoreSaved();
}
