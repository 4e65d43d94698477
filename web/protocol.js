// The messages between the page (engine.js) and the worker (worker.js), declared once.
export const MSG = Object.freeze({
  call: "call",                   // page -> worker {id, op, args}: quantcalc.api.<op>(**args)
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

// The quantcalc.api functions the page may call. The page names each argument as the Python
// function does ({config, source, analysis_id}); the worker calls it by keyword, so the order of
// Python's parameters does not matter here. Each op lists the callbacks the worker adds, by
// their Python parameter's name, and what each sends the page as partial data:
//   figure    {name, title, svg, where}: a figure as soon as it is drawn
//   phase     {progress: {phase, fraction}}: how far an analysis has come
//   row       {row}: a scanned tensor
//   scanned   {progress: {bytes, total_bytes, ..., memory_bytes}}: how far a scan (or an
//             audit) has come
const FIGURE = Object.freeze({ on_figure: "figure" });
export const CALLS = Object.freeze({
  analyze: { on_progress: "phase" },
  figures_svg: FIGURE,
  readout: {},
  conventions: {},
  export: {},
  describe_file: {},
  describe_imatrix: {},
  compare_presets: {},
  compare: {},
  compare_figures: FIGURE,
  compare_export: {},
  scan_list: {},
  scan_model: { on_row: "row", on_progress: "scanned" },
  scan_document: {},
  scan_figures: FIGURE,
  scan_export: {},
  audit_list: {},
  audit_model: { on_row: "row", on_progress: "scanned" },
  audit_document: {},
  audit_figures: FIGURE,
  audit_export: {},
  plan: {},
  plan_figure: FIGURE,
  plan_export: {},
  set_figure_theme: {},
});

// Calls that draw with matplotlib (the worker loads it first): those that stream figures, and
// any report asked for as a PDF.
export const needsMatplotlib = (op, args) => "on_figure" in (CALLS[op] ?? {})
  || args.kind === "pdf";
