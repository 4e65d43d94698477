// Numbers under the pointer on the calculator's histogram and transfer figures, and the same
// numbers as a table for keyboard and screen-reader users. The engine sends, with each figure,
// where its axes sit and what they show (figures.pointer_map); the page turns the pointer's
// position into a data value, counts its histogram bin itself and asks the engine what that
// value quantizes to (api.readout: the exact code and reconstruction for any format).
import { engine, state } from "./store.js";
import { formatNumber } from "./results.js";

const fmt = (value) => formatNumber(value, 4);

// Pointer position (event on the image) -> data x, or null outside the axes.
export function dataX(img, event, where) {
  const rect = img.getBoundingClientRect();
  const fx = (event.clientX - rect.left) / rect.width;
  const fy = 1 - (event.clientY - rect.top) / rect.height;
  const [left, bottom, width, height] = where.box;
  if (fx < left || fx > left + width || fy < bottom || fy > bottom + height) return null;
  const [x0, x1] = where.xlim;
  return x0 + ((fx - left) / width) * (x1 - x0);
}

// The histogram bin that holds x: [from, to, count], or null (numpy's last bin is closed).
function binOf(x, { edges, counts }) {
  const last = edges.length - 1;
  if (x < edges[0] || x > edges[last]) return null;
  let i = 0;
  while (i < last - 1 && x >= edges[i + 1]) i += 1;
  return [edges[i], edges[i + 1], counts[i]];
}

// Wire one figure: a readout line that follows the pointer, and a table of the same numbers.
export function addReadout(figure, img, where) {
  const readout = where?.readout;
  if (!readout) return;
  figure.dataset.box = JSON.stringify(where.box); // where the axes are, for tests and debugging
  figure.dataset.xlim = JSON.stringify(where.xlim);
  const line = document.createElement("p");
  line.className = "qc-readout qc-help";
  line.textContent = "Point at the figure to read its values.";
  const request = state.request; // the analysis this figure belongs to
  let asking = false;
  let wanted = null;

  async function ask() {
    if (asking || wanted === null) return;
    const x = wanted;
    wanted = null;
    const bin = readout.edges ? binOf(x, readout) : null;
    let quantized = null;
    if (readout.kind !== "errors") {
      asking = true;
      const reply = await engine.request("readout",
        { config: request.config, source: request.source, analysis_id: request.id, x });
      asking = false;
      if (!reply.error) quantized = reply;
    }
    show(x, bin, quantized);
    ask(); // the pointer moved meanwhile: the latest position next
  }

  function show(x, bin, quantized) {
    const parts = [`${readout.kind === "errors" ? "error" : "x"} ${fmt(x)}`];
    if (bin) parts.push(`${bin[2]} value${bin[2] === 1 ? "" : "s"} in [${fmt(bin[0])}, ${fmt(bin[1])})`);
    if (quantized) {
      parts.push(`code ${quantized.code} → x̂ ${fmt(quantized.reconstruction)}` +
        (quantized.clipped ? " (clipped)" : ""));
    }
    line.textContent = parts.join(" · ");
    Object.assign(line.dataset, { x: String(x), count: bin ? String(bin[2]) : "",
      code: quantized ? String(quantized.code) : "",
      reconstruction: quantized ? String(quantized.reconstruction) : "" });
  }

  img.addEventListener("pointermove", (event) => {
    const x = dataX(img, event, where);
    if (x === null) return;
    wanted = x;
    ask();
  });
  figure.append(line, numbersTable(readout));
}

// The figure's numbers as a table: the histogram's bins, or the transfer function's steps.
function numbersTable(readout) {
  const details = document.createElement("details");
  details.className = "qc-figure-numbers";
  const summary = document.createElement("summary");
  const table = document.createElement("table");
  table.className = "qc-table";
  const row = (cells, tag = "td") => {
    const tr = document.createElement("tr");
    for (const text of cells) {
      const cell = document.createElement(tag);
      if (tag === "th") cell.scope = "col";
      cell.textContent = text;
      tr.append(cell);
    }
    return tr;
  };
  const head = document.createElement("thead");
  const body = document.createElement("tbody");
  if (readout.kind === "transfer") {
    summary.textContent = "Steps of the transfer function";
    if (!readout.levels) {
      body.append(row(["More steps than a table can show: point at the figure to read any one."]));
    } else {
      head.append(row(["x from ≈", "to ≈", "Code", "x̂"], "th"));
      for (const [from, to, code, recon] of readout.levels) {
        body.append(row([fmt(from), fmt(to), String(code), fmt(recon)]));
      }
    }
  } else {
    summary.textContent = "Histogram bins";
    head.append(row([readout.kind === "errors" ? "Error from" : "Value from", "to", "Count"], "th"));
    readout.counts.forEach((count, i) => {
      body.append(row([fmt(readout.edges[i]), fmt(readout.edges[i + 1]), String(count)]));
    });
  }
  table.append(head, body);
  details.append(summary, table);
  return details;
}
