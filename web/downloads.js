// Downloads: the engine writes the bytes (CSV, PDF) of the analysis it kept for the request; the
// page hands them to the browser as a Blob. Nothing leaves the machine.
import { $, engine, state } from "./store.js";

export function safeFileName(name) {
  const cleaned = name.normalize("NFKD").replace(/[^\w.-]+/g, "_").replace(/^[._]+/, "")
    .slice(0, 80);
  return cleaned || "tensor";
}

const SUFFIX = { csv: "_values.csv", summary_csv: "_summary.csv", pdf: "_report.pdf" };

export async function download(kind) {
  if (!state.request) return;
  const note = $("#download-status");
  if (engine.state !== "ready") {
    note.textContent = "Waiting for the calculator to start…";
    await engine.whenReady();
  }
  note.textContent = kind === "pdf" ? "Preparing the PDF…" : "Preparing…";
  const { config, source, id } = state.request;
  const reply = await engine.request("export", { config, source, kind, analysis_id: id });
  if (reply.error) {
    note.textContent = `Download failed: ${reply.error.message}`;
    return;
  }
  note.textContent = `Saved ${saveBlob(reply, safeFileName(config.name) + SUFFIX[kind])}.`;
}

// Hand the engine's bytes to the browser as a download; returns the file name.
export function saveBlob({ bytes, mime }, fileName) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes], { type: mime }));
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  return fileName;
}

// One report of a document the engine made (a scan's, an audit's): asked of `op` by kind, saved
// as `stem.kind`, its progress and outcome said in `note`.
export async function downloadReport(op, document, kind, note, stem) {
  note.textContent = kind === "pdf" ? "Preparing the PDF…" : "Preparing…";
  const reply = await engine.request(op, { document, kind });
  if (reply.error) {
    note.textContent = `Download failed: ${reply.error.message}`;
    return;
  }
  note.textContent = `Saved ${saveBlob(reply, `${stem}.${kind}`)}.`;
}
