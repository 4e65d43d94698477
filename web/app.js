// Start-up and wiring: the engine's status, Calculate, links and the saved form. The form
// (form.js), results (results.js), figures, downloads, files, the compare view and offline use
// each live in a module of their own; all computing happens in the worker (engine.js).
import { $, $$, engine, newRequestId, state } from "./store.js";
import {
  DEFAULTS, applyForm, buildSettingsFields, clearErrors, form, readConfig, readForm, showError,
  updateStates,
} from "./form.js";
import * as saved from "./state.js";
import * as savedResults from "./saved-results.js";
import { display, fillGradeTable, renderResults, turnPage } from "./results.js";
import { SETTING } from "./rules.js";
import { drawFigures, showFigure } from "./figures.js";
import { download } from "./downloads.js";
import { forgetFile, readSource, wireFileInputs } from "./files.js";
import { buildCompareHead, downloadComparison, loadPresets, runCompare } from "./compare.js";
import { registerServiceWorker, reportHeight } from "./offline.js";
import { loadScanPresets, wireScan } from "./scan.js";
import { wireAudit } from "./audit.js";
import { wirePlanner } from "./planner.js";
import { figureTheme, wireTheme } from "./theme.js";
import { watchScrollers } from "./scroll-focus.js";
import { showConventions } from "./conventions.js";

const calculateButton = $("#calculate");
const EXAMPLE = {
  ...DEFAULTS, name: "example", calibration: "custom", range_min: "-1.5", range_max: "1.5",
  values: "-1.25, -0.92, -0.51, -0.10, 0, 0.14, 0.37, 0.79, 1.12, 1.46",
};
const EMBED = new URLSearchParams(location.search).get("embed") === "1";
if (EMBED) document.documentElement.classList.add("qc-embed");

// ---------------------------------------------------------------- engine and its status
const status = $("#engine-status");

function setReady(ready, reason) {
  calculateButton.disabled = !ready;
  $("#calculate-reason").textContent = ready ? "" : reason;
}

engine.addEventListener("progress", (event) => {
  const { text, loaded, total } = event.detail;
  status.textContent = text;
  setReady(false, `Waiting for the calculator: ${text}`);
  showBootBytes(loaded, total);
});

// The start-up's bar: bytes fetched of the total (null until bytecode.json names it).
function showBootBytes(loaded, total) {
  const bar = $("#engine-progress");
  bar.closest("p").hidden = false;
  if (!total) {
    bar.removeAttribute("value"); // indeterminate
    $("#engine-bytes").textContent = "";
    return;
  }
  bar.value = Math.min(loaded / total, 1);
  const mb = (n) => (n / 1e6).toFixed(1);
  $("#engine-bytes").textContent = `${mb(Math.min(loaded, total))} of ${mb(total)} MB`;
}
engine.addEventListener("ready", () => {
  performance.mark("quantcalc:engine-ready"); // read by bench/startup.py
  status.dataset.state = "ready";
  $("#engine-progress").closest("p").hidden = true;
  status.textContent = "Ready. Calculations run in this page; figures load in the background.";
  $("#engine-error").hidden = true;
  setReady(true);
  if (state.pendingCalculate) {
    state.pendingCalculate = false;
    calculate();
  }
  loadPresets();
  loadScanPresets();
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
// The worker died after start-up: it is restarting by itself; the form and file stay.
engine.addEventListener("restarting", (event) => {
  status.dataset.state = "booting";
  status.textContent = event.detail.message;
  // kept until the next result, while the start-up's progress replaces the status line
  $("#engine-restart-note").textContent = event.detail.message;
  $("#engine-restart-note").hidden = false;
  // state.request stays: the new worker analyses it again when its figures or a download are
  // asked for (the analysis kept under its id went with the old worker)
});
$("#engine-retry").addEventListener("click", () => {
  $("#engine-error").hidden = true;
  status.dataset.state = "booting";
  status.textContent = "Loading the calculator…";
  engine.start();
});

// ---------------------------------------------------------------- calculate
function readRequest() {
  return { id: newRequestId(), config: readConfig(), source: readSource() };
}

// The request without its id: what decides the numbers (for saved results).
const content = ({ config, source }) => ({ config, source });

// Fields a number must be typed into (an empty bit depth is an error, not a silent 8); an
// empty block size means the format's own.
function missingNumber(config) {
  for (const [key, value] of Object.entries(config)) {
    const setting = SETTING[key];
    if (value === "" && setting && (setting.kind === "int" || setting.kind === "real")
      && setting.default !== null) {
      return { field: key, message: `Enter a value for ${setting.label.toLowerCase()}.` };
    }
  }
  return null;
}

// After a refused request the results shown no longer match the form: dim them and say so.
function markStale(stale) {
  $("#results").classList.toggle("qc-stale", stale);
  $("#results-stale").hidden = !stale || $("#results").hidden;
}

function announce(summary) {
  const sqnr = summary.sqnr_db === Infinity ? "no error" : `SQNR ${display("sqnr_db", summary.sqnr_db)} dB`;
  $("#results-announce").textContent = `Results for ${summary.name}: ${sqnr}, MSE ` +
    `${display("mse", summary.mse)}, ${summary.clip_count} of ${summary.count} values clipped, ` +
    `${display("bits_per_value", summary.bits_per_value)} bits per value.`;
}

// Bring the results into view and focus their heading (not inside an embed: the parent page
// must not jump).
function revealResults() {
  if (EMBED) return;
  const heading = $("#results-title");
  heading.focus({ preventScroll: true });
  heading.scrollIntoView({ block: "start" });
}

async function calculate() {
  if (engine.state !== "ready") {
    state.pendingCalculate = true;
    showSavedResult();
    return;
  }
  clearErrors();
  const request = readRequest();
  state.latestRequest = request;
  calculateButton.disabled = true;
  $("#calculate-reason").textContent = "Calculating…";
  try {
    const missing = missingNumber(request.config);
    if (missing) {
      showError(missing);
      markStale(true);
      return;
    }
    const reply = await engine.request("analyze",
      { config: request.config, source: request.source, analysis_id: request.id },
      ({ progress }) => showProgress(progress));
    if (state.latestRequest !== request) return; // a newer Calculate supersedes this one
    if (reply.error?.kind === "cancelled") {
      $("#calculate-reason").textContent = "Cancelled.";
      return;
    }
    if (reply.error) {
      showError(reply.error, { fileLoaded: Boolean(state.file), onTry: trySettings });
      markStale(true);
      return;
    }
    state.request = request;
    state.reply = reply;
    $("#engine-restart-note").hidden = true;
    renderResults(reply, "engine");
    markStale(false);
    announce(reply.summary);
    revealResults();
    rememberInUrl();
    state.figuresWanted = true;
    if (engine.figuresReady) drawFigures();
    else $("#figures-status").textContent = "Loading matplotlib to draw the figures…";
    showConventions(request); // queued behind the figures in the worker
  } finally {
    showProgress(null);
    setReady(engine.state === "ready", $("#calculate-reason").textContent);
    // A counter tests (and scripts embedding the page) can wait on: one more finished request.
    document.body.dataset.calculations = String(Number(document.body.dataset.calculations || 0) + 1);
  }
}

const PHASES = { reading: "Reading the values…", calibrating: "Finding the range…",
  quantizing: "Quantizing…", advising: "Trying other settings for the hints…" };

// How far the analysis has come (null: done).
function showProgress(progress) {
  const bar = $("#calc-progress");
  bar.hidden = progress === null;
  if (progress === null) return;
  bar.value = progress.fraction;
  $("#calculate-reason").textContent =
    `${PHASES[progress.phase] ?? "Calculating…"} ${Math.round(progress.fraction * 100)} %`;
}

// A Cancel button for any request that takes more than a moment (long analyses, figures of a
// million values): the engine then starts afresh and the page keeps what it shows.
const CANCEL_AFTER_MS = 1500;
let cancelTimer = null;
engine.addEventListener("busy", (event) => {
  clearTimeout(cancelTimer);
  if (event.detail.pending === 0) {
    $("#cancel").hidden = true;
    return;
  }
  cancelTimer = setTimeout(() => { $("#cancel").hidden = false; }, CANCEL_AFTER_MS);
});
$("#cancel").addEventListener("click", () => engine.cancel());

// While Python starts, show what this build computed earlier for exactly these settings and
// values (saved-results.js); the engine then has nothing to redo for them.
async function showSavedResult() {
  const request = readRequest();
  const found = await savedResults.find(content(request)); // null for a file: those are not kept
  if (!found || engine.state === "ready" || state.request) return; // the engine got there first
  if (JSON.stringify(content(request)) !== JSON.stringify(content(readRequest()))) return; // the form changed meanwhile
  state.pendingCalculate = false;
  state.request = request;
  state.reply = found.reply;
  renderResults(found.reply, "saved");
  $("#figures-status").textContent = "";
  await Promise.all(found.figures.map((figure) => showFigure(figure)));
  // drawn for the other colour scheme: drawn again once matplotlib is in
  if (found.theme !== figureTheme()) state.figuresWanted = true;
  performance.mark("quantcalc:figures");
}

// ---------------------------------------------------------------- links and saved state
// embed: whether the link opens the embedded view (the address bar of an embed keeps it; a link
// someone copies goes to the full page)
function linkFor(fields, embed = EMBED) {
  const { query, valuesIncluded } = saved.toQuery(fields, { embed });
  const url = new URL(location.href);
  url.search = query;
  return { url: url.href, valuesIncluded };
}

// The address bar always holds a link to the form (settings, and short values).
function rememberInUrl() {
  history.replaceState(null, "", linkFor(readForm()).url);
}

async function copyLink() {
  const { url, valuesIncluded } = linkFor(readForm(), false);
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
  if (state.file) { // a link cannot carry a file, and the file is not sent anywhere to link to
    note.textContent += ` The loaded tensor (${state.file.name}) is not in the link: it never ` +
      "leaves this computer. Whoever opens the link gets the settings" +
      (valuesIncluded && readForm().values.trim() ? " and the typed values." : ".");
  }
  linkNoteFor = state.file;
}

// The note under "Copy link" speaks of the file loaded when it was written: gone with it.
let linkNoteFor = null;
for (const type of ["change", "click"]) { // a file chosen, dropped or cleared
  document.addEventListener(type, () => {
    if (state.file !== linkNoteFor) $("#link-status").textContent = "";
  });
}

let saveTimer = null;
function saveSoon() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => {
    rememberInUrl(); // the address bar follows the form, so a reload shows what was set
    const fields = readForm();
    const { stored, valuesKept } = saved.save(fields);
    const note = $("#values-note");
    note.hidden = valuesKept || !fields.values.trim();
    note.textContent = stored
      ? "These values are too long for this browser to keep across a reload; the settings are " +
        "kept. Load them as a file to keep them safe."
      : "This browser does not let the page keep anything (private mode or blocked storage).";
  }, 250);
}

// Start-up: what was typed last time, unless a link says otherwise; a link with values computes.
function restore() {
  const stored = saved.load();
  applyForm(stored);
  const link = saved.fromQuery(location.search);
  // a first visit finds the example's values ready to run, not a grey placeholder
  if (!Object.keys(stored).length && !link.hasSettings) {
    form.elements.values.value = EXAMPLE.values;
  }
  // a link without values (they were too long for it) keeps the values this browser kept
  if (link.hasSettings) applyForm({ ...DEFAULTS, values: stored.values ?? "", ...link.fields });
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

// ---------------------------------------------------------------- wiring
// What a refusal offers instead ("Try Q5_0"): set it in the form, keep it, calculate again.
function trySettings(settings) {
  applyForm(Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, String(v)])));
  saveSoon();
  calculate();
}

function useExample() {
  forgetFile();
  applyForm(EXAMPLE);
  saveSoon();
  calculate();
}

buildSettingsFields($("#setting-fields"));
fillGradeTable();
wireTheme(engine);
document.addEventListener("qc-theme", () => { if (state.request && state.reply) drawFigures(); });
buildCompareHead();
wireScan();
wireAudit();
wirePlanner();
watchScrollers();
form.addEventListener("submit", (event) => {
  event.preventDefault();
  calculate();
});
form.addEventListener("change", updateStates);
// Ctrl+Enter (⌘+Enter) in the values box calculates; a plain Enter there is a new line
form.elements.values.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    form.requestSubmit();
  }
});
form.addEventListener("input", saveSoon);
form.addEventListener("change", saveSoon);
$("#copy-link").addEventListener("click", copyLink);
$("#compare-run").addEventListener("click", runCompare);
for (const button of $$("[data-compare-download]")) {
  button.addEventListener("click", () => downloadComparison(button.dataset.compareDownload));
}
wireFileInputs();
$("#use-example").addEventListener("click", useExample);
$("#page-prev").addEventListener("click", () => turnPage(-1));
$("#page-next").addEventListener("click", () => turnPage(1));
for (const button of $$("[data-download]")) {
  button.disabled = true;
  button.addEventListener("click", () => download(button.dataset.download));
}
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
