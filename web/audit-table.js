// The audit's tables: one row per tensor of the quantized model, worst first (SQNR ascending;
// rows with no SQNR, the unpaired, last), and the totals of the audit document. audit.js owns
// the audit and hands each state over. Numbers are shown as the engine gave them (data-value
// holds them whole, as the scan's table does).
import { $ } from "./store.js";
import { formatBytes } from "./files.js";
import { formatNumber } from "./results.js";

const SHOWN_ROWS = 300;
// JSON writes infinities as text; a streamed row and a document both come that way
const number = (value) => (value === "inf" ? Infinity : value === "-inf" ? -Infinity
  : typeof value === "number" ? value : null);

// "yes" (made as the format's plain quantization makes it: llama.cpp, min-max, amax/448),
// "imatrix" (as llama.cpp makes it with the importance matrix), "no" (not bit-identical), "—" (not a format quantcalc reproduces)
export function reproducedText(row) {
  if (row.reproduced === true) return row.reproduced_as === "imatrix" ? "imatrix" : "yes";
  return row.reproduced === false ? "no" : "—";
}

const COLUMNS = [
  ["name", "Tensor", (r) => r.name],
  ["original_name", "Original", (r) => r.original_name ?? "—"],
  ["stored_format", "Stored", (r) => r.stored_format ?? ""],
  ["bits_per_value", "Bits/value", (r) => r.bits_per_value],
  ["sqnr_db", "SQNR (dB)", (r) => number(r.sqnr_db)],
  ["rel_rmse", "Rel. RMSE", (r) => r.rel_rmse],
  ["reproduced", "Reproduced", reproducedText],
  ["plain_sqnr_db", "Plain SQNR (dB)", (r) => number(r.plain_sqnr_db)],
  ["reason", "Reason or notes", (r) => [r.reason, ...(r.notes ?? [])].filter(Boolean).join("; ")],
];

function cellText(key, value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (key === "bits_per_value") return value.toFixed(3);
  return formatNumber(value);
}

// Worst first: lowest SQNR; ∞ after every finite one; rows without an SQNR at the end.
export function worstFirst(rows) {
  const rank = (r) => [number(r.sqnr_db) === null ? 1 : 0, number(r.sqnr_db) ?? 0];
  return [...rows].sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return x[0] - y[0] || (x[1] === y[1] ? 0 : x[1] < y[1] ? -1 : 1);
  });
}

export function buildHead() {
  const row = document.createElement("tr");
  for (const [key, heading] of COLUMNS) {
    const th = document.createElement("th");
    th.scope = "col";
    th.dataset.metric = key;
    th.textContent = heading;
    row.append(th);
  }
  $("#audit-table thead").replaceChildren(row);
}

export function renderRows(rows) {
  const sorted = worstFirst(rows);
  const body = sorted.slice(0, SHOWN_ROWS).map((tensor) => {
    const tr = document.createElement("tr");
    tr.dataset.tensor = tensor.name;
    if (tensor.reason) tr.classList.add("qc-audit-unpaired");
    for (const [key, , value] of COLUMNS) {
      const cell = document.createElement(key === "name" ? "th" : "td");
      if (key === "name") cell.scope = "row";
      const shown = value(tensor);
      cell.dataset.metric = key;
      if (typeof shown === "number") cell.dataset.value = String(shown);
      cell.textContent = cellText(key, shown);
      tr.append(cell);
    }
    return tr;
  });
  $("#audit-table tbody").replaceChildren(...body);
  const measured = rows.filter((r) => !r.reason).length;
  $("#audit-count").textContent = `${rows.length} tensor${rows.length === 1 ? "" : "s"}` +
    ` (${measured} measured), worst first` +
    (rows.length > SHOWN_ROWS ? `; the worst ${SHOWN_ROWS} shown` : "") + ".";
}

// The document's totals as label/value rows, and its notes.
export function renderTotals(doc) {
  const t = doc?.totals;
  const lines = !t ? [] : [
    ["Tensors", `${t.tensors} (${t.tensors_measured} measured, ${t.tensors_not_paired} not paired)`],
    ["Size of the measured tensors", formatBytes(t.bytes)],
    ["Bits per weight", number(t.bits_per_value) === null ? "—" : t.bits_per_value.toFixed(3)],
    ["SQNR of the whole model (dB)",
      number(t.sqnr_db) === null ? "not measured" : formatNumber(number(t.sqnr_db))],
    ...(t.weighted_sqnr_db != null ? [["Importance-weighted SQNR (dB)",
      formatNumber(number(t.weighted_sqnr_db))]] : []),
    ["Reproduced", `${t.reproduced.true} yes, ${t.reproduced.false} no, ${t.reproduced.null} ` +
      "not reproducible here"],
    // a format of tensors kept as they are (an I64 buffer) has no SQNR: null, never "−∞"
    ...(t.by_format ?? []).map((f) => [`${f.stored_format}`,
      `${f.tensors} tensor${f.tensors === 1 ? "" : "s"}, ` +
      `${f.bits_per_value.toFixed(3)} bits/value, ` +
      (number(f.sqnr_db) === null ? "not measured" : `SQNR ${formatNumber(number(f.sqnr_db))} dB`)]),
  ];
  $("#audit-totals tbody").replaceChildren(...lines.map(([label, value]) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = label;
    const td = document.createElement("td");
    td.textContent = value;
    tr.append(th, td);
    return tr;
  }));
  $("#audit-totals").hidden = !t;
  const notes = doc?.notes ?? [];
  $("#audit-notes").replaceChildren(...notes.map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
}
