// The scan's table: one row per tensor x format, filtered by format, role, layer range and name,
// sorted by any column (worst SQNR first at the start), the first SHOWN_ROWS built; and the
// totals per format beside it. scan.js owns the scan and hands each state over as a view.
// Estimated results read "18.1 ± 0.097" (SQNR) and "24.1 ± 0.53" (a total's error); a tensor
// with any has a checkbox that picks it to be measured again exactly.
import { $, $$ } from "./store.js";
import { formatBytes } from "./files.js";
import { formatNumber } from "./results.js";
import { isEstimate, isEstimated, plusMinus } from "./scan-estimate.js";

const SHOWN_ROWS = 300;   // table rows built at once; filters narrow the rest
const COLUMNS = [
  // key, heading, value of a (tensor, result) pair, how to show it
  ["pick", "Make exact", () => null],
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
// the tensor statistics, explained on hover and focus (the FAQ says the same at more length)
const DEFINED = {
  amax_over_std: "The largest magnitude over the standard deviation: how far the outlier that " +
    "sets a per-tensor range sits from the bulk (about 4–5 for normal values).",
  kurtosis: "Excess kurtosis: 0 for normal values; large when a few outliers carry much of " +
    "the spread, which coarsens every step of a shared range.",
  beyond_6_sigma: "The share of values more than 6 standard deviations from the mean " +
    "(about 2 in a billion for normal values).",
  worst_channel: "The row (output channel) or column (input channel) whose largest magnitude " +
    "is furthest above the median channel's, and that ratio: per-channel or per-group scales " +
    "help most when it is large.",
};
const UNSORTED = new Set(["pick", "notes"]);

let sort = { key: "sqnr_db", ascending: true };
let showAll = false;      // every row, when the user asks (a new scan starts at SHOWN_ROWS)
let view = { tensors: [], formats: [], totals: [], notes: [], canOpen: false, onOpen: () => {},
  picked: new Set(), onPick: () => {} };

function pairs(order = sort) {
  const wantedFormat = $("#scan-format-filter").value;
  const role = $("#scan-role-filter").value;
  const layer = layerFilter();
  const name = $("#scan-name-filter").value.trim().toLowerCase();
  const out = [];
  for (const tensor of view.tensors) {
    if (role && tensor.role !== role) continue;
    if (layer && !(tensor.layer != null && layer(tensor.layer))) continue;
    if (name && !tensor.name.toLowerCase().includes(name)) continue;
    const results = tensor.results.length ? tensor.results : [null];
    results.forEach((result, index) => {
      if (wantedFormat !== "" && result && String(index) !== wantedFormat) return;
      out.push([tensor, result, index]);
    });
  }
  const column = COLUMNS.find(([key]) => key === order.key);
  const sign = order.ascending ? 1 : -1;
  return out.sort((a, b) => {
    const x = column[2](a[0], a[1]);
    const y = column[2](b[0], b[1]);
    if (x === y) return 0;
    if (x === null || x === undefined || x === "") return 1; // nothing to sort by: last
    if (y === null || y === undefined || y === "") return -1;
    return (x < y ? -1 : 1) * sign;
  });
}

// The layer field's test, or null for all layers; text that is no layer number or range is
// said at the field (and filters nothing) instead of being silently ignored.
function layerFilter() {
  const field = $("#scan-layer-filter");
  const text = field.value.trim();
  const test = parseLayers(text);
  const wrong = text !== "" && test === null;
  const error = $("#error-scan-layer");
  error.textContent = wrong ? `Layer: “${text}” is not a layer number or range; type 3 or 10-20.` : "";
  error.hidden = !wrong;
  if (wrong) field.setAttribute("aria-invalid", "true");
  else field.removeAttribute("aria-invalid");
  return test;
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
  if (typeof value === "string") return value;
  if (PERCENT.has(key)) return `${Number((value * 100).toPrecision(3))} %`;
  if (key === "bits_per_value") return value.toFixed(3);
  if (Number.isInteger(value)) return value.toLocaleString("en");
  return formatNumber(value);
}

// The names of the `n` estimated tensors with the lowest SQNR among the rows the filters show.
export function worstEstimated(n) {
  const names = new Set();
  for (const [tensor, result] of pairs({ key: "sqnr_db", ascending: true })) {
    if (names.size >= n) break;
    if (result && Number.isFinite(result.sqnr_db) && isEstimated(tensor)) names.add(tensor.name);
  }
  return [...names];
}

// A tensor with estimated results: a checkbox that picks it (all its rows tick together).
function pickCell(td, tensor) {
  if (!isEstimated(tensor)) {
    td.textContent = tensor.results.length ? "exact" : "";
    return;
  }
  const box = document.createElement("input");
  box.type = "checkbox";
  box.checked = view.picked.has(tensor.name);
  box.setAttribute("aria-label", `Pick ${tensor.name} to measure exactly`);
  box.addEventListener("change", () => {
    for (const tr of $$("#scan-table tbody tr")) {
      if (tr.dataset.tensor === tensor.name) $("input", tr).checked = box.checked;
    }
    view.onPick(tensor.name, box.checked);
  });
  td.append(box);
}

// The table for `view`: {tensors, formats, totals, notes, canOpen, onOpen(tensor, index),
// picked (a Set of names), onPick(name, checked)}.
export function renderTable(next) {
  if (next.tensors !== view.tensors && next.tensors.length < view.tensors.length) showAll = false;
  view = next;
  refreshFilters();
  $("#scan-table").classList.toggle("qc-estimated", view.tensors.some(isEstimated));
  const list = pairs();
  const body = (showAll ? list : list.slice(0, SHOWN_ROWS)).map(([tensor, result, index]) => {
    const tr = document.createElement("tr");
    tr.dataset.tensor = tensor.name;
    tr.dataset.format = result?.format ?? "";
    if (tensor.high_precision) tr.classList.add("qc-kept");
    if (result?.error) tr.classList.add("qc-refused");
    for (const [key, , value] of COLUMNS) {
      const td = document.createElement("td");
      const v = value(tensor, result);
      td.dataset.metric = key;
      if (typeof v === "number") td.dataset.value = String(v);
      if (key === "pick") {
        pickCell(td, tensor);
      } else if (key === "sqnr_db" && isEstimate(result)) {
        td.dataset.ci = String(result.sqnr_ci_db);
        td.textContent = cellText(key, v) + plusMinus(result.sqnr_ci_db);
        td.title = `estimated from ${Number((result.sampled_fraction * 100).toPrecision(2))} % ` +
          "of the values; the interval is 95 %";
      } else if (key === "name") {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "qc-link-button";
        button.textContent = tensor.name;
        button.title = "Open this tensor in the calculator";
        button.disabled = !view.canOpen || !tensor.original;
        button.dataset.index = String(index);
        button.addEventListener("click", () => {
          view.onOpen(tensor, index);
          offerWayBack(tensor.name, index);
        });
        td.append(button);
      } else if (key === "format" && result?.measured_as) {
        // llama-quantize falls back for these rows: the numbers are the fallback type's
        td.textContent = `${v} (measured as ${result.measured_as})`;
        td.title = "llama-quantize cannot take these rows in this type and uses " +
          `${result.measured_as} instead; the row and the totals count that.`;
      } else {
        td.textContent = cellText(key, v);
      }
      tr.append(td);
    }
    return tr;
  });
  $("#scan-table tbody").replaceChildren(...body);
  $("#scan-table").dataset.rows = String(list.length);
  const tensors = (view.tensors).length;
  const cut = !showAll && list.length > SHOWN_ROWS;
  const more = $("#scan-show-all");
  more.hidden = !cut;
  more.textContent = `Show all ${list.length.toLocaleString("en")} rows`;
  // beside the table, not its caption: a wide table scrolls, and its caption with it
  $("#scan-count").textContent = `${list.length.toLocaleString("en")} rows (tensor × format) ` +
    `of ${tensors.toLocaleString("en")} tensors` + (cut
    ? `; the first ${SHOWN_ROWS} are shown: filter, or show them all` : "") +
    `. Sorted by ${COLUMNS.find(([k]) => k === sort.key)[1]}, ` +
    `${sort.ascending ? "lowest" : "highest"} first.`;
  summarize();
}

function summarize() {
  const rows = (view.totals).map((t) => {
    const tr = document.createElement("tr");
    tr.dataset.format = t.format;
    const cells = [t.format, t.bits_per_value == null ? "n/a" : t.bits_per_value.toFixed(3),
      formatBytes(Math.round(t.bytes)), formatNumber(t.total_error) + plusMinus(t.total_error_ci),
      String(t.refused), coverage(t)];
    tr.append(...cells.map((text) => Object.assign(document.createElement("td"), { textContent: text })));
    tr.cells[5].dataset.metric = "coverage";
    tr.cells[3].dataset.metric = "total_error";
    tr.cells[3].dataset.value = String(t.total_error);
    if (t.total_error_ci > 0) tr.cells[3].dataset.ci = String(t.total_error_ci);
    return tr;
  });
  $("#scan-totals-table tbody").replaceChildren(...rows);
  $("#scan-totals-table").hidden = rows.length === 0;
  $("#scan-notes").replaceChildren(...(view.notes).map((text) =>
    Object.assign(document.createElement("li"), { textContent: text })));
}

// "measured 1,234 of 5,678 parameters (90 in fallback types)": what a format's total stands on
// (the rest counts at its stored size with no error, so formats compare over the same tensors).
function coverage(t) {
  if (t.parameters_total == null) return "";
  const n = (x) => x.toLocaleString("en");
  return `measured ${n(t.parameters_covered)} of ${n(t.parameters_total)} parameters` +
    (t.parameters_fallback ? ` (${n(t.parameters_fallback)} in fallback types)` : "");
}

// After a tensor is opened in the calculator: a "Back to the scan" link at the top of its results
// that returns focus to the name it was opened from (or to the table), not 300 Tab presses away.
function offerWayBack(name, index) {
  let link = $("#scan-back");
  if (!link) {
    link = Object.assign(document.createElement("a"), { id: "scan-back", href: "#scan-results",
      className: "qc-back", textContent: "Back to the scan" });
    $("#results-title").after(link);
  }
  link.onclick = (event) => {
    event.preventDefault();
    const from = $$("#scan-table tbody tr").find((tr) => tr.dataset.tensor === name &&
      $("button", tr)?.dataset.index === String(index));
    const target = $("button", from ?? $("#scan-table tbody tr")) ?? $("#scan-count");
    if (target === $("#scan-count")) target.tabIndex = -1;
    target.scrollIntoView({ block: "center" });
    target.focus();
  };
  link.hidden = false;
}

// "Show all N rows": the rest of the rows at once (the filters still apply).
export function wireShowAll(rerender) {
  $("#scan-show-all").addEventListener("click", () => {
    showAll = true;
    rerender();
    // the button goes: keep the keyboard where the new rows start
    $$("#scan-table tbody tr")[SHOWN_ROWS]?.querySelector("button")?.focus();
  });
}

function refreshFilters() {
  const formatChooser = $("#scan-format-filter");
  const wanted = ["", ...view.formats.map((_, i) => String(i))];
  if ([...formatChooser.options].map((o) => o.value).join() !== wanted.join()) {
    const keep = formatChooser.value;
    formatChooser.replaceChildren(new Option("All formats", ""),
      ...view.formats.map((label, i) => new Option(label, String(i))));
    formatChooser.value = wanted.includes(keep) ? keep : "";
  }
  const roleChooser = $("#scan-role-filter");
  const roles = [...new Set((view.tensors).map((t) => t.role))].sort();
  if ([...roleChooser.options].length !== roles.length + 1) {
    const keep = roleChooser.value;
    roleChooser.replaceChildren(new Option("All roles", ""), ...roles.map((r) => new Option(r, r)));
    roleChooser.value = roles.includes(keep) ? keep : "";
  }
}

// The header's sort buttons; `rerender` draws the table again with the new order.
export function buildTableHead(rerender) {
  const tr = document.createElement("tr");
  for (const [key, heading] of COLUMNS) {
    const th = document.createElement("th");
    th.scope = "col";
    th.dataset.metric = key;
    if (UNSORTED.has(key)) {
      th.textContent = heading;
    } else {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "qc-sort";
      button.dataset.sort = key;
      button.textContent = heading;
      if (DEFINED[key]) {
        button.title = DEFINED[key];
        button.setAttribute("aria-describedby", `scan-define-${key}`);
      }
      button.addEventListener("click", () => {
        sort = { key, ascending: sort.key === key ? !sort.ascending : true };
        markSorted();
        rerender();
      });
      th.append(button);
    }
    tr.append(th);
  }
  $("#scan-table thead").replaceChildren(tr);
  $("#scan-definitions").replaceChildren(...Object.entries(DEFINED).map(([key, text]) =>
    Object.assign(document.createElement("span"), { id: `scan-define-${key}`, textContent: text })));
  markSorted();
}

function markSorted() {
  for (const button of $$("#scan-table .qc-sort")) {
    const th = button.parentElement;
    if (button.dataset.sort === sort.key) {
      th.setAttribute("aria-sort", sort.ascending ? "ascending" : "descending");
    } else {
      th.removeAttribute("aria-sort");
    }
  }
}
