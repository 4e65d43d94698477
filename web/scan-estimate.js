// Quick estimate or exact: the scan's choice (Quick is the default for checkpoints over 1 GiB,
// until the user chooses), the line that says which of a scan's errors are estimates, and the
// controls that make an estimated scan exact for the tensors picked in the table or the worst N
// shown, scanned again exactly on the pool. The engine (scan/estimated.py) does the estimating
// and, from all the rows, builds the document again: the design stays that Python builds it.
import { $, $$, engine } from "./store.js";
import { formatBytes } from "./files.js";
import { scanOnPool } from "./scan-pool.js";

export const QUICK = Object.freeze({ db: 0.1, seed: 0 }); // what "Quick estimate (±0.1 dB)" asks
const QUICK_ABOVE_BYTES = 2 ** 30;
let chosenByUser = false;
let controlsOff = false; // a scan is running, or the files are not chosen

// A result measured on a sample (its SQNR has a half-width), and a tensor with one such result.
export const isEstimate = (result) => Number(result?.sqnr_ci_db) > 0;
export const isEstimated = (tensor) => tensor.results.some(isEstimate);

// "± 0.097": the half-width to two significant digits, as the command line's reports give it.
export const plusMinus = (half) => (Number.isFinite(half) && half > 0
  ? ` ± ${Number(half.toPrecision(2))}` : "");

// {db, seed} for a scan started now, or null for exact results.
export const estimateAsked = () => ($("#scan-mode-quick").checked ? { ...QUICK } : null);

// The keyword arguments of scan_model and scan_document for `estimate` (none when exact).
export const estimateArgs = (estimate) => (estimate
  ? { estimate_db: estimate.db, estimate_seed: estimate.seed } : {});

// A checkpoint of `bytes` was chosen: Quick above 1 GiB, Exact otherwise, unless the user chose.
export function chooseForSize(bytes) {
  if (chosenByUser) return;
  const quick = bytes > QUICK_ABOVE_BYTES;
  $(quick ? "#scan-mode-quick" : "#scan-mode-exact").checked = true;
  $("#scan-mode-note").textContent = quick
    ? `Quick estimate chosen: these files are ${formatBytes(bytes)}, over 1 GiB.`
    : `Exact chosen: these files are ${formatBytes(bytes)}, 1 GiB or less.`;
}

export function choiceState() {
  return { quick: $("#scan-mode-quick").checked, chosenByUser };
}

export function restoreChoice(state) {
  if (!state) return;
  $(state.quick ? "#scan-mode-quick" : "#scan-mode-exact").checked = true;
  chosenByUser = Boolean(state.chosenByUser);
}

// What the status line adds when a scan finishes: "" for an exact scan.
export function statusWords(doc) {
  const target = doc?.estimate;
  return target ? ` A quick estimate: each SQNR within ±${target.db} dB (95 % interval), ` +
    `seed ${target.seed}.` : "";
}

// The results' header line, the figures' note and the make-exact controls for `doc`.
// `madeExact`: how many tensors were measured again exactly; `why`: the reason the controls are
// off (no files, a scan running), or "".
export function showEstimate(doc, { madeExact = 0, why = "" } = {}) {
  const tensors = doc?.tensors ?? [];
  const estimated = tensors.filter(isEstimated).length;
  const target = doc?.estimate;
  const note = $("#scan-estimate-note");
  if (target) {
    note.textContent = `Quick estimate (±${target.db} dB, seed ${target.seed}): ` +
      (estimated
        ? `${estimated} of ${tensors.length} tensors ${estimated === 1 ? "has" : "have"} ` +
          "errors estimated from a random sample of rows, shown as “± half-width” (95 % " +
          "interval); statistics, scale ranges and the other tensors are exact."
        : "every tensor was measured exactly (too small, 1-D or not worth sampling).") +
      (madeExact ? ` ${madeExact} made exact since.` : "");
  } else {
    note.textContent = madeExact ? `Exact: every tensor is measured exactly now (${madeExact} ` +
      "made exact after a quick estimate)." : "";
  }
  $("#scan-estimate").hidden = !note.textContent;
  $("#scan-figures-note").hidden = !estimated;
  $("#scan-exact-controls").hidden = !estimated;
  controlsOff = Boolean(why);
  for (const control of $$("#scan-exact-controls :is(button, input)")) {
    control.disabled = controlsOff;
  }
  updatePicked();
  $("#scan-exact-why").textContent = why;
}

// The picked tensors, as the table's checkboxes say.
export const picked = new Set();

export function updatePicked() {
  const button = $("#scan-exact-picked");
  button.textContent = picked.size
    ? `Make the ${picked.size} picked tensor${picked.size === 1 ? "" : "s"} exact`
    : "Make the picked tensors exact";
  button.disabled = picked.size === 0 || controlsOff;
}

function worstCount() {
  const n = Math.floor(Number($("#scan-exact-count").value));
  return Number.isFinite(n) && n >= 1 ? n : 0;
}

// The tensors `names` of the finished estimated scan `scan` (scan.js's state) scanned again
// exactly, as a scan is; their rows replace the estimated ones as they come, and the engine
// builds the document again from all the rows: the totals, and "estimate" while any tensor is
// still an estimate (with none left, it is the exact scan's document). `views`: scan.js's
// renderSoon, showProgress(state|null), useDocument(doc) and wholeValues.
async function makeExact(names, scan, views) {
  const done = scan.doc;
  if (scan.running || !done?.totals || !scan.scanned || names.length === 0) return;
  const run = {};
  const files = scan.scanned;
  const at = new Map(scan.rows.map((t, i) => [t.name, i]));
  const tensors = scan.rows.filter((t) => names.includes(t.name))
    .map((t) => ({ name: t.name, bytes: t.bytes ?? 0 }));
  Object.assign(scan, { running: run, rows: [...scan.rows] });
  let replaced = 0;
  const plural = tensors.length === 1 ? "" : "s";
  showEstimate(done, { madeExact: scan.madeExact, why: `Measuring ${tensors.length} tensor` +
    `${plural} exactly…` });
  busy(true);
  $("#scan-status").textContent = `Measuring ${tensors.length} tensor${plural} exactly; the ` +
    "totals follow when they are done.";
  const failure = await scanOnPool({ files, specs: scan.specs, imatrix: scan.imatrix,
    wholeValues: views.wholeValues, tensors,
    onRow: (row) => {
      if (scan.running !== run) return;
      scan.rows[at.get(row.name)] = row;
      replaced += 1;
      picked.delete(row.name);
      views.renderSoon();
    },
    onProgress: (progress) => scan.running === run && views.showProgress(progress) });
  if (scan.running !== run) return;
  await engine.whenReady(); // Cancel restarts the engine
  const estimate = scan.rows.some(isEstimated) ? done.estimate : null;
  const reply = replaced ? await engine.request("scan_document", { paths: files,
    specs: scan.specs, rows: scan.rows, ...estimateArgs(estimate) }) : { document: done };
  scan.running = null;
  busy(false, scan);
  views.showProgress(null);
  if (reply.error) {
    scan.rows = done.tensors;
    views.renderSoon();
    $("#scan-status").textContent = `Making tensors exact failed: ${reply.error.message}`;
    return;
  }
  scan.madeExact += replaced;
  views.useDocument(reply.document);
  const stopped = failure && failure.kind !== "cancelled" ? ` (stopped: ${failure.message})`
    : failure ? " (cancelled)" : "";
  $("#scan-status").textContent = `Measured ${replaced} of ${tensors.length} tensor${plural} ` +
    `exactly${stopped}; the totals are recomputed.`;
  document.body.dataset.exactRuns = String(Number(document.body.dataset.exactRuns || 0) + 1);
}

// While tensors are measured again: Cancel shown, Scan off, the old totals marked out of date.
function busy(on, scan) {
  $("#scan-totals-table").parentElement.classList.toggle("qc-stale", on);
  $("#scan-cancel").hidden = !on;
  $("#scan-start").disabled = on || !scan?.files;
}

// `scan`: scan.js's state; `views`: see makeExact, and worst(n), the n estimated tensors with
// the lowest SQNR among the rows the table's filters show.
export function wireEstimate(scan, views) {
  const makeExactNow = (names) => makeExact(names, scan, views);
  const worst = views.worst;
  for (const radio of $$("input[name=scan-mode]")) {
    radio.addEventListener("change", () => {
      chosenByUser = true;
      $("#scan-mode-note").textContent = "";
    });
  }
  $("#scan-exact-picked").addEventListener("click", () => makeExactNow([...picked]));
  const count = $("#scan-exact-count");
  const label = () => {
    const n = worstCount();
    $("#scan-exact-worst").textContent = n ? `Make the worst ${n} exact` : "Make the worst exact";
  };
  count.addEventListener("input", label);
  label();
  $("#scan-exact-worst").addEventListener("click", () => {
    const n = worstCount();
    if (!n) {
      $("#scan-exact-why").textContent = "Enter how many tensors: a whole number from 1.";
      return;
    }
    makeExactNow(worst(n));
  });
}
