// The page: form <-> configuration, results rendering, downloads. All computing happens in the
// worker (engine.js -> worker.js -> quantcalc.api); this file only collects input and shows output.
import { Engine } from "./engine.js";
import * as saved from "./state.js";
import * as savedResults from "./saved-results.js";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

const form = $("#calculator");
const calculateButton = $("#calculate");
const PAGE_ROWS = 50;
// Every setting the form has (the saved state's keys, less the sample values).
const FIELDS = Object.keys(saved.DEFAULTS).filter((key) => key !== "values");
const EXAMPLE = {
  name: "example", bits: "8", mode: "symmetric", narrow_range: false, rounding: "half-even",
  calibration: "custom", range_min: "-1.5", range_max: "1.5", granularity: "tensor",
  values: "-1.25, -0.92, -0.51, -0.10, 0, 0.14, 0.37, 0.79, 1.12, 1.46",
};
// One card per engine JSON key; the key is also the card's data-metric.
const METRICS = [
  ["scale", "Scale"], ["zero_point", "Zero point"], ["q_min", "q_min"], ["q_max", "q_max"],
  ["real_min", "Range min (effective)"], ["real_max", "Range max (effective)"],
  ["mse", "MSE"], ["rmse", "RMSE"], ["mae", "MAE"], ["max_abs_error", "Max |error|"],
  ["sqnr_db", "SQNR (dB)"], ["rel_rmse", "Relative RMSE"], ["clip_count", "Clipped values"],
  ["clip_rate", "Clip rate"], ["uniform_noise_mse", "Predicted MSE (scale²/12)"],
  ["bits_per_value", "Bits per value (with scales)"],
];

const pageParams = new URLSearchParams(location.search);
const EMBED = pageParams.get("embed") === "1";
if (EMBED) document.documentElement.classList.add("qc-embed");

const state = {
  file: null,          // {name, bytes: Uint8Array}
  request: null,       // the {config, source} of the results shown, for figures and downloads
  reply: null,         // the engine's reply for it, kept with its figures once they are drawn
  perValue: null,
  page: 0,
  figuresWanted: false,
};

// ---------------------------------------------------------------- engine and its status
// ?boot_timeout=MS shortens the start-up limit (used by the tests of a stuck boot).
const bootTimeoutMs = Number(pageParams.get("boot_timeout")) || undefined;
const engine = new Engine({ bootTimeoutMs });
const status = $("#engine-status");

function setReady(ready, reason) {
  calculateButton.disabled = !ready;
  $("#calculate-reason").textContent = ready ? "" : reason;
}

engine.addEventListener("progress", (event) => {
  status.textContent = event.detail.text;
  setReady(false, `Waiting for the calculator: ${event.detail.text}`);
});
engine.addEventListener("ready", () => {
  performance.mark("quantcalc:engine-ready"); // read by bench/startup.py
  status.dataset.state = "ready";
  status.textContent = "Ready. Calculations run in this page; figures load in the background.";
  $("#engine-error").hidden = true;
  setReady(true);
  if (state.pendingCalculate) {
    state.pendingCalculate = false;
    calculate();
  }
  loadPresets();
});
engine.addEventListener("figures-ready", (event) => {
  console.debug("quantcalc worker phases (ms since worker start):", JSON.stringify(event.detail.phases));
  status.textContent = "Ready. Calculations and figures run in this page.";
  if (state.figuresWanted) drawFigures();
});
engine.addEventListener("figures-failed", (event) => {
  $("#figures-status").textContent = `Figures are unavailable: ${event.detail.message}`;
});
engine.addEventListener("failed", (event) => {
  status.dataset.state = "failed";
  status.textContent = "The calculator could not start.";
  $("#engine-error-text").textContent = event.detail.message;
  $("#engine-error").hidden = false;
  setReady(false, "The calculator could not start; use Retry above.");
});
$("#engine-retry").addEventListener("click", () => {
  $("#engine-error").hidden = true;
  status.dataset.state = "booting";
  status.textContent = "Loading the calculator…";
  engine.start();
});

// ---------------------------------------------------------------- form
function updateVisibility() {
  for (const field of $$("[data-show-when]")) {
    const [name, value] = field.dataset.showWhen.split("=");
    field.hidden = form.elements[name].value !== value;
  }
  const narrow = form.elements.narrow_range;
  narrow.disabled = form.elements.mode.value !== "symmetric";
  if (narrow.disabled) narrow.checked = false;
}

// Everything the user set, as strings (and one boolean): what links and storage keep.
function readForm() {
  const fields = {};
  for (const name of [...FIELDS, "values"]) {
    const element = form.elements[name];
    fields[name] = element.type === "checkbox" ? element.checked : element.value;
  }
  return fields;
}

function applyForm(fields) {
  for (const [name, value] of Object.entries(fields)) {
    const element = form.elements[name];
    if (!element) continue;
    if (element.type === "checkbox") element.checked = value === true;
    else element.value = String(value);
  }
  updateVisibility();
}

function readConfig() {
  const config = readForm();
  delete config.values;
  for (const [key, value] of Object.entries(config)) {
    if (typeof value === "string") config[key] = value.trim();
  }
  if (config.format !== "nf4") delete config.block_size;
  if (config.calibration !== "custom") {
    delete config.range_min;
    delete config.range_max;
  }
  config.name = config.name || "tensor";
  return config;
}

function readSource() {
  if (state.file) {
    const tensor = $("#tensor").value || null;
    return { file_name: state.file.name, file_bytes: state.file.bytes, tensor };
  }
  return { text: form.elements.values.value };
}

// What the engine is asked to compute for the form as it stands.
function readRequest() {
  return { config: readConfig(), source: readSource() };
}

function clearErrors() {
  for (const element of $$(".qc-error")) {
    element.hidden = true;
    element.textContent = "";
  }
  for (const element of $$("[aria-invalid]")) element.removeAttribute("aria-invalid");
}

// Show an engine error next to the field it concerns; the user's input is left as it was.
function showError(error) {
  let field = error.field || "values";
  if (field === "values" && state.file) field = "file";
  let message = $(`#error-${field}`);
  if (!message) {
    field = state.file ? "file" : "values";
    message = $(`#error-${field}`);
  }
  message.textContent = error.message;
  message.hidden = false;
  const input = form.elements[field];
  if (input && input.setAttribute) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-errormessage", message.id);
    if (input.closest("[hidden]") === null) input.focus({ preventScroll: false });
  }
  if (error.trace) console.warn(error.trace);
}

// ---------------------------------------------------------------- files
async function takeFile(file) {
  clearErrors();
  const bytes = new Uint8Array(await file.arrayBuffer());
  state.file = { name: file.name, bytes };
  $("#file-info").textContent = `Using ${file.name} (${formatBytes(bytes.length)}).`;
  $("#clear-file").hidden = false;
  const chooser = $("#tensor");
  chooser.replaceChildren();
  $(".qc-tensor-choice").hidden = true;
  if (/\.(npz|safetensors)$/i.test(file.name)) {
    await engine.whenReady();
    const reply = await engine.request("describe_file", [{ file_name: file.name, file_bytes: bytes }]);
    if (reply.error) {
      showError({ ...reply.error, field: "file" });
      return;
    }
    for (const name of reply.tensors) chooser.append(new Option(name, name));
    $(".qc-tensor-choice").hidden = reply.tensors.length < 2;
  }
}

function forgetFile() {
  state.file = null;
  form.elements.file.value = "";
  $("#file-info").textContent = "";
  $("#clear-file").hidden = true;
  $(".qc-tensor-choice").hidden = true;
  $("#tensor").replaceChildren();
}

function formatBytes(n) {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

// ---------------------------------------------------------------- calculate and render
async function calculate() {
  if (engine.state !== "ready") {
    state.pendingCalculate = true;
    showSavedResult();
    return;
  }
  clearErrors();
  const request = readRequest();
  calculateButton.disabled = true;
  $("#calculate-reason").textContent = "Calculating…";
  try {
    const reply = await engine.request("analyze", [request.config, request.source]);
    if (reply.error) {
      showError(reply.error);
      return;
    }
    state.request = request;
    state.reply = reply;
    renderResults(reply, "engine");
    rememberInUrl();
    state.figuresWanted = true;
    if (engine.figuresReady) drawFigures();
    else $("#figures-status").textContent = "Loading matplotlib to draw the figures…";
  } finally {
    setReady(engine.state === "ready", "");
    // A counter tests (and scripts embedding the page) can wait on: one more finished request.
    document.body.dataset.calculations = String(Number(document.body.dataset.calculations || 0) + 1);
  }
}

function display(key, value) {
  if (value === null || value === undefined) return "n/a";
  if (value === "inf") return "∞ (no error)";
  if (value === "-inf") return "−∞";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (key === "clip_rate") return `${(value * 100).toPrecision(4)} %`;
  if (Number.isInteger(value)) return String(value);
  if (typeof value === "number") return formatNumber(value);
  return String(value);
}

// Six significant digits; scientific notation where fixed notation would hide them.
function formatNumber(value) {
  const size = Math.abs(value);
  if (size !== 0 && (size < 1e-3 || size >= 1e6)) return value.toExponential(5);
  return Number(value.toPrecision(6)).toString();
}

function renderMetric(key, label, summary) {
  const value = summary[key];
  const card = document.createElement("div");
  card.className = "qc-metric";
  card.dataset.metric = key;
  card.dataset.value = Array.isArray(value) ? JSON.stringify(value)
    : value === null || value === undefined ? "null" : String(value);
  const name = document.createElement("div");
  name.className = "qc-metric-label";
  name.textContent = label;
  const shown = document.createElement("div");
  shown.className = "qc-metric-value";
  const detail = document.createElement("div");
  detail.className = "qc-metric-detail";
  if (Array.isArray(value)) {
    const numbers = value.map(Number);
    shown.textContent = `${value.length} ${summary.granularity === "group" ? "groups" : "channels"}`;
    detail.textContent = `from ${display(key, Math.min(...numbers))} to ${display(key, Math.max(...numbers))}`;
  } else {
    shown.textContent = display(key, value);
    if (key === "uniform_noise_mse") {
      detail.textContent = value === null ? "the grid is not uniform"
        : `measured MSE: ${display("mse", summary.mse)}`;
    }
    if (key === "real_min" && summary.range_widened) detail.textContent = "widened to include 0";
  }
  card.append(name, shown, detail);
  return card;
}

// While Python starts, show what this build computed earlier for exactly these settings and
// values (saved-results.js); the engine then has nothing to redo for them.
async function showSavedResult() {
  const request = readRequest();
  const saved = await savedResults.find(request); // null for a file: those are not kept
  if (!saved || engine.state === "ready" || state.request) return; // the engine got there first
  if (JSON.stringify(request) !== JSON.stringify(readRequest())) return; // the form changed meanwhile
  state.pendingCalculate = false;
  state.request = request;
  state.reply = saved.reply;
  renderResults(saved.reply, "saved");
  $("#figures-status").textContent = "";
  await Promise.all(saved.figures.map(showFigure));
  performance.mark("quantcalc:figures");
}

// origin: "engine" (just computed) or "saved" (restored by showSavedResult)
function renderResults(reply, origin) {
  const { summary, per_value: perValue } = reply;
  $("#results").hidden = false;
  $("#results").dataset.origin = origin;
  $("#results-origin").hidden = origin !== "saved";
  $("#results-name").textContent =
    `${summary.name} · ${summary.count} values · ${summary.bits}-bit ${summary.mode}`;
  $("#notes").replaceChildren(...summary.notes.map((note) => {
    const item = document.createElement("li");
    item.textContent = note;
    return item;
  }));
  $("#metrics").replaceChildren(...METRICS.map(([key, label]) => renderMetric(key, label, summary)));
  performance.mark("quantcalc:metrics"); // read by bench/startup.py
  state.perValue = perValue;
  state.summary = summary;
  state.page = 0;
  renderPage();
  for (const img of $$("#figures img")) URL.revokeObjectURL(img.src);
  $("#figures").replaceChildren();
  for (const button of $$("[data-download]")) button.disabled = false;
}

function renderPage() {
  const pv = state.perValue;
  const total = pv.codes.length;
  const pages = Math.max(1, Math.ceil(total / PAGE_ROWS));
  state.page = Math.min(Math.max(state.page, 0), pages - 1);
  const start = state.page * PAGE_ROWS;
  const stop = Math.min(start + PAGE_ROWS, total);
  const rows = [];
  for (let i = start; i < stop; i++) {
    const row = document.createElement("tr");
    if (pv.clipped[i]) row.className = "qc-clipped";
    for (const text of [i, pv.original[i], pv.codes[i], pv.dequantized[i], pv.error[i],
      pv.clipped[i] ? "yes" : ""]) {
      const cell = document.createElement("td");
      cell.textContent = typeof text === "number" && !Number.isInteger(text)
        ? formatNumber(text) : String(text);
      row.append(cell);
    }
    rows.push(row);
  }
  $("#per-value tbody").replaceChildren(...rows);
  const count = state.summary.count;
  $("#per-value-caption").textContent = total < count
    ? `Rows ${start + 1}–${stop} of the first ${total} of ${count} values`
    : `Rows ${start + 1}–${stop} of ${total}`;
  $("#page-info").textContent = `Page ${state.page + 1} of ${pages}`;
  $("#page-prev").disabled = state.page === 0;
  $("#page-next").disabled = state.page >= pages - 1;
}

// Add one figure ({name, title, svg}) to the results; resolves once its image is decoded.
function showFigure({ name, title, svg }) {
  const holder = $("#figures");
  const first = holder.childElementCount === 0;
  const figure = figureElement(name, title, svg, altText(name));
  holder.append(figure);
  const decoded = figure.querySelector("img").decode().catch(() => {});
  if (first) decoded.then(() => performance.mark("quantcalc:first-figure"));
  return decoded;
}

async function drawFigures() {
  state.figuresWanted = false;
  const { request, reply: result } = state;
  const current = () => request === state.request; // a newer calculation replaces these
  $("#figures-status").textContent = "Drawing figures…";
  const figures = [];
  const shown = [];
  const reply = await engine.request("figures_svg", [request.config, request.source], (figure) => {
    if (!current()) return;
    figures.push(figure);
    shown.push(showFigure(figure));
  });
  if (!current()) return;
  if (reply.error) {
    $("#figures-status").textContent = `Figures failed: ${reply.error.message}`;
    return;
  }
  await Promise.all(shown);
  $("#figures-status").textContent = "";
  performance.mark("quantcalc:figures");
  savedResults.keep(request, result, figures);
}

function figureElement(name, title, svg, description) {
  const figure = document.createElement("figure");
  figure.dataset.figure = name;
  const img = document.createElement("img");
  // An <img> of a blob keeps the SVG inert (no scripts, no styles leaking) and CSP-clean.
  img.src = URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" }));
  img.alt = `${title} for ${form.elements.name.value.trim() || "tensor"}: ${description}`;
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(img, caption);
  return figure;
}

function altText(name) {
  const s = state.summary;
  const scale = Array.isArray(s.scale) ? "per-segment scales" : `scale ${display("scale", s.scale)}`;
  switch (name) {
    case "values": return `reconstruction follows the ${s.count} original values; RMSE ${display("rmse", s.rmse)}.`;
    case "error": return `errors up to ${display("max_abs_error", s.max_abs_error)} in magnitude, ${scale}.`;
    case "histogram": return `distribution of the values with clipping bounds; ${s.clip_count} clipped.`;
    default: return `staircase from input to reconstruction with ${s.q_max - s.q_min + 1} levels, ${scale}.`;
  }
}

// ---------------------------------------------------------------- downloads
function safeFileName(name) {
  const cleaned = name.normalize("NFKD").replace(/[^\w.-]+/g, "_").replace(/^[._]+/, "")
    .slice(0, 80);
  return cleaned || "tensor";
}

async function download(kind) {
  if (!state.request) return;
  const note = $("#download-status");
  if (engine.state !== "ready") {
    note.textContent = "Waiting for the calculator to start…";
    await engine.whenReady();
  }
  note.textContent = kind === "pdf" ? "Preparing the PDF…" : "Preparing…";
  const reply = await engine.request("export", [state.request.config, state.request.source, kind]);
  if (reply.error) {
    note.textContent = `Download failed: ${reply.error.message}`;
    return;
  }
  const suffix = { csv: "_values.csv", summary_csv: "_summary.csv", pdf: "_report.pdf" }[kind];
  note.textContent = `Saved ${saveBlob(reply, safeFileName(state.request.config.name) + suffix)}.`;
}

// Hand the engine's bytes to the browser as a download; returns the file name.
function saveBlob({ bytes, mime }, fileName) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes], { type: mime }));
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  return fileName;
}

// ---------------------------------------------------------------- compare formats
async function loadPresets() {
  const reply = await engine.request("compare_presets", []);
  if (reply.error) return;
  const boxes = [];
  for (const preset of Object.values(reply)) {
    for (const { spec, label } of preset.configs) {
      const id = `compare-${boxes.length}`;
      const wrapper = document.createElement("label");
      wrapper.className = "qc-check";
      wrapper.htmlFor = id;
      const box = Object.assign(document.createElement("input"),
        { type: "checkbox", id, value: spec, checked: true });
      box.dataset.spec = spec;
      wrapper.append(box, ` ${label}`);
      boxes.push(wrapper);
    }
  }
  $("#compare-configs").replaceChildren(...boxes);
  $("#compare-run").disabled = false;
}

function compareRequest() {
  const specs = $$("#compare-configs input:checked").map((box) => box.dataset.spec);
  if ($("#compare-current").checked) {
    const { name, ...current } = readConfig(); // the name labels the report, not a row
    specs.push(current);
  }
  specs.push(...$("#compare-extra").value.split("\n").map((l) => l.trim()).filter(Boolean));
  return [readSource(), specs, form.elements.name.value.trim() || "tensor"];
}

async function runCompare() {
  clearErrors();
  const args = compareRequest();
  $("#compare-status").textContent = "Comparing…";
  $("#compare-run").disabled = true;
  try {
    const reply = await engine.request("compare", args);
    if (reply.error) {
      $("#compare-status").textContent = "";
      showError(reply.error);
      return;
    }
    state.compareArgs = args;
    renderComparison(reply.rows);
    $("#compare-status").textContent = `${reply.rows.length} configurations compared.`;
    drawComparisonFigures(args);
  } finally {
    $("#compare-run").disabled = false;
    document.body.dataset.comparisons = String(Number(document.body.dataset.comparisons || 0) + 1);
  }
}

function renderComparison(rows) {
  $("#compare-results").hidden = false;
  $("#compare-table tbody").replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    if (row.pareto) tr.className = "qc-pareto";
    tr.dataset.label = row.label;
    const cells = [row.label, row.bits_per_value.toFixed(3), display("sqnr_db", row.sqnr_db),
      display("rmse", row.rmse), display("rel_rmse", row.rel_rmse),
      display("max_abs_error", row.max_abs_error), display("clip_rate", row.clip_rate),
      row.pareto ? "★" : ""];
    const keys = [null, "bits_per_value", "sqnr_db", "rmse", "rel_rmse", "max_abs_error",
      "clip_rate", null];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (keys[i]) {
        td.dataset.metric = keys[i];
        td.dataset.value = String(row[keys[i]]);
      }
      tr.append(td);
    });
    return tr;
  }));
}

async function drawComparisonFigures(args) {
  const holder = $("#compare-figures");
  for (const img of $$("img", holder)) URL.revokeObjectURL(img.src);
  holder.replaceChildren();
  await engine.whenFiguresReady();
  const reply = await engine.request("compare_figures", args, ({ name, title, svg }) => {
    if (args !== state.compareArgs) return;
    holder.append(figureElement(name, title, svg,
      name === "tradeoff" ? "each configuration's SQNR against its bits per value, the Pareto "
        + "front joined" : "integer SQNR from 2 to 16 bits beside the 6.02 dB per bit line"));
  });
  if (reply.error) $("#compare-status").textContent = `Figures failed: ${reply.error.message}`;
}

async function downloadComparison(kind) {
  if (!state.compareArgs) return;
  const note = $("#compare-download-status");
  note.textContent = "Preparing…";
  const reply = await engine.request("compare_export", [...state.compareArgs, kind]);
  if (reply.error) {
    note.textContent = `Download failed: ${reply.error.message}`;
    return;
  }
  note.textContent = `Saved ${saveBlob(reply, `${safeFileName(state.compareArgs[2])}_comparison.${kind}`)}.`;
}

// ---------------------------------------------------------------- links and saved state
function linkFor(fields) {
  const { query, valuesIncluded } = saved.toQuery(fields, { embed: EMBED });
  const url = new URL(location.href);
  url.search = query;
  return { url: url.href, valuesIncluded };
}

// The address bar always holds a link to what is shown (settings, and short values).
function rememberInUrl() {
  const { url } = linkFor(readForm());
  history.replaceState(null, "", url);
}

async function copyLink() {
  const { url, valuesIncluded } = linkFor(readForm());
  const note = $("#link-status");
  try {
    await navigator.clipboard.writeText(url);
    note.textContent = "Link copied.";
  } catch {
    note.textContent = `Copy this link: ${url}`;
  }
  if (!valuesIncluded) {
    note.textContent += " The sample values are too long for a link; it carries the settings only.";
  }
}

let saveTimer = null;
function saveSoon() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => saved.save(readForm()), 250);
}

// Start-up: what was typed last time, unless a link says otherwise; a link with values computes.
function restore() {
  applyForm(saved.load());
  const link = saved.fromQuery(location.search);
  if (link.hasSettings) applyForm({ ...saved.DEFAULTS, ...link.fields });
  const problems = $("#link-problems");
  problems.replaceChildren(...link.problems.map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
  problems.hidden = link.problems.length === 0;
  if (link.fields.values) calculate();
  else if (form.elements.values.value.trim()) showSavedResult(); // a reload shows what it showed
}

// ---------------------------------------------------------------- offline (service worker)
async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  const note = $("#offline-status");
  let updateRequested = false;
  try {
    const registration = await navigator.serviceWorker.register("sw.js");
    const offerUpdate = (worker) => {
      const button = $("#update-button");
      button.hidden = false;
      note.textContent = "A new version is available.";
      button.onclick = () => {
        updateRequested = true;
        worker.postMessage({ type: "skip-waiting" });
      };
    };
    navigator.serviceWorker.addEventListener("controllerchange", () => {
      if (updateRequested) location.reload();
    });
    if (registration.waiting && navigator.serviceWorker.controller) {
      offerUpdate(registration.waiting);
    }
    registration.addEventListener("updatefound", () => {
      const worker = registration.installing;
      worker?.addEventListener("statechange", () => {
        if (worker.state === "installed" && navigator.serviceWorker.controller) {
          offerUpdate(worker);
        }
      });
    });
    await navigator.serviceWorker.ready;
    if ($("#update-button").hidden) note.textContent = "Ready for offline use.";
    note.dataset.state = "ready";
  } catch (error) {
    note.textContent = `Offline use is unavailable here (${error.message}).`;
  }
}

// ---------------------------------------------------------------- embedding
// In an iframe, tell the parent page how tall the calculator is so the frame can fit it.
function reportHeight() {
  if (window.parent === window) return;
  const send = () => window.parent.postMessage(
    { type: "quantcalc:height", height: document.documentElement.scrollHeight }, "*");
  new ResizeObserver(send).observe(document.body);
  send();
}

// ---------------------------------------------------------------- wiring
function useExample() {
  forgetFile();
  applyForm(EXAMPLE);
  saveSoon();
  calculate();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  calculate();
});
form.addEventListener("change", updateVisibility);
form.addEventListener("input", saveSoon);
form.addEventListener("change", saveSoon);
$("#copy-link").addEventListener("click", copyLink);
$("#compare-run").addEventListener("click", runCompare);
for (const button of $$("[data-compare-download]")) {
  button.addEventListener("click", () => downloadComparison(button.dataset.compareDownload));
}
form.elements.file.addEventListener("change", () => {
  const file = form.elements.file.files[0];
  if (file) takeFile(file);
});
$("#clear-file").addEventListener("click", forgetFile);
const dropzone = $("#dropzone");
dropzone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropzone.classList.add("qc-dragover");
});
dropzone.addEventListener("dragleave", () => dropzone.classList.remove("qc-dragover"));
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropzone.classList.remove("qc-dragover");
  const file = event.dataTransfer.files[0];
  if (file) takeFile(file);
});
$("#use-example").addEventListener("click", useExample);
$("#page-prev").addEventListener("click", () => { state.page -= 1; renderPage(); });
$("#page-next").addEventListener("click", () => { state.page += 1; renderPage(); });
for (const button of $$("[data-download]")) {
  button.disabled = true;
  button.addEventListener("click", () => download(button.dataset.download));
}
updateVisibility();
restore();
// The service worker's precaching (27 MB) is left until the figures are up: on a first visit it
// would otherwise compete with Pyodide's start for the same network, disk and two CPU cores.
let serviceWorkerStarted = false;
const startServiceWorker = () => {
  if (serviceWorkerStarted) return;
  serviceWorkerStarted = true;
  registerServiceWorker();
};
for (const type of ["figures-ready", "figures-failed", "failed"]) {
  engine.addEventListener(type, startServiceWorker, { once: true });
}
reportHeight();
