// The results of one analysis: the heading, the notes, one card per result field (rules.js's
// FIELDS marked as cards, those that apply to this format) and the per-value table.
import { $, state } from "./store.js";
import { FIELD, FIELDS, GRADES } from "./rules.js";

const PAGE_ROWS = 50;

// A value as people read it, by its field's style (report.display in Python follows the same):
// four significant digits, percentages to three. The downloads keep every digit. An infinite
// value is an SQNR without error.
export function display(key, value) {
  const style = FIELD[key]?.style ?? "real";
  if (value === null || value === undefined) return "n/a";
  if (value === Infinity) return "∞ (no error)";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "string") return value;
  if (style === "percent") return `${Number((value * 100).toPrecision(3))} %`;
  if (style === "int" || Number.isInteger(value)) return String(value);
  return formatNumber(value, 4);
}

// `digits` significant digits; scientific notation where fixed notation would hide them.
export function formatNumber(value, digits = 6) {
  if (!Number.isFinite(value)) return Number.isNaN(value) ? "NaN" : value > 0 ? "∞" : "−∞";
  const size = Math.abs(value);
  if (size !== 0 && (size < 1e-3 || size >= 1e6)) return value.toExponential(digits - 1);
  return Number(value.toPrecision(digits)).toString();
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

function card(field, summary) {
  const { key, label } = field;
  const value = summary[key];
  const node = document.createElement("div");
  node.className = "qc-metric";
  node.dataset.metric = key;
  node.dataset.value = Array.isArray(value) ? JSON.stringify(value) : String(value);
  const name = document.createElement("div");
  name.className = "qc-metric-label";
  name.textContent = label;
  const shown = document.createElement("div");
  shown.className = "qc-metric-value";
  const detail = document.createElement("div");
  detail.className = "qc-metric-detail";
  if (Array.isArray(value)) {
    const kind = summary.segment_kind;
    if (value.length === 1) {
      shown.textContent = display(key, value[0]);
      detail.textContent = `one ${kind}`;
    } else {
      const numbers = value.map(Number);
      shown.textContent = plural(value.length, kind);
      detail.textContent = `from ${display(key, Math.min(...numbers))} to ${display(key, Math.max(...numbers))}`;
    }
  } else {
    shown.textContent = display(key, value);
    if (key === "uniform_noise_mse") detail.textContent = `measured MSE: ${display("mse", summary.mse)}`;
    if (key === "real_min" && summary.range_widened) detail.textContent = "widened to include 0";
    if (key === "grid_max") detail.textContent = "in units of the scale";
    if (key === "sqnr_db" && Number.isFinite(value)) shown.textContent += " dB";
  }
  node.append(name, shown, detail);
  return node;
}

// The settings as text, for a printed page (the form's controls are not printed).
function renderSettings(summary) {
  const items = [];
  for (const field of FIELDS) {
    const value = summary[field.key];
    if (field.group !== "configuration" || value === null || value === undefined) continue;
    const term = document.createElement("dt");
    term.textContent = field.label;
    const detail = document.createElement("dd");
    detail.textContent = field.style === "shape" ? value.join(" × ") || "scalar" : display(field.key, value);
    items.push(term, detail);
  }
  $("#results-settings").replaceChildren(...items);
}

// The four numbers a result is read by, each with the engine's label and plain cue (engine/verdict.py).
function renderHeadline(headline, summary) {
  $("#headline").replaceChildren(...headline.map(({ key, label: name, level, cue }) => {
    const node = document.createElement("div");
    node.className = "qc-verdict";
    node.dataset.verdict = key;
    node.dataset.level = level;
    const label = document.createElement("div");
    label.className = "qc-metric-label";
    label.textContent = name;
    const value = document.createElement("div");
    value.className = "qc-verdict-value";
    const v = summary[key];
    value.textContent = key === "sqnr_db" && Number.isFinite(v) ? `${display(key, v)} dB`
      : display(key, v);
    const words = document.createElement("div");
    words.className = "qc-verdict-cue";
    words.textContent = cue;
    node.append(label, value, words);
    return node;
  }));
  const hints = summary.hints ?? [];
  $("#hints").replaceChildren(...hints.map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
  $("#hints-title").hidden = hints.length === 0;
}

// origin: "engine" (just computed) or "saved" (restored while Python starts)
export function renderResults(reply, origin) {
  const { summary, per_value: perValue } = reply;
  $("#results").hidden = false;
  $("#results").dataset.origin = origin;
  $("#results-origin").hidden = origin !== "saved";
  $("#download-status").textContent = ""; // "Saved tensor_report.pdf." was the last result's
  $("#results-name").textContent = `${summary.name} · ${summary.count} values · ${summary.description}`;
  $("#notes").replaceChildren(...summary.notes.map((note) => {
    const item = document.createElement("li");
    item.textContent = note;
    return item;
  }));
  renderSettings(summary);
  renderHeadline(reply.headline ?? [], summary);
  $("#metrics").replaceChildren(...FIELDS
    .filter((field) => field.card && summary[field.key] !== null && summary[field.key] !== undefined)
    .map((field) => card(field, summary)));
  performance.mark("quantcalc:metrics"); // read by bench/startup.py
  state.perValue = perValue;
  state.summary = summary;
  state.page = 0;
  renderPage();
  for (const img of document.querySelectorAll("#figures img")) URL.revokeObjectURL(img.src);
  $("#figures").replaceChildren();
  for (const button of document.querySelectorAll("[data-download]")) button.disabled = false;
}

export function renderPage() {
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

export function turnPage(step) {
  state.page += step;
  renderPage();
}

// The FAQ's table of the verdict's thresholds, from the same table the engine grades by.
export function fillGradeTable() {
  const rows = [];
  const add = (measure, when, { level, cue }) => {
    const tr = document.createElement("tr");
    tr.dataset.level = level;
    for (const text of [measure, when, cue]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    rows.push(tr);
  };
  GRADES.sqnr.forEach((row, i) => {
    const above = GRADES.sqnr[i - 1]?.bound;
    const when = row.bound === null ? `below ${above} dB`
      : above === undefined ? `${row.bound} dB or more` : `${row.bound} to ${above} dB`;
    add("SQNR", when, row);
  });
  GRADES.clip_rate.forEach((row, i) => {
    const below = GRADES.clip_rate[i - 1]?.bound;
    const pct = (x) => `${Number((x * 100).toPrecision(3))} %`;
    const when = row.bound === 0 ? "0 %" : row.bound === null ? `over ${pct(below)}`
      : below === 0 ? `up to ${pct(row.bound)}` : `${pct(below)} to ${pct(row.bound)}`;
    add("Clip rate", when, row);
  });
  $("#grade-table tbody").replaceChildren(...rows);
}
