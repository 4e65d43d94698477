// Bit-budget planner over the scan shown: a target (typed, or on the slider) plans again in the
// worker (the per-scan part is kept there, so a new target only allocates); the figure, the
// presets and what makes the plan (plan-exports.js) follow. Keep patterns and minimum formats
// plan as the user types, and bound the target by what is possible with them. Output that no
// longer matches the settings is marked so. A file that is already quantized has nothing to plan
// until re-quantizing is allowed (plan-requantize.js). Nothing is scanned again for a target.
import { $, engine } from "./store.js";
import { clearFigures, showFigure } from "./figures.js";
import { formatNumber } from "./results.js";
import { formatBytes } from "./files.js";
import { renderExports, wirePlanExports } from "./plan-exports.js";
import * as requantize from "./plan-requantize.js";

const SHOWN_ROWS = 300;
const SLIDER_DELAY_MS = 120;
const TYPING_DELAY_MS = 400;
const FIGURE_DELAY_MS = 400;
const LARGEST = 64; // bits per weight, above every plan: asks for the largest plan and the range
const SCAN_NAME = "This scan"; // how the engine's messages name the document

let docs = 0;      // each document the planner is given gets its own key for the worker's cache
let requests = 0;  // a reply to an older request than the last is dropped
// the scan's document and its cache key, the re-quantized document, the plan shown; whether the
// target's bounds are still to be asked for, whether the user set the target and to what
let current = { doc: null, key: null, requantized: null, plan: null, unranged: true,
  typed: false, wanted: NaN };
let planTimer = null;
let figureTimer = null;

// A new scan document (finished, cancelled or restored; null when there is none): the planner
// starts at the middle of what the scanned formats allow.
export function usePlannerScan(doc, scanId) {
  requests += 1;
  current = { doc, key: `${scanId}#${++docs}`, requantized: null, plan: null, unranged: true,
    typed: false, wanted: NaN };
  const shown = Boolean(doc && doc.tensors.length);
  $("#planner").hidden = !shown;
  setState("planning");
  showPlan(null);
  clearFigures($("#plan-figures"));
  requantize.useScan(shown ? doc : null, scanId);
  if (shown) replan({ middle: true });
}

// The document planned now: the scan's, or with re-quantizing allowed the one whose quantized
// tensors were measured (null while they are being measured).
function planned() {
  if (!$("#plan-requantize").checked || !requantize.offered()) {
    return { doc: current.doc, key: current.key, requantized: false };
  }
  return current.requantized
    ? { doc: current.requantized, key: `${current.key}+requantized`, requantized: true } : null;
}

// ---------------------------------------------------------------- the settings, read and checked
function lines(id) {
  return $(id).value.split("\n").map((line) => line.trim()).filter(Boolean);
}

// {options, errors}: the engine's plan options, and a message per field the page can check
// itself (the engine checks the rest: a pattern that is not a regular expression, a format not
// scanned).
function readSettings() {
  const errors = {};
  const minimum = {};
  for (const line of lines("#plan-min")) {
    const [role, ...rest] = line.split("=");
    const label = rest.join("=").trim();
    if (!rest.length || !role.trim() || !label) {
      errors.min = `Write each line as ROLE=FORMAT, e.g. attn_v=Q6_K ("${line}" is not).`;
      break;
    }
    // llama.cpp's types in capitals, as the command line's --min takes them (cli/plan.py)
    minimum[role.trim()] = /^i?q/i.test(label) ? label.toUpperCase() : label;
  }
  return { options: { keep: lines("#plan-keep"), minimum, weighted: $("#plan-weighted").checked },
    errors };
}

// The target typed (or on the slider) as a number within the bounds, or {error}.
function readTarget() {
  const field = $("#plan-bpw");
  const value = Number(field.value);
  if (field.value.trim() === "" || !Number.isFinite(value)) {
    return { error: "Enter the target as a number of bits per weight, e.g. 4.5." };
  }
  const [low, high] = [Number(field.min), Number(field.max)];
  if (value < low || value > high) {
    return { error: `With these settings a plan takes ${low.toFixed(2)} to ${high.toFixed(2)} ` +
      `bits per weight; ${value} is outside.` };
  }
  return { value };
}

function setBounds([low, high]) {
  const min = String(Math.ceil(low * 100) / 100);
  const max = String(Math.max(Number(min), Math.floor(high * 100) / 100));
  for (const id of ["#plan-bpw", "#plan-target"]) Object.assign($(id), { min, max });
}

function setTarget(value) {
  const [low, high] = [Number($("#plan-bpw").min), Number($("#plan-bpw").max)];
  const text = String(Math.round(Math.min(high, Math.max(low, value)) * 100) / 100);
  $("#plan-bpw").value = text;
  $("#plan-target").value = text;
  showTargetNote();
}

function showTargetNote() {
  const field = $("#plan-bpw");
  $("#plan-target-value").textContent = `Possible with these settings: ${Number(field.min)
    .toFixed(2)} to ${Number(field.max).toFixed(2)} bits per weight.`;
}

// ---------------------------------------------------------------- errors and stale output
const ERROR_FIELDS = { keep: "keep", minimum: "min", min: "min", target: "target" };

function showErrors(errors) {
  for (const field of ["keep", "min", "target", "general"]) {
    const node = $(field === "general" ? "#error-plan" : `#error-plan-${field}`);
    node.textContent = errors[field] ?? "";
    node.hidden = !errors[field];
    const input = { keep: "#plan-keep", min: "#plan-min", target: "#plan-bpw" }[field];
    if (input) $(input).setAttribute("aria-invalid", errors[field] ? "true" : "false");
  }
}

// Mark the plan shown as not matching the settings (`why`), or as current (null).
function markStale(why) {
  const output = $("#plan-output");
  output.classList.toggle("qc-stale", Boolean(why));
  output.setAttribute("aria-busy", why === "busy" ? "true" : "false");
  $("#plan-stale").textContent = why === "busy" ? "Planning again for the new settings…" : why ?? "";
  $("#plan-stale").hidden = !why;
}

function failed(error) {
  const refusal = error.field === "scan" && requantize.offered() && !planned()?.requantized;
  if (refusal) {
    // an already-quantized file: one line why, and the choice to re-quantize (plan-requantize.js)
    showPlan(null);
    showErrors({});
    const message = error.message.startsWith(`${SCAN_NAME}: `)
      ? error.message.slice(SCAN_NAME.length + 2) : error.message;
    $("#plan-refusal").textContent = message.charAt(0).toUpperCase() + message.slice(1) +
      (/[.!?]$/.test(message) ? "" : ".");
    $("#plan-refusal").hidden = false;
    $("#plan-fields").hidden = true;
    setState("refused");
    return;
  }
  const field = ERROR_FIELDS[error.field] ?? "general";
  showErrors({ [field]: error.message });
  if (current.plan) markStale("Out of date: the plan below is for the previous settings; fix " +
    "the message above to plan again.");
  setState("error");
}

function setState(state) {
  $("#planner").dataset.state = state;
}

// ---------------------------------------------------------------- planning
// Plan for the target. After a change of document, keep, minimum or weighting it first asks for
// the range the settings allow and puts the target inside it (at the middle, with `middle`,
// unless the user has set a target since).
async function replan({ middle = false } = {}) {
  const asked = ++requests;
  const ranging = current.unranged;
  const what = planned();
  const settings = readSettings();
  showErrors(settings.errors);
  if (!what) return; // re-quantizing is being measured: plan-requantize.js plans when done
  if (Object.keys(settings.errors).length) {
    if (current.plan) markStale("Out of date: the plan below is for the previous settings; " +
      "fix the message above to plan again.");
    return;
  }
  if (current.plan) markStale("busy");
  const args = (target) => ({ document: what.doc, scan_id: what.key,
    options: { ...settings.options, target_bpw: target }, name: SCAN_NAME });
  const ask = (target) => engine.request("plan", args(target));
  if (ranging) {
    const largest = await ask(LARGEST);
    if (asked !== requests) return;
    if (largest.error) return failed(largest.error);
    const [low, high] = largest.plan.range_bits_per_weight;
    setBounds([low, high]);
    const typed = Number($("#plan-bpw").value);
    const keepTyped = current.typed && $("#plan-bpw").value.trim() !== "" && Number.isFinite(typed);
    // the user's own target, not where an earlier range pushed it: a keep or minimum that moved
    // it and is then removed gives it back
    const own = keepTyped && Number.isFinite(current.wanted) ? current.wanted : typed;
    setTarget(keepTyped || (!middle && Number.isFinite(typed)) ? own : (low + high) / 2);
    current.unranged = false;
  }
  const target = readTarget();
  if (target.error) {
    failed({ field: "target", message: target.error });
    return;
  }
  const reply = await ask(target.value);
  if (asked !== requests) return;
  if (reply.error) return failed(reply.error);
  showPlan(reply.plan, what, args(target.value));
  $("#plan-summary").dataset.target = String(target.value); // as asked (tests wait for it)
}

// Show a plan (null: none), with the document it was made from and the request that made it
// (its downloads ask for the same plan: plan-exports.js).
function showPlan(plan, what = null, request = null) {
  current.plan = plan;
  $("#plan-output").hidden = !plan;
  $("#plan-fields").hidden = false;
  $("#plan-refusal").hidden = true;
  markStale(null);
  if (!plan) return;
  showErrors({});
  render(plan, what);
  renderExports(plan, what.doc, request);
  setState("planned");
  $("#plan-figures").classList.add("qc-figure-old"); // until this plan's figure is drawn
  clearTimeout(figureTimer);
  figureTimer = setTimeout(drawFigure, FIGURE_DELAY_MS);
  document.body.dataset.plans = String(Number(document.body.dataset.plans || 0) + 1);
}

function cell(text) {
  return Object.assign(document.createElement("td"), { textContent: text });
}

function render(plan, what) {
  $("#plan-summary").textContent = `This plan: ${plan.bits_per_weight.toFixed(3)} bits per ` +
    `weight (target ${plan.target_bits_per_weight.toFixed(2)}), ` +
    `${formatBytes(Math.round(plan.bytes))}, total error ${formatNumber(plan.total_error)} ` +
    `(sum of ${plan.metric} × parameters) over ${plan.tensors.length} tensors.`;
  $("#plan-summary").dataset.bitsPerWeight = String(plan.bits_per_weight);
  $("#plan-requantized-note").hidden = !what.requantized;
  $("#plan-requantized-note").textContent = "Planned on the values this file holds, re-quantized: " +
    "each error is that of re-quantizing them, not the error against the original weights, " +
    "which are not in the file.";
  const near = plan.presets.reduce((best, p) => (best === null || Math.abs(p.bits_per_weight
    - plan.bits_per_weight) < Math.abs(best.bits_per_weight - plan.bits_per_weight) ? p : best), null);
  $("#plan-verdict").textContent = near ? `At ${near.preset}'s size here ` +
    `(${near.bits_per_weight.toFixed(2)} bits per weight), the best mix's total error is ` +
    `${Math.abs(near.error_lower_percent).toFixed(1)} % ${near.error_lower_percent >= 0 ? "lower" : "higher"}` +
    (near.error_lower_db == null ? "" : ` (${near.error_lower_db.toFixed(2)} dB)`) +
    ` than ${near.preset}'s (${formatNumber(near.plan_error)} against ${formatNumber(near.preset_error)}).`
    : "Scan llama.cpp's types (the llama.cpp preset) to compare with its presets.";
  $("#plan-presets").closest(".qc-table-wrap").hidden = plan.presets.length === 0;
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
  const rows = plan.tensors.slice(0, SHOWN_ROWS);
  $("#plan-table-caption").textContent = rows.length < plan.tensors.length
    ? `Tensor → format (the first ${rows.length} of ${plan.tensors.length}; the CSV has all)`
    : "Tensor → format";
  $("#plan-table tbody").replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    tr.dataset.tensor = row.name;
    tr.append(cell(row.name), cell(row.role), cell(row.format),
      cell(row.parameters ? (row.bits / row.parameters).toFixed(3) : ""), cell(formatNumber(row.error)),
      cell(row.kept ?? ""));
    return tr;
  }));
}

async function drawFigure() {
  const plan = current.plan;
  if (!plan) return;
  const holder = $("#plan-figures");
  const reply = await engine.request("plan_figure", { plan_document: plan }, (figure) => {
    if (plan !== current.plan) return;
    clearFigures(holder);
    showFigure(figure, holder);
    holder.classList.remove("qc-figure-old");
    holder.dataset.plan = document.body.dataset.plans;
  });
  if (reply.error && plan === current.plan && reply.error.kind !== "cancelled") {
    showErrors({ general: `The figure could not be drawn: ${reply.error.message}` });
  }
}

document.addEventListener("qc-theme", () => { if (current.plan) drawFigure(); });

// ---------------------------------------------------------------- wiring
function later(delay) {
  requests += 1; // an answer to what was asked before this change is not shown
  clearTimeout(planTimer);
  if (current.plan) markStale("busy");
  planTimer = setTimeout(() => replan(), delay);
}

export function wirePlanner() {
  $("#plan-target").addEventListener("input", () => {
    current.typed = true;
    current.wanted = Number($("#plan-target").value);
    $("#plan-bpw").value = $("#plan-target").value;
    later(SLIDER_DELAY_MS);
  });
  $("#plan-bpw").addEventListener("input", () => {
    current.typed = true;
    const value = Number($("#plan-bpw").value);
    current.wanted = $("#plan-bpw").value.trim() === "" ? NaN : value;
    if (Number.isFinite(value)) $("#plan-target").value = String(value);
    later(TYPING_DELAY_MS);
  });
  // keep, minimum and weighting change what is possible: the target's bounds are asked again
  for (const id of ["#plan-keep", "#plan-min"]) {
    $(id).addEventListener("input", () => {
      current.unranged = true;
      later(TYPING_DELAY_MS);
    });
  }
  $("#plan-weighted").addEventListener("change", () => {
    current.unranged = true;
    later(0);
  });
  requantize.wireRequantize({
    measured: (doc, key) => { if (key === current.key) current.requantized = doc; },
    measuredFor: (key) => key === current.key && current.requantized !== null,
    plan: () => {
      requests += 1; // what was asked for the other document no longer counts
      showPlan(null);
      clearFigures($("#plan-figures"));
      current.unranged = true;
      replan({ middle: true });
    },
    source: () => ({ doc: current.doc, key: current.key }),
  });
  wirePlanExports();
}
