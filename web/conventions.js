// "Why do they differ?": after a result, the same settings under every framework convention
// (quantcalc.api.conventions), one table row each: scale, zero point, codes that differ from
// exact and why, SQNR; a convention that does not offer the settings says why instead.
import { $, engine } from "./store.js";
import { formatNumber } from "./results.js";

const WHY = { calibration: "calibration rule", floor: "scale floor", scale_rule: "scale rule",
  float32: "float32 arithmetic (ties)" };

function cell(text, field, value) {
  const td = document.createElement("td");
  td.textContent = text;
  if (field) td.dataset.field = field;
  if (value !== undefined && value !== null) td.dataset.value = String(value);
  return td;
}

function row(entry) {
  const tr = document.createElement("tr");
  tr.dataset.convention = entry.convention;
  const head = document.createElement("th");
  head.scope = "row";
  head.textContent = entry.label;
  tr.append(head);
  if (entry.refused) {
    const td = cell(`Not offered: ${entry.refused}`, "refused");
    td.colSpan = 5;
    td.className = "qc-refused";
    tr.append(td);
    return tr;
  }
  const why = Object.entries(entry.reasons).filter(([, n]) => n)
    .map(([reason, n]) => `${n} ${WHY[reason]}`).join(", ");
  const scale = formatNumber(entry.scale, 9) + (entry.segments > 1 ? " (first of " +
    `${entry.segments})` : "");
  tr.append(cell(scale, "scale", entry.scale),
    cell(entry.zero_point === null ? "—" : String(entry.zero_point), "zero_point",
      entry.zero_point),
    cell(String(entry.codes_differ), "codes_differ", entry.codes_differ),
    cell(why || "—", "why"),
    cell(`${formatNumber(entry.sqnr_db, 6)} dB`, "sqnr_db", entry.sqnr_db));
  return tr;
}

// Ask the engine for the table of `request` (the calculation just shown) and fill it in.
export async function showConventions(request) {
  const status = $("#conventions-status");
  const body = $("#conventions-table tbody");
  body.replaceChildren();
  $("#conventions-table").hidden = true;
  status.textContent = "Running the same settings under each framework's convention…";
  const reply = await engine.request("conventions",
    { config: request.config, source: request.source });
  if (reply.error) {
    status.textContent = reply.error.kind === "cancelled" ? "" : reply.error.message;
    return;
  }
  const compared = reply.count < reply.total ? ` (codes compared over the first ${reply.count} ` +
    `of ${reply.total} values)` : "";
  status.textContent = `Codes compared with the exact convention's${compared}.`;
  body.replaceChildren(...reply.rows.map(row));
  $("#conventions-table").hidden = false;
}
