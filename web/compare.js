// Compare formats: the presets' configurations, the calculator's current settings and lines the
// user types, run on the same values; a table (columns from the engine's result fields) sorted by
// bits per value, two figures, CSV and PDF.
import { $, $$, engine, newRequestId, state } from "./store.js";
import { COMPARE_KEYS, FIELD } from "./rules.js";
import { clearErrors, form, readConfig, showError } from "./form.js";
import { readSource } from "./files.js";
import { display } from "./results.js";
import { clearFigures, showFigure } from "./figures.js";
import { safeFileName, saveBlob } from "./downloads.js";

let presets = {};

// One checkbox per configuration of any ready set (each once); a ready set checks its own.
export async function loadPresets() {
  const reply = await engine.request("compare_presets");
  if (reply.error) return;
  presets = reply;
  const boxes = new Map();
  for (const preset of Object.values(reply)) {
    for (const { spec, label } of preset.configs) {
      if (boxes.has(spec)) continue;
      const id = `compare-${boxes.size}`;
      const wrapper = document.createElement("label");
      wrapper.className = "qc-check";
      wrapper.htmlFor = id;
      const box = Object.assign(document.createElement("input"), { type: "checkbox", id, value: spec });
      box.dataset.spec = spec;
      wrapper.append(box, ` ${label}`);
      boxes.set(spec, wrapper);
    }
  }
  $("#compare-configs").replaceChildren(...boxes.values());
  const chooser = $("#compare-preset");
  chooser.replaceChildren(...Object.entries(reply).map(([name, { title }]) => new Option(title, name)));
  chooser.onchange = () => checkPreset(chooser.value);
  checkPreset(chooser.value);
  $("#compare-run").disabled = false;
}

function checkPreset(name) {
  const wanted = new Set((presets[name]?.configs ?? []).map((c) => c.spec));
  for (const box of $$("#compare-configs input")) box.checked = wanted.has(box.dataset.spec);
}

function compareRequest() {
  const specs = $$("#compare-configs input:checked").map((box) => box.dataset.spec);
  if ($("#compare-current").checked) {
    const { name, ...current } = readConfig(); // the name labels the report, not a row
    specs.push(current);
  }
  specs.push(...$("#compare-extra").value.split("\n").map((l) => l.trim()).filter(Boolean));
  return { source: readSource(), specs, name: form.elements.name.value.trim() || "tensor",
    comparison_id: newRequestId() };
}

export async function runCompare() {
  clearErrors();
  const args = compareRequest();
  $("#compare-status").textContent = "Comparing…";
  $("#compare-run").disabled = true;
  try {
    const reply = await engine.request("compare", args);
    if (reply.error) {
      $("#compare-status").textContent = "";
      showError(reply.error, { fileLoaded: Boolean(state.file) });
      return;
    }
    state.compareArgs = args;
    renderComparison(reply.rows);
    $("#compare-status").textContent = `${reply.rows.length} configurations compared.`;
    const item = (text) => Object.assign(document.createElement("li"), { textContent: text });
    $("#compare-skipped").replaceChildren(
      ...reply.skipped.map(({ label, reason }) => item(`Skipped ${label}: ${reason}`)),
      ...(reply.notes ?? []).map(item));
    showChoices(reply.choices ?? []);
    drawComparisonFigures(args);
  } finally {
    $("#compare-run").disabled = false;
    document.body.dataset.comparisons = String(Number(document.body.dataset.comparisons || 0) + 1);
  }
}

// "Which format should I choose?" on the user's own values: the best row at each size.
function showChoices(picks) {
  $("#choose-waiting").hidden = picks.length > 0;
  $("#choose-picks-intro").hidden = picks.length === 0;
  $("#choose-picks").replaceChildren(...picks.map((pick) => {
    const item = document.createElement("li");
    const sqnr = pick.sqnr_db === Infinity ? "no error" : `${display("sqnr_db", pick.sqnr_db)} dB`;
    item.textContent = `Up to ${pick.budget} bits per value: ${pick.label} ` +
      `(${pick.bits_per_value.toFixed(3)} bits, ${sqnr})`;
    return item;
  }));
}

export function buildCompareHead() {
  const cells = ["Configuration", ...COMPARE_KEYS.map((key) => FIELD[key].heading), "Pareto"];
  $("#compare-table thead").replaceChildren(Object.assign(document.createElement("tr"), {}));
  $("#compare-table thead tr").append(...cells.map((text) => Object.assign(
    document.createElement("th"), { scope: "col", textContent: text })));
}

function renderComparison(rows) {
  $("#compare-results").hidden = false;
  $("#compare-table tbody").replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    if (row.pareto) tr.className = "qc-pareto";
    tr.dataset.label = row.label;
    const label = document.createElement("td");
    label.textContent = row.label;
    tr.append(label);
    for (const key of COMPARE_KEYS) {
      const td = document.createElement("td");
      td.textContent = key === "bits_per_value" ? row[key].toFixed(3) : display(key, row[key]);
      td.dataset.metric = key;
      td.dataset.value = String(row[key]);
      tr.append(td);
    }
    const pareto = document.createElement("td");
    pareto.textContent = row.pareto ? "★" : "";
    tr.append(pareto);
    return tr;
  }));
}

async function drawComparisonFigures(args) {
  const holder = $("#compare-figures");
  clearFigures(holder);
  await engine.whenFiguresReady();
  const reply = await engine.request("compare_figures", args, (figure) => {
    if (args === state.compareArgs) showFigure(figure, holder);
  });
  if (reply.error) $("#compare-status").textContent = `Figures failed: ${reply.error.message}`;
}

// the page's colour scheme changed: the comparison's figures again, in the new theme
document.addEventListener("qc-theme", () => {
  if (state.compareArgs && !$("#compare-results").hidden) drawComparisonFigures(state.compareArgs);
});

export async function downloadComparison(kind) {
  if (!state.compareArgs) return;
  const note = $("#compare-download-status");
  note.textContent = "Preparing…";
  const reply = await engine.request("compare_export", { ...state.compareArgs, kind });
  if (reply.error) {
    note.textContent = `Download failed: ${reply.error.message}`;
    return;
  }
  note.textContent = `Saved ${saveBlob(reply, `${safeFileName(state.compareArgs.name)}_comparison.${kind}`)}.`;
}
