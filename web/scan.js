// Model scan: the user's checkpoint files (picked, or a folder) are mounted in the worker and
// read there a slab at a time; every tensor is measured under each chosen format. Rows arrive as
// they finish; the table sorts and filters them; a row opens its tensor in the calculator. The
// page keeps the scan document (it survives a restarted worker and, saved, a reload); figures
// and reports are made from it by the engine.
import { $, $$, engine } from "./store.js";
import { formatBytes, useCheckpointTensor } from "./files.js";
import { applyForm, DEFAULTS, form } from "./form.js";
import { formatNumber } from "./results.js";
import { clearFigures, showFigure } from "./figures.js";
import { saveBlob } from "./downloads.js";
import * as saved from "./scan-saved.js";
import { usePlannerScan } from "./planner.js";
import { cancelScan, scanOnPool } from "./scan-pool.js";

const hooks = globalThis.quantcalcTestHooks ?? {};
const SHOWN_ROWS = 300;   // table rows built at once; filters narrow the rest
const RENDER_EVERY_MS = 250;
const CHECKPOINT_FILE = /\.(safetensors|gguf|npz|npy|json)$/i;
const COLUMNS = [
  // key, heading, value of a (tensor, result) pair, how to show it
  ["name", "Tensor", (t) => t.name],
  ["layer", "Layer", (t) => t.layer],
  ["role", "Role", (t) => t.role],
  ["shape", "Shape", (t) => t.shape.join("×")],
  ["dtype", "Stored", (t) => t.dtype],
  ["parameters", "Parameters", (t) => t.parameters],
  ["format", "Format", (t, r) => r?.format ?? ""],
  ["bits_per_value", "Bits/value", (t, r) => r?.bits_per_value],
  ["sqnr_db", "SQNR (dB)", (t, r) => r?.sqnr_db],
  ["rel_rmse", "Rel. RMSE", (t, r) => r?.rel_rmse],
  ["max_abs_error", "Max error", (t, r) => r?.max_abs_error],
  ["clip_rate", "Clip rate", (t, r) => r?.clip_rate],
  ["amax_over_std", "amax/std", (t) => t.amax_over_std],
  ["kurtosis", "Kurtosis", (t) => t.kurtosis],
  ["beyond_6_sigma", "Beyond 6σ", (t) => t.beyond_6_sigma],
  ["worst_channel", "Worst channel", (t) => t.worst_channel
    ? `${t.worst_channel} (×${Number(t.worst_channel_ratio.toPrecision(3))})` : null],
  ["notes", "Notes", (t, r) => [...t.notes, ...(r?.error ? [r.error] : []),
    ...(r?.notes ?? [])].join("; ")],
];
const PERCENT = new Set(["clip_rate", "beyond_6_sigma"]);

const scan = {
  files: null,        // {id, files: [File]} of the checkpoint chosen now
  scanned: null,      // {id, files} the rows shown were read from (null: restored from storage)
  rows: [],           // tensors done, as the engine sent them
  formats: [],        // labels, in the order of each row's results
  specs: [],
  doc: null,          // the finished document
  sort: { key: "sqnr_db", ascending: true },
  running: null,
};
let nextScanId = 1;
let presets = {};
let renderTimer = null;

// ---------------------------------------------------------------- choosing files and formats
function scanError(field, message) {
  const node = $(`#error-scan-${field}`);
  node.textContent = message;
  node.hidden = !message;
}

function takeFiles(list) {
  scanError("files", "");
  const files = [...list].filter((file) => CHECKPOINT_FILE.test(file.name)
    || /\.(bin|pt|pth|ckpt|pkl)$/i.test(file.name));
  const names = new Set();
  for (const file of files) {
    if (names.has(file.name)) {
      scanError("files", `Two files are named ${file.name}; choose the files of one checkpoint.`);
      return;
    }
    names.add(file.name);
  }
  if (files.length === 0) {
    scanError("files", "No .safetensors, .gguf, .npz or .npy files among those chosen.");
    return;
  }
  const data = files.filter((f) => !/\.json$/i.test(f.name));
  const total = files.reduce((sum, f) => sum + f.size, 0);
  scan.files = { id: `s${nextScanId++}`, files };
  $("#scan-files-info").textContent = `${data.length} file${data.length === 1 ? "" : "s"} ` +
    `(${formatBytes(total)})` + (files.length > data.length ? " and an index" : "") +
    ": read in place, a slab at a time; nothing is uploaded.";
  $("#scan-start").disabled = engine.state !== "ready";
}

// Dropped files, or every file inside dropped folders (read through the entries API).
async function droppedFiles(transfer) {
  const entries = [...transfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (entries.length === 0) return [...transfer.files];
  const files = [];
  const walk = async (entry) => {
    if (entry.isFile) {
      files.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
      return;
    }
    const reader = entry.createReader();
    for (;;) { // readEntries answers in batches until an empty one
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (batch.length === 0) break;
      for (const child of batch) await walk(child);
    }
  };
  for (const entry of entries) await walk(entry);
  return files;
}

function wireDrop() {
  const zone = $("#scan-drop");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("qc-dragover");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("qc-dragover"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("qc-dragover");
    try {
      takeFiles(await droppedFiles(event.dataTransfer));
    } catch (error) {
      scanError("files", `The dropped folder could not be read (${error.message ?? error}); ` +
        "choose it with the folder button instead.");
    }
  });
}

export async function loadScanPresets() {
  const reply = await engine.request("compare_presets", []);
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
  if (!$("#scan-formats").value) fill();
  $("#scan-start").disabled = !scan.files;
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
  $("#scan-start").disabled = true;
  $("#scan-cancel").hidden = false;
  showProgress({ bytes: 0, total_bytes: 0, tensors: 0, total_tensors: 0, bytes_per_second: 0,
    seconds_left: null });
  const imatrix = imatrixFile ? { file_id: `${files.id}-imatrix`, file: imatrixFile } : null;
  // the tensors (and a check of the formats) first, then the workers share them out
  const listing = await engine.request("scan_list", [files, specs]);
  let reply = listing;
  if (!listing.error) {
    const failure = await scanOnPool({ files, specs, imatrix,
      wholeValues: hooks.scanWholeValues ?? null, tensors: listing.tensors,
      onRow: (row) => {
        if (scan.running !== run) return;
        scan.rows.push(row);
        if (scan.formats.length === 0) scan.formats = row.results.map((r) => r.format);
        renderSoon();
      },
      onProgress: (progress) => scan.running === run && showProgress(progress) });
    reply = failure ? { error: failure }
      : await engine.request("scan_document", [files, specs, scan.rows]);
  }
  if (scan.running !== run) return;
  scan.running = null;
  $("#scan-cancel").hidden = true;
  $("#scan-start").disabled = false;
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
    scan.doc = partialDocument();
  } else {
    scan.doc = reply.document;
    scan.formats = scan.doc.formats.map((f) => f.label);
    $("#scan-status").textContent = `Scanned ${scan.doc.tensors.length} tensors under ` +
      `${scan.formats.length} format${scan.formats.length === 1 ? "" : "s"}.`;
  }
  renderNow();
  document.body.dataset.scans = String(Number(document.body.dataset.scans || 0) + 1);
  saved.keep({ doc: scan.doc, files: files.files.map((f) => f.name) });
  $("#scan-clear").hidden = false;
  usePlannerScan(scan.doc, files.id);
  drawScanFigures();
}

// What a cancelled scan has done, in the document's shape (totals are computed by the engine).
function partialDocument() {
  return { kind: "quantcalc-scan", version: 1, files: scan.scanned.files
    .map((f) => ({ name: f.name, bytes: f.size })),
  formats: scan.formats.map((label) => ({ label, settings: {} })), tensors: scan.rows,
  totals: null, notes: ["cancelled: only the tensors done are included"] };
}

// ---------------------------------------------------------------- the table
function renderSoon() {
  if (renderTimer) return;
  renderTimer = setTimeout(renderNow, RENDER_EVERY_MS);
}

function sortValue(value) {
  if (value === "inf") return Infinity;
  if (value === "-inf") return -Infinity;
  return value;
}

function pairs() {
  const wantedFormat = $("#scan-format-filter").value;
  const role = $("#scan-role-filter").value;
  const layer = parseLayers($("#scan-layer-filter").value);
  const name = $("#scan-name-filter").value.trim().toLowerCase();
  const out = [];
  for (const tensor of scan.doc?.tensors ?? scan.rows) {
    if (role && tensor.role !== role) continue;
    if (layer && !(tensor.layer != null && layer(tensor.layer))) continue;
    if (name && !tensor.name.toLowerCase().includes(name)) continue;
    const results = tensor.results.length ? tensor.results : [null];
    results.forEach((result, index) => {
      if (wantedFormat !== "" && result && String(index) !== wantedFormat) return;
      out.push([tensor, result, index]);
    });
  }
  const column = COLUMNS.find(([key]) => key === scan.sort.key);
  const sign = scan.sort.ascending ? 1 : -1;
  return out.sort((a, b) => {
    const x = sortValue(column[2](a[0], a[1]));
    const y = sortValue(column[2](b[0], b[1]));
    if (x === y) return 0;
    if (x === null || x === undefined || x === "") return 1; // nothing to sort by: last
    if (y === null || y === undefined || y === "") return -1;
    return (x < y ? -1 : 1) * sign;
  });
}

// "3" or "10-20" -> a test of a layer number; "" -> null (all layers).
function parseLayers(text) {
  const match = text.trim().match(/^(\d+)\s*(?:[-–]\s*(\d+))?$/);
  if (!match) return null;
  const low = Number(match[1]);
  const high = match[2] === undefined ? low : Number(match[2]);
  return (n) => n >= low && n <= high;
}

function cellText(key, value) {
  if (value === null || value === undefined || value === "") return "";
  if (typeof value === "string") return value === "inf" ? "∞" : value;
  if (PERCENT.has(key)) return `${Number((value * 100).toPrecision(3))} %`;
  if (key === "bits_per_value") return value.toFixed(3);
  if (Number.isInteger(value)) return value.toLocaleString("en");
  return formatNumber(value);
}

function renderNow() {
  clearTimeout(renderTimer);
  renderTimer = null;
  refreshFilters();
  const list = pairs();
  const body = list.slice(0, SHOWN_ROWS).map(([tensor, result, index]) => {
    const tr = document.createElement("tr");
    tr.dataset.tensor = tensor.name;
    tr.dataset.format = result?.format ?? "";
    if (tensor.high_precision) tr.classList.add("qc-kept");
    if (result?.error) tr.classList.add("qc-refused");
    for (const [key, , value] of COLUMNS) {
      const td = document.createElement("td");
      const v = value(tensor, result);
      td.dataset.metric = key;
      if (typeof v === "number" || v === "inf") td.dataset.value = String(v);
      if (key === "name") {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "qc-link-button";
        button.textContent = tensor.name;
        button.title = "Open this tensor in the calculator";
        button.disabled = !scan.scanned || !tensor.original;
        button.addEventListener("click", () => openInCalculator(tensor, index));
        td.append(button);
      } else {
        td.textContent = cellText(key, v);
      }
      tr.append(td);
    }
    return tr;
  });
  $("#scan-table tbody").replaceChildren(...body);
  const tensors = (scan.doc?.tensors ?? scan.rows).length;
  // beside the table, not its caption: a wide table scrolls, and its caption with it
  $("#scan-count").textContent = `${list.length.toLocaleString("en")} rows (tensor × format) ` +
    `of ${tensors.toLocaleString("en")} tensors` + (list.length > SHOWN_ROWS
    ? `; the first ${SHOWN_ROWS} are shown, filter to see others` : "") +
    `. Sorted by ${COLUMNS.find(([k]) => k === scan.sort.key)[1]}, ` +
    `${scan.sort.ascending ? "lowest" : "highest"} first.`;
  summarize();
}

function summarize() {
  const rows = (scan.doc?.totals ?? []).map((t) => {
    const tr = document.createElement("tr");
    tr.dataset.format = t.format;
    const cells = [t.format, t.bits_per_value == null ? "n/a" : t.bits_per_value.toFixed(3),
      formatBytes(Math.round(t.bytes)), formatNumber(t.total_error), String(t.refused)];
    tr.append(...cells.map((text) => Object.assign(document.createElement("td"), { textContent: text })));
    return tr;
  });
  $("#scan-totals-table tbody").replaceChildren(...rows);
  $("#scan-totals-table").hidden = rows.length === 0;
  $("#scan-notes").replaceChildren(...(scan.doc?.notes ?? []).map((text) =>
    Object.assign(document.createElement("li"), { textContent: text })));
}

function refreshFilters() {
  const formatChooser = $("#scan-format-filter");
  const wanted = ["", ...scan.formats.map((_, i) => String(i))];
  if ([...formatChooser.options].map((o) => o.value).join() !== wanted.join()) {
    const keep = formatChooser.value;
    formatChooser.replaceChildren(new Option("All formats", ""),
      ...scan.formats.map((label, i) => new Option(label, String(i))));
    formatChooser.value = wanted.includes(keep) ? keep : "";
  }
  const roleChooser = $("#scan-role-filter");
  const roles = [...new Set((scan.doc?.tensors ?? scan.rows).map((t) => t.role))].sort();
  if ([...roleChooser.options].length !== roles.length + 1) {
    const keep = roleChooser.value;
    roleChooser.replaceChildren(new Option("All roles", ""), ...roles.map((r) => new Option(r, r)));
    roleChooser.value = roles.includes(keep) ? keep : "";
  }
}

export function buildScanHead() {
  const tr = document.createElement("tr");
  for (const [key, heading] of COLUMNS) {
    const th = document.createElement("th");
    th.scope = "col";
    if (key === "notes") {
      th.textContent = heading;
    } else {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "qc-sort";
      button.dataset.sort = key;
      button.textContent = heading;
      button.addEventListener("click", () => {
        scan.sort = { key, ascending: scan.sort.key === key ? !scan.sort.ascending : true };
        markSorted();
        renderNow();
      });
      th.append(button);
    }
    tr.append(th);
  }
  $("#scan-table thead").replaceChildren(tr);
  markSorted();
}

function markSorted() {
  for (const button of $$("#scan-table .qc-sort")) {
    const th = button.parentElement;
    if (button.dataset.sort === scan.sort.key) {
      th.setAttribute("aria-sort", scan.sort.ascending ? "ascending" : "descending");
    } else {
      th.removeAttribute("aria-sort");
    }
  }
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
  const reply = await engine.request("scan_figures", [doc, index], (figure) => {
    if (scan.doc === doc) showFigure(figure, holder);
  });
  if (reply.error && scan.doc === doc) {
    $("#scan-download-status").textContent = `Figures failed: ${reply.error.message}`;
  }
}

async function downloadScan(kind) {
  if (!scan.doc) return;
  const note = $("#scan-download-status");
  note.textContent = kind === "pdf" ? "Preparing the PDF…" : "Preparing…";
  const reply = await engine.request("scan_export", [scan.doc, kind]);
  if (reply.error) {
    note.textContent = `Download failed: ${reply.error.message}`;
    return;
  }
  note.textContent = `Saved ${saveBlob(reply, `model_scan.${kind}`)}.`;
}

async function restoreSaved() {
  const found = await saved.load();
  if (!found || scan.rows.length || scan.running) return;
  scan.doc = found.doc;
  scan.rows = found.doc.tensors;
  scan.formats = found.doc.formats.map((f) => f.label);
  $("#scan-results").hidden = false;
  $("#scan-saved-note").textContent = `Saved from an earlier visit: a scan of ` +
    `${found.files.slice(0, 3).join(", ")}${found.files.length > 3 ? " …" : ""}. Choose the ` +
    "files again to open a tensor in the calculator.";
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
  Object.assign(scan, { rows: [], formats: [], doc: null, scanned: null });
  $("#scan-results").hidden = true;
  usePlannerScan(null, null);
  $("#scan-clear").hidden = true;
  $("#scan-status").textContent = "The saved scan is cleared.";
}

export function wireScan() {
  buildScanHead();
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
  restoreSaved();
}
