// A loaded file: kept as the user's File (never read into the page); the worker mounts it and
// Python reads it there. Each file gets an id so the worker mounts it once.
import { $, engine, state } from "./store.js";
import { clearErrors, form, showError } from "./form.js";

const MULTI_TENSOR = /\.(npz|safetensors)$/i;
let nextFileId = 1;

export async function takeFile(file) {
  clearErrors();
  const loaded = { id: `f${nextFileId++}`, name: file.name, size: file.size, file };
  state.file = loaded;
  $("#file-info").textContent = `Using ${file.name} (${formatBytes(file.size)}).`;
  $("#clear-file").hidden = false;
  const chooser = $("#tensor");
  chooser.replaceChildren();
  $(".qc-tensor-choice").hidden = true;
  if (!MULTI_TENSOR.test(file.name)) return;
  await engine.whenReady();
  const reply = await engine.request("describe_file", [fileSource(loaded)]);
  if (state.file !== loaded) return; // another file was chosen meanwhile
  if (reply.error) {
    showError({ ...reply.error, field: "file" }, { fileLoaded: true });
    return;
  }
  for (const name of reply.tensors) chooser.append(new Option(name, name));
  $(".qc-tensor-choice").hidden = reply.tensors.length < 2;
}

export function forgetFile() {
  state.file = null;
  form.elements.file.value = "";
  $("#file-info").textContent = "";
  $("#clear-file").hidden = true;
  $(".qc-tensor-choice").hidden = true;
  $("#tensor").replaceChildren();
}

function fileSource(loaded, tensor = null) {
  return { file_id: loaded.id, file: loaded.file, tensor };
}

// What the values come from: the loaded file (and the chosen tensor), or the typed values.
export function readSource() {
  if (state.file) return fileSource(state.file, $("#tensor").value || null);
  return { text: form.elements.values.value };
}

export function formatBytes(n) {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function wireFileInputs() {
  form.elements.file.addEventListener("change", () => {
    const file = form.elements.file.files[0];
    if (file) takeFile(file);
  });
  $("#clear-file").addEventListener("click", forgetFile);
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
