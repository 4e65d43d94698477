// A loaded file: kept as the user's File (never read into the page); the worker mounts it and
// Python reads it there. Each file gets an id so the worker mounts it once. Also the guard that
// turns a paste too big for the values box into a file.
import { $, engine, state } from "./store.js";
import { clearErrors, form, showError } from "./form.js";
import { fileType } from "./file-types.js";

// Python reads the chosen tensor of some file types by offset (file-types.js), so such a file
// may be of any size; the others are read whole into the page's WebAssembly memory (at most
// 4 GB, and one buffer of at most 2 GiB).
export const MAX_FILE_BYTES = 2 ** 31 - 1;
// Chromium's text box slows to a crawl and then crashes past a few million characters.
export const MAX_PASTE_CHARS = 1_000_000;
const LISTED_TENSORS = 200;   // the chooser shows this many matches of the filter
let nextFileId = 1;

export async function takeFile(file) {
  clearErrors();
  const loaded = { id: `f${nextFileId++}`, name: file.name, size: file.size, file };
  state.file = loaded;
  $("#file-info").textContent = `Using ${file.name} (${formatBytes(file.size)}).`;
  $("#clear-file").hidden = false;
  markValuesUnused(true);
  tensorChooser.set([]);
  const type = fileType(file.name);
  if (file.size > MAX_FILE_BYTES && !type?.by_offset) {
    showError({ field: "file", message: `${file.name} is ${formatBytes(file.size)}; files of ` +
      "2 GiB or more cannot be read here yet: Python in this page reads a file of this type " +
      "whole into its memory (one buffer of at most 2 GiB, 4 GB in all). Save the tensor you " +
      "need to its own .safetensors file (read by offset, any size)." }, { fileLoaded: true });
    return;
  }
  if (!type?.several) return; // one array: nothing to choose
  await engine.whenReady();
  const reply = await engine.request("describe_file", { source: fileSource(loaded) });
  if (state.file !== loaded) return; // another file was chosen meanwhile
  if (reply.error) {
    showError({ ...reply.error, field: "file" }, { fileLoaded: true });
    return;
  }
  tensorChooser.set(reply.tensors, null, reply.details);
  nameAfterTensor();
}

// The tensor's name goes into the Name field, unless the user typed a name of their own.
let filledName = null;
function nameAfterTensor() {
  const field = form.elements.name;
  const tensor = $("#tensor").value;
  if (!tensor || (field.value.trim() && field.value !== filledName && field.value !== "tensor")) return;
  field.value = tensor;
  filledName = tensor;
  field.dispatchEvent(new Event("input", { bubbles: true })); // kept like typed input
}

// A chooser: a filter box and the first matches of a list of names, so a file of 700,000
// tensors does not build a menu of 700,000 options (that froze the tab for 10 s).
function makeChooser(select, filter, count, wrapper, noun) {
  let names = [];
  let details = new Map(); // name -> "4096 × 4096 BF16"
  const show = () => {
    const chooser = $(select);
    const wanted = $(filter).value.trim().toLowerCase();
    const previous = chooser.value;
    const matches = [];
    let found = 0;
    for (const name of names) {
      if (wanted && !name.toLowerCase().includes(wanted)) continue;
      found += 1;
      if (matches.length < LISTED_TENSORS) matches.push(name);
    }
    chooser.replaceChildren(...matches.map((name) =>
      new Option(details.get(name) ? `${name} — ${details.get(name)}` : name, name)));
    chooser.value = matches.includes(previous) ? previous : (matches[0] ?? "");
    $(count).textContent = names.length < 2 ? ""
      : `${found.toLocaleString("en")} of ${names.length.toLocaleString("en")} ${noun} match` +
        (found > matches.length ? `; the first ${matches.length} are listed` : "");
  };
  $(filter).addEventListener("input", show);
  return {
    set(list, preferred = null, about = []) {
      names = list;
      details = new Map(list.map((name, i) => [name, about[i] ?? ""]));
      $(filter).value = "";
      $(wrapper).hidden = list.length < (noun === "tensors" ? 2 : 1);
      if (preferred && list.includes(preferred)) $(filter).value = preferred;
      show();
      if (preferred && list.includes(preferred)) $(select).value = preferred;
    },
  };
}

const tensorChooser = makeChooser("#tensor", "#tensor-filter", "#tensor-count",
  ".qc-tensor-choice", "tensors");

// While a file is in use the typed values are kept but not used: the box says so.
function markValuesUnused(unused) {
  form.elements.values.closest(".qc-field").classList.toggle("qc-unused", unused);
  $("#values-unused").hidden = !unused;
  $("#drop-prompt").hidden = unused; // the drop zone's prompt gives way to the file in use
}

export function forgetFile() {
  state.file = null;
  markValuesUnused(false);
  form.elements.file.value = "";
  $("#file-info").textContent = "";
  $("#clear-file").hidden = true;
  tensorChooser.set([]);
}

function fileSource(loaded, tensor = null) {
  return { file_id: loaded.id, file: loaded.file, tensor };
}

// A tensor of the scanned checkpoint (scan.js): read by offset from the files the scan mounted,
// so the calculator opens it without the user choosing a file again.
export function useCheckpointTensor({ scanId, files, tensor }) {
  clearErrors();
  state.file = { id: `checkpoint-${scanId}`, name: tensor, size: 0, file: null,
    checkpoint: { id: scanId, files }, tensor };
  form.elements.file.value = "";
  $("#file-info").textContent = `Using ${tensor} from the scanned checkpoint.`;
  $("#clear-file").hidden = false;
  markValuesUnused(true);
  tensorChooser.set([]);
}

// What the values come from: the loaded file (and the chosen tensor), or the typed values; with
// the importance matrix where the format uses one.
export function readSource() {
  const source = state.file?.checkpoint
    ? { checkpoint_files: state.file.checkpoint, tensor: state.file.tensor }
    : state.file ? fileSource(state.file, $("#tensor").value || null)
      : { text: form.elements.values.value };
  if (state.imatrix && !$("#imatrix-choice").hidden) {
    source.imatrix = { file_id: state.imatrix.id, file: state.imatrix.file,
      entry: $("#imatrix-entry").value || null };
  }
  return source;
}

// ------------------------------------------------------------------ importance matrix
const imatrixChooser = makeChooser("#imatrix-entry", "#imatrix-filter", "#imatrix-count",
  "#imatrix-entries", "entries");

async function takeImatrix(file) {
  clearErrors();
  const loaded = { id: `f${nextFileId++}`, name: file.name, file };
  state.imatrix = loaded;
  $("#imatrix-info").textContent = `Using ${file.name} (${formatBytes(file.size)}).`;
  $("#clear-imatrix").hidden = false;
  imatrixChooser.set([]);
  await engine.whenReady();
  const reply = await engine.request("describe_imatrix", { spec: { file_id: loaded.id, file } });
  if (state.imatrix !== loaded) return;
  if (reply.error) {
    showError({ ...reply.error, field: "imatrix" });
    return;
  }
  const wanted = $("#tensor").value || form.elements.name.value.trim();
  imatrixChooser.set(reply.entries, wanted);
  $("#imatrix-info").textContent = `Using ${file.name}: ${reply.entries.length} entries` +
    (reply.chunk_count ? `, measured on ${reply.chunk_count} chunks` : "") +
    (reply.datasets.length ? ` of ${reply.datasets.join(", ")}` : "") + ".";
}

function forgetImatrix() {
  state.imatrix = null;
  form.elements.imatrix.value = "";
  $("#imatrix-info").textContent = "";
  $("#clear-imatrix").hidden = true;
  imatrixChooser.set([]);
}

export function formatBytes(n) {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

// A paste too long for the box becomes a file of pasted values (what the box holds is kept).
function guardPaste(event) {
  const text = event.clipboardData?.getData("text/plain") ?? "";
  if (text.length <= MAX_PASTE_CHARS) return;
  event.preventDefault();
  takeFile(new File([text], "pasted-values.txt", { type: "text/plain" }));
  $("#file-info").textContent = `The paste (${formatBytes(text.length)}) is too long for the ` +
    "box, so it is used as a file, pasted-values.txt; Calculate reads it.";
}

export function wireFileInputs() {
  form.elements.file.addEventListener("change", () => {
    const file = form.elements.file.files[0];
    if (file) takeFile(file);
  });
  $("#clear-file").addEventListener("click", forgetFile);
  $("#tensor").addEventListener("change", nameAfterTensor);
  form.elements.imatrix.addEventListener("change", () => {
    const file = form.elements.imatrix.files[0];
    if (file) takeImatrix(file);
  });
  $("#clear-imatrix").addEventListener("click", forgetImatrix);
  form.elements.values.addEventListener("paste", guardPaste);
  const dropzone = $("#dropzone");
  dropzone.addEventListener("dragover", (event) => {
    event.preventDefault();
    dropzone.classList.add("qc-dragover");
  });
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("qc-dragover"));
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropzone.classList.remove("qc-dragover");
    const file = event.dataTransfer.files[0];
    if (file) takeFile(file);
  });
}

// Dropped files, or every file inside dropped folders (read through the entries API), for
// wireDropZone.
async function droppedFiles(transfer) {
  const entries = [...transfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (entries.length === 0) return [...transfer.files];
  const files = [];
  const walk = async (entry) => {
    if (entry.isFile) {
      files.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
      return;
    }
    const reader = entry.createReader();
    for (;;) { // readEntries answers in batches until an empty one
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (batch.length === 0) break;
      for (const child of batch) await walk(child);
    }
  };
  for (const entry of entries) await walk(entry);
  return files;
}

// A drop zone: files or folders dropped on it go to `take`; a folder the browser cannot read
// is said through `refuse(message)`.
export function wireDropZone(zone, take, refuse) {
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("qc-dragover");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("qc-dragover"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("qc-dragover");
    try {
      take(await droppedFiles(event.dataTransfer));
    } catch (error) {
      refuse(`The dropped folder could not be read (${error.message ?? error}); ` +
        "choose it with the folder button instead.");
    }
  });
}
