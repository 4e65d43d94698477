// Figures: SVG from matplotlib in the worker, shown as <img> of a blob (inert, CSP-clean), one
// at a time as each is drawn; kept with the result once all are in (saved-results.js).
import { $, $$, engine, state } from "./store.js";
import { display } from "./results.js";
import * as savedResults from "./saved-results.js";
import { addReadout } from "./readout.js";
import { figureTheme } from "./theme.js";

// Add one figure ({name, title, svg, where}) to `holder`; resolves once its image is decoded.
// `where` (figures.pointer_map) gives the calculator's histograms and transfer figure a readout.
export function showFigure({ name, title, svg, where = null }, holder = $("#figures")) {
  const first = holder.childElementCount === 0;
  const subject = { "scan-figures": "the scanned model", "plan-figures": "the plan",
    "audit-figures": "the audited model" }[holder.id]
    ?? state.summary?.name ?? "tensor";
  const figure = figureElement(name, title, svg, altText(name), subject);
  if (WIDE.has(holder.id)) scrollsWhenNarrow(figure);
  if (holder.id === "figures") addReadout(figure, figure.querySelector("img"), where);
  if (holder.id === "figures" && name === "histogram") addLogCountsControl(figure, where);
  const old = [...holder.children].find((node) => node.dataset.figure === name);
  if (old) { // drawn again (another colour scheme): in place, no flash of an empty holder
    URL.revokeObjectURL(old.querySelector("img").src);
    old.replaceWith(figure);
  } else {
    holder.append(figure);
  }
  const decoded = figure.querySelector("img").decode().catch(() => {});
  if (first && holder.id === "figures") decoded.then(() => performance.mark("quantcalc:first-figure"));
  return decoded;
}

export async function drawFigures() {
  state.figuresWanted = false;
  const { request, reply: result } = state;
  const current = () => request === state.request; // a newer calculation replaces these
  $("#figures-status").textContent = "Drawing figures…";
  const figures = [];
  const shown = [];
  const reply = await engine.request("figures_svg",
    { config: request.config, source: request.source, analysis_id: request.id,
      log_counts: state.logCounts },
    (figure) => {
      if (!current()) return;
      figures.push(figure);
      shown.push(showFigure(figure));
    });
  if (!current()) return;
  if (reply.error) {
    $("#figures-status").textContent = reply.error.kind === "cancelled"
      ? "Figures cancelled." : `Figures failed: ${reply.error.message}`;
    return;
  }
  await Promise.all(shown);
  $("#figures-status").textContent = "";
  performance.mark("quantcalc:figures");
  savedResults.keep(request, result, figures, figureTheme());
}

// A bin of one value beside bins of thousands is invisible on a linear count axis (a tensor's
// outlier that sets the whole range): the histogram can draw its counts on a log axis instead.
// The choice holds for the figures drawn after it, until the page is reloaded.
function addLogCountsControl(figure, where) {
  const label = document.createElement("label");
  label.className = "qc-check qc-log-counts";
  const box = document.createElement("input");
  box.type = "checkbox";
  box.checked = where?.yscale === "log";
  label.append(box, " Counts on a log scale");
  box.addEventListener("change", () => redrawHistogram(box.checked));
  figure.querySelector("figcaption").after(label);
}

async function redrawHistogram(logCounts) {
  state.logCounts = logCounts;
  const { request } = state;
  if (!request) return;
  $("#figures-status").textContent = "Drawing the histogram…";
  let shown = null;
  const reply = await engine.request("figures_svg",
    { config: request.config, source: request.source, analysis_id: request.id,
      names: ["histogram"], log_counts: logCounts },
    (figure) => {
      if (request !== state.request) return;
      shown = showFigure(figure);
    });
  if (request !== state.request) return;
  if (reply.error) {
    $("#figures-status").textContent = `The histogram failed: ${reply.error.message}`;
    return;
  }
  await shown;
  $("#figures-status").textContent = "";
  // the control was drawn anew with its figure: keep the keyboard where it was
  $("#figures figure[data-figure=histogram] .qc-log-counts input")?.focus();
}

// The scan's, plan's and audit's figures are drawn 6.4 in wide with 8-11 pt text: shrunk to a
// phone's width that text would be 6 px high. On a narrow screen they keep their natural size
// (8 pt is 10.7 CSS px) and scroll sideways (style.css); the scrolling box takes focus only
// while it can scroll, so a keyboard can scroll it and a wide screen has no extra tab stop.
const WIDE = new Set(["scan-figures", "plan-figures", "audit-figures"]);

function scrollsWhenNarrow(figure) {
  const img = figure.querySelector("img");
  const box = document.createElement("div");
  box.className = "qc-figure-scroll"; // focusable while it scrolls (scroll-focus.js)
  img.replaceWith(box);
  box.append(img);
}

export function clearFigures(holder) {
  for (const img of $$("img", holder)) URL.revokeObjectURL(img.src);
  holder.replaceChildren();
}

function figureElement(name, title, svg, description, subject) {
  const figure = document.createElement("figure");
  figure.dataset.figure = name;
  const img = document.createElement("img");
  img.src = URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" }));
  img.alt = `${title} for ${subject}: ${description}`;
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(img, caption);
  return figure;
}

const ALT = {
  tradeoff: "each configuration's SQNR against its bits per value, the Pareto front joined",
  sweep: "integer SQNR from 2 to 16 bits beside the 6.02 dB per bit line",
  heatmap: "each layer's tensors by role, coloured by their SQNR under the chosen format; the " +
    "table above holds the same numbers",
  spread: "each format's SQNR over all tensors, as a box and one dot per tensor",
  size: "the measured tensors' size at each format, with the average bits per value",
  share: "for each format, each role's share of the total error (MSE times parameters)",
  gain: "each tensor's stored SQNR against the SQNR of llama.cpp's plain quantization of the " +
    "original; points above the diagonal gained from an importance matrix",
  plan: "the least total error the scanned formats reach at each size, llama.cpp's presets as " +
    "points and this plan as a star; the tables hold the numbers",
};

function altText(name) {
  if (ALT[name]) return ALT[name];
  const s = state.summary;
  const scale = Array.isArray(s.scale) ? "per-segment scales" : `scale ${display("scale", s.scale)}`;
  switch (name) {
    case "values": return `reconstruction follows the ${s.count} original values; RMSE ${display("rmse", s.rmse)}.`;
    case "error": return `errors up to ${display("max_abs_error", s.max_abs_error)} in magnitude, ${scale}.`;
    case "histogram": return `distribution of the values with the quantization levels and ` +
      `clipping bounds; ${s.clip_count} clipped; the smallest (${display("data_min", s.data_min)}) ` +
      `and largest (${display("data_max", s.data_max)}) values are marked.`;
    default: return `staircase from input to reconstruction of ${s.description}, ${scale}.`;
  }
}
