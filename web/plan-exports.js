// What makes the plan shown, in words a user reads: llama-quantize's command and tensor-type
// file, the llm-compressor recipe, the formats no known tool makes and the plan's notes; and the
// plan's downloads, whose bytes the engine makes (reports/exports.py's PLAN table). An export the
// plan does not have is not offered, and a download or a copy says what it did, or why not.
import { $, $$, engine } from "./store.js";
import { safeFileName, saveBlob } from "./downloads.js";
import { fileType } from "./file-types.js";

// The plan the exports are of, the request that made it (a download asks the engine to make the
// same plan again: numbers that went through the page come back as ints where they were 64.0,
// and the files would not be spelled as the command line's), and its files' name stem.
let shown = null; // {plan, request, stem}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
const sentence = (text) => (text && !/[.!?]$/.test(text) ? `${text}.` : text ?? "");

const FILE_NAMES = {
  json: (stem) => `${stem}-plan.json`,
  csv: (stem) => `${stem}-plan.csv`,
  pdf: (stem) => `${stem}-plan.pdf`,
  tensor_types: (stem) => `${stem}-tensor-types.txt`,
  llm_compressor: (stem) => `${stem}-llm-compressor-recipe.yaml`,
};

// The scan's data files (file-types.js: no index); the one file's name without its suffix
// names the downloads.
function fileStem(doc) {
  const data = (doc.files ?? []).map((f) => ({ name: f.name, type: fileType(f.name ?? "") }))
    .filter(({ type }) => type && type.reader !== "index");
  return data.length === 1
    ? safeFileName(data[0].name.slice(0, -data[0].type.suffix.length)) : "model";
}

function fromGguf(doc) {
  return (doc.files ?? []).some((f) => fileType(f.name ?? "")?.reader === "gguf");
}

function item(text, className = "") {
  return Object.assign(document.createElement("li"), { textContent: text, className });
}

function offer(kind, yes) {
  for (const button of $$(`[data-plan-download="${kind}"]`)) button.hidden = !yes;
}

// llama-quantize: the base type and overrides, or why it cannot make the plan.
function renderLlama(plan, doc) {
  const lq = plan.llama_quantize;
  const overrides = lq.tensor_types.length;
  let text;
  if (lq.made && lq.base) {
    const names = plan.gguf?.architecture ? ` (GGUF names from gguf-py ${plan.gguf.gguf_py} for ` +
      `${plan.gguf.architecture})` : "";
    text = `llama-quantize makes this plan: base type ${lq.base}` +
      (overrides ? ` and ${plural(overrides, "--tensor-type override")}${names}.`
        : `, no override: every tensor it quantizes takes ${lq.base}.`) +
      (fromGguf(doc) ? "" : " The command reads model-f16.gguf: the GGUF that " +
        "convert_hf_to_gguf.py writes from this checkpoint.");
  } else if (lq.made) {
    text = `Nothing for llama-quantize to do: ${sentence(lq.notes[0] ?? "no tensor to quantize")}`;
  } else {
    text = `Cannot make this plan: ${sentence(lq.reason)}`;
  }
  $("#plan-lq-status").textContent = text;
  $("#plan-command").textContent = lq.command || "";
  $("#plan-command").hidden = !lq.command;
  $("#plan-copy").hidden = !lq.command;
  offer("tensor_types", lq.made && overrides > 0);
}

// llm-compressor: the recipe's groups, or why there is no recipe.
function renderCompressor(plan) {
  const ct = plan.compressed_tensors ?? { made: false, groups: [], not_made: [],
    reason: "the plan has no llm-compressor section: plan it again" };
  $("#plan-ct-status").textContent = ct.made
    ? `llm-compressor makes ${ct.groups.length === 1 ? "this group" : "these groups"} of the ` +
      "plan (a QuantizationModifier recipe; each group quantizes the weights of the modules it " +
      "targets):"
    : `No llm-compressor recipe: ${sentence(ct.reason)}`;
  const groups = ct.made ? ct.groups.map((g) => item(`${g.format}: ` +
    `${plural(g.targets.length, "module")}${g.notes.length ? ` (${g.notes.join("; ")})` : ""}.`))
    : [];
  // formats the recipe leaves out that another tool makes are said here; those no tool makes
  // are said once, below
  const elsewhere = ct.made ? ct.not_made.filter((n) => !plan.not_made
    .some((m) => m.format === n.format)).map((n) => item(`Not in the recipe: ${n.format} ` +
    `(${plural(n.tensors, "tensor")}): ${sentence(n.reason)}`, "qc-plan-aside")) : [];
  $("#plan-ct-groups").replaceChildren(...groups, ...elsewhere);
  offer("llm_compressor", ct.made);
}

export function renderExports(plan, doc, request) {
  shown = { plan, request, stem: fileStem(doc) };
  renderLlama(plan, doc);
  renderCompressor(plan);
  $("#plan-not-made").replaceChildren(...plan.not_made.map((n) => item(`No known tool makes ` +
    `${n.format} (${plural(n.tensors, "tensor")} of this plan): the plan measures it, but ` +
    "nothing here exports it.")));
  const notes = [...(plan.notes ?? []), ...(plan.llama_quantize.notes ?? [])]
    .filter((note) => !(plan.llama_quantize.made && !plan.llama_quantize.base
      && note === plan.llama_quantize.notes[0]));
  $("#plan-notes").replaceChildren(...notes.map((note) => item(`Note: ${sentence(note)}`)));
  $("#plan-download-status").textContent = "";
}

async function download(kind) {
  if (!shown) return;
  const { plan, request, stem } = shown;
  const note = $("#plan-download-status");
  note.textContent = kind === "pdf" ? "Preparing the PDF…" : "Preparing…";
  const reply = await engine.request("plan_export", { ...request, kind });
  if (reply.error) {
    note.textContent = `Download failed: ${reply.error.message}`;
    return;
  }
  if (!reply.bytes?.length) {
    note.textContent = "Download failed: the engine made an empty file.";
    return;
  }
  const name = saveBlob(reply, FILE_NAMES[kind](stem));
  note.textContent = `Saved ${name} (the plan at ${plan.bits_per_weight.toFixed(3)} bits per ` +
    "weight).";
}

async function copyCommand() {
  const note = $("#plan-download-status");
  const text = shown?.plan.llama_quantize.command;
  if (!text) {
    note.textContent = "There is no llama-quantize command for this plan to copy.";
    return;
  }
  try {
    if (!navigator.clipboard) throw new Error("no clipboard");
    await navigator.clipboard.writeText(text);
    note.textContent = "Copied the llama-quantize command.";
  } catch {
    // select the command so that the user's own copy takes it
    const range = document.createRange();
    range.selectNodeContents($("#plan-command"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("#plan-command").focus();
    note.textContent = "The browser did not let the page copy: the command is selected, press " +
      "Ctrl+C (⌘C on a Mac) to copy it.";
  }
}

export function wirePlanExports() {
  for (const button of $$("[data-plan-download]")) {
    button.addEventListener("click", () => download(button.dataset.planDownload));
  }
  $("#plan-copy").addEventListener("click", copyCommand);
}
