// The messages between the page (engine.js) and the worker (worker.js), declared once.
export const MSG = Object.freeze({
  call: "call",                   // page -> worker {id, op, args}: call quantcalc.api.<op>(...args)
  loadFigures: "load-figures",    // page -> worker: load matplotlib now
  progress: "progress",           // worker -> page {phase, text}: a start-up phase began
  ready: "ready",                 // worker -> page {phases}: Python and quantcalc are in
  bootFailed: "boot-failed",      // worker -> page {message}
  figuresReady: "figures-ready",  // worker -> page {phases}: matplotlib is in
  figuresFailed: "figures-failed",
  partial: "partial",             // worker -> page {id, data}: a piece of a reply (one figure)
  reply: "reply",                 // worker -> page {id, result}: a call's plain result
  fatal: "fatal",                 // worker -> page {message}: Python cannot run any more
});

// The quantcalc.api functions the page may call, and those that send figures as they are drawn.
export const CALLS = Object.freeze(["analyze", "figures_svg", "export", "describe_file",
  "describe_imatrix",
  "compare_presets", "compare", "compare_figures", "compare_export",
  "scan_list", "scan_model", "scan_document", "scan_figures", "scan_export", "plan", "plan_figure", "plan_export",
  "set_figure_theme", "readout"]);
export const STREAMS_FIGURES = Object.freeze(["figures_svg", "compare_figures", "scan_figures",
  "plan_figure"]);
export const REPORTS_PROGRESS = Object.freeze(["analyze"]);
