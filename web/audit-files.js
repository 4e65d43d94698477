// The audit's two models, each chosen as files, a folder or a drop: the files a checkpoint
// reader takes (the scan's types: safetensors, shards and their index, config.json, GGUF),
// kept as File objects (never read here) with an id the worker mounts them under.
import { $ } from "./store.js";
import { formatBytes, wireDropZone } from "./files.js";
import { fileType, listed, takes } from "./file-types.js";

let nextId = 1;

export function auditError(field, message) {
  const node = $(`#error-audit-${field}`);
  node.textContent = message;
  node.hidden = !message;
}

// The files of one side, or null (the reason shown at its field).
function sideFiles(side, list) {
  const files = [...list].filter((file) => takes("scan", file.name));
  const names = new Set();
  for (const file of files) {
    if (names.has(file.name)) {
      auditError(side, `Two files are named ${file.name}; choose the files of one model.`);
      return null;
    }
    names.add(file.name);
  }
  if (files.filter((f) => fileType(f.name).reader !== "config").length === 0) {
    auditError(side, `No ${listed("scan")} files among those chosen.`);
    return null;
  }
  return files;
}

// Take a side's files: `chosen[side]` becomes {id, files}; onChange() after.
function take(chosen, side, list, onChange) {
  auditError(side, "");
  const files = sideFiles(side, list);
  if (!files) return;
  chosen[side] = { id: `a${nextId++}-${side}`, files };
  const data = files.filter((f) => !["index", "config"].includes(fileType(f.name).reader));
  const total = data.reduce((sum, f) => sum + f.size, 0);
  const extra = files.length - data.length;
  $(`#audit-${side}-info`).textContent = `${data.map((f) => f.name).slice(0, 2).join(", ")}` +
    `${data.length > 2 ? ` and ${data.length - 2} more` : ""} (${formatBytes(total)})` +
    (extra ? ` with ${extra === 1 ? "its index or config.json" : "its index and config.json"}` : "") +
    ": read in place, nothing is uploaded.";
  onChange();
}


// Wire the file, folder and drop inputs of "original" and "quantized" into `chosen`.
export function wireSides(chosen, onChange) {
  for (const side of ["original", "quantized"]) {
    for (const input of [`#audit-${side}-files`, `#audit-${side}-folder`]) {
      $(input).addEventListener("change", (event) =>
        event.target.files.length && take(chosen, side, event.target.files, onChange));
    }
    wireDropZone($(`#audit-${side}-drop`), (files) => take(chosen, side, files, onChange),
      (message) => auditError(side, message));
  }
}
