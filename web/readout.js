// Numbers under the pointer on the calculator's histogram and transfer figures, the same numbers
// under a keyboard cursor (the figure takes focus; arrow keys move a line across it, read out by
// an aria-live line), and the same numbers as a table. The engine sends, with each figure,
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

// Data x -> the fraction of the image's width it sits at (the inverse of dataX).
export function fractionOf(x, where) {
  const [left, , width] = where.box;
  const [x0, x1] = where.xlim;
  return left + ((x - x0) / (x1 - x0)) * width;
}

// Where the keyboard cursor may stand: the middle of each histogram bin (one key, one bin; Home
// and End reach the outermost bins, where a lone outlier sits), else 101 even steps across the
// axes.
export function cursorStops(where) {
  const { edges } = where.readout;
  if (edges) return edges.slice(1).map((edge, i) => (edges[i] + edge) / 2);
  const [x0, x1] = where.xlim;
  return Array.from({ length: 101 }, (_, i) => x0 + ((x1 - x0) * i) / 100);
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
  figure.dataset.yscale = where.yscale;
  const line = document.createElement("p");
  line.className = "qc-readout qc-help";
  line.id = `readout-${figure.dataset.figure}`;
  line.setAttribute("aria-live", "polite");
  line.textContent = "Point at the figure, or focus it and press ← → (Home, End), to read its values.";
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

  // the keyboard's cursor: a line over the figure at one of its stops
  const stops = cursorStops(where);
  const cursor = document.createElement("span");
  cursor.className = "qc-cursor";
  cursor.hidden = true;
  let at = null;
  img.tabIndex = 0;
  img.setAttribute("aria-describedby", line.id);
  const keys = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1, PageUp: 10,
    PageDown: -10 };
  img.addEventListener("keydown", (event) => {
    let next;
    if (event.key === "Home") next = 0;
    else if (event.key === "End") next = stops.length - 1;
    else if (event.key in keys) {
      next = at === null ? Math.floor(stops.length / 2) : at + keys[event.key];
    } else return;
    event.preventDefault(); // the page does not scroll under the cursor
    at = Math.min(Math.max(next, 0), stops.length - 1);
    placeCursor(cursor, img, where, stops[at]);
    figure.dataset.cursor = String(at);
    wanted = stops[at];
    ask();
  });
  img.addEventListener("blur", () => { cursor.hidden = true; });
  img.addEventListener("focus", () => { if (at !== null) cursor.hidden = false; });
  img.after(cursor);
  figure.append(line, numbersTable(readout));
}

// The cursor's line over the axes at data x (in the image's pixels: it follows the image's size).
function placeCursor(cursor, img, where, x) {
  const [, bottom, , height] = where.box;
  cursor.hidden = false;
  cursor.style.left = `${img.offsetLeft + fractionOf(x, where) * img.clientWidth}px`;
  cursor.style.top = `${img.offsetTop + (1 - bottom - height) * img.clientHeight}px`;
  cursor.style.height = `${height * img.clientHeight}px`;
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
