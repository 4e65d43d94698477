// Bit-budget planner over the scan shown: a slider for the target size re-plans in the worker
// (the per-scan part is kept there, so a move only allocates), the figure follows, and the plan
// downloads as a recipe, CSV, PDF or llama-quantize's tensor-type file. Nothing is re-scanned.
import { $, engine } from "./store.js";
import { clearFigures, showFigure } from "./figures.js";
import { saveBlob } from "./downloads.js";
import { formatNumber } from "./results.js";
import { formatBytes } from "./files.js";

const SHOWN_ROWS = 300;
const PLAN_DELAY_MS = 120;
const FIGURE_DELAY_MS = 400;
let current = { doc: null, scanId: null, plan: null, asked: 0 };
let planTimer = null;
let figureTimer = null;

// A new scan document (finished, cancelled or restored): the planner starts at the middle of
// what the scanned formats allow.
export function usePlannerScan(doc, scanId) {
  current = { doc, scanId, plan: null, asked: 0 };
  const usable = doc && doc.tensors.some((t) => t.results.some((r) => !r.error));
  $("#planner").hidden = !usable;
  if (!usable) return;
  $("#plan-target").dataset.ready = "";
  replan({ first: true });
}

function options(first) {
  const lines = (id) => $(id).value.split("\n").map((l) => l.trim()).filter(Boolean);
  const minimum = Object.fromEntries(lines("#plan-min").map((line) => line.split("=")
    .map((part) => part.trim())));
  const bpw = first ? null : Number($("#plan-target").value);
  return { target_bpw: bpw ?? 64, keep: lines("#plan-keep"), minimum,
    weighted: $("#plan-weighted").checked };
}

function planError(message) {
  const node = $("#error-plan");
  node.textContent = message;
  node.hidden = !message;
}

async function replan({ first = false } = {}) {
  const asked = ++current.asked;
  const doc = current.doc;
  planError("");
  const reply = await engine.request("plan",
    { document: doc, options: options(first), scan_id: current.scanId });
  if (asked !== current.asked || doc !== current.doc) return; // a newer request follows
  if (reply.error) {
    planError(reply.error.message);
    return;
  }
  let plan = reply.plan;
  if (first) {
    // the first answer only gives the range: set the slider and plan at its middle
    const [low, high] = plan.range_bits_per_weight;
    const slider = $("#plan-target");
    slider.min = String(Math.ceil(low * 100) / 100);
    slider.max = String(Math.floor(high * 100) / 100);
    slider.value = String(Math.round((low + high) * 50) / 100);
    slider.dataset.ready = "1";
    return replan();
  }
  current.plan = plan;
  render(plan);
  clearTimeout(figureTimer);
  figureTimer = setTimeout(drawFigure, FIGURE_DELAY_MS);
  document.body.dataset.plans = String(Number(document.body.dataset.plans || 0) + 1);
}

function cell(text) {
  return Object.assign(document.createElement("td"), { textContent: text });
}

function render(plan) {
  $("#plan-target-value").textContent = `${Number($("#plan-target").value).toFixed(2)} bits per weight`;
  $("#plan-summary").textContent = `This plan: ${plan.bits_per_weight.toFixed(3)} bits per ` +
    `weight, ${formatBytes(Math.round(plan.bytes))}, total error ${formatNumber(plan.total_error)} ` +
    `(sum of ${plan.metric} × parameters).`;
  $("#plan-summary").dataset.bitsPerWeight = String(plan.bits_per_weight);
  const near = plan.presets.reduce((best, p) => (best === null || Math.abs(p.bits_per_weight
    - plan.bits_per_weight) < Math.abs(best.bits_per_weight - plan.bits_per_weight) ? p : best), null);
  $("#plan-verdict").textContent = near ? `At ${near.preset}'s size here ` +
    `(${near.bits_per_weight.toFixed(2)} bits per weight), the best mix's total error is ` +
    `${Math.abs(near.error_lower_percent).toFixed(1)} % ${near.error_lower_percent >= 0 ? "lower" : "higher"}` +
    (near.error_lower_db == null ? "" : ` (${near.error_lower_db.toFixed(2)} dB)`) +
    ` than ${near.preset}'s (${formatNumber(near.preset_error)} against ${formatNumber(near.plan_error)}).`
    : "Scan llama.cpp's types (the llama.cpp preset) to compare with its presets.";
  $("#plan-presets tbody").replaceChildren(...plan.presets.map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.preset = p.preset;
    tr.append(cell(p.preset), cell(p.bits_per_weight.toFixed(3)), cell(formatNumber(p.preset_error)),
      cell(formatNumber(p.plan_error)), cell(`${p.error_lower_percent.toFixed(1)} %`),
      cell(p.error_lower_db == null ? "" : `${p.error_lower_db.toFixed(2)} dB`));
    return tr;
  }));
  $("#plan-missing").textContent = plan.presets_not_priced.length
    ? `Presets not priced: they need ${plan.presets_not_priced.join(", ")} in the scan.` : "";
  $("#plan-table tbody").replaceChildren(...plan.tensors.slice(0, SHOWN_ROWS).map((row) => {
    const tr = document.createElement("tr");
    tr.dataset.tensor = row.name;
    tr.append(cell(row.name), cell(row.role), cell(row.format),
      cell((row.bits / row.parameters).toFixed(3)), cell(formatNumber(row.error)),
      cell(row.kept ?? ""));
    return tr;
  }));
  $("#plan-command").textContent = plan.llama_quantize.command || "";
}

async function drawFigure() {
  const plan = current.plan;
  const holder = $("#plan-figures");
  const reply = await engine.request("plan_figure", { plan_document: plan }, (figure) => {
    if (plan !== current.plan) return;
    clearFigures(holder);
    showFigure(figure, holder);
  });
  if (reply.error && plan === current.plan) planError(`Figure failed: ${reply.error.message}`);
}

document.addEventListener("qc-theme", () => { if (current.plan) drawFigure(); });

async function downloadPlan(kind) {
  if (!current.plan) return;
  const note = $("#plan-download-status");
  note.textContent = "Preparing…";
  const reply = await engine.request("plan_export", { plan_document: current.plan, kind });
  if (reply.error) {
    note.textContent = `Download failed: ${reply.error.message}`;
    return;
  }
  const names = { json: "plan_recipe.json", csv: "plan.csv", pdf: "plan.pdf",
    tensor_types: "tensor_types.txt" };
  note.textContent = `Saved ${saveBlob(reply, names[kind])}.`;
}

async function copyCommand() {
  try {
    await navigator.clipboard.writeText($("#plan-command").textContent);
    $("#plan-download-status").textContent = "Command copied.";
  } catch {
    $("#plan-download-status").textContent = "Select the command and copy it.";
  }
}

export function wirePlanner() {
  const later = () => {
    clearTimeout(planTimer);
    planTimer = setTimeout(() => replan(), PLAN_DELAY_MS);
  };
  $("#plan-target").addEventListener("input", () => {
    $("#plan-target-value").textContent = `${Number($("#plan-target").value).toFixed(2)} bits per weight`;
    later();
  });
  for (const id of ["#plan-keep", "#plan-min"]) $(id).addEventListener("change", later);
  $("#plan-weighted").addEventListener("change", later);
  for (const button of document.querySelectorAll("[data-plan-download]")) {
    button.addEventListener("click", () => downloadPlan(button.dataset.planDownload));
  }
  $("#plan-copy").addEventListener("click", copyCommand);
}
