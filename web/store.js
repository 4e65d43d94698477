// What the page shows now, shared by the modules that render it and act on it, and the one
// engine they all talk to.
import { Engine } from "./engine.js";

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

export const state = {
  file: null,             // {id, name, size, file: File}: the loaded file; null for typed values
  request: null,          // {id, config, source}: what the results shown were computed from
  reply: null,            // the engine's reply for it ({summary, per_value})
  summary: null,
  perValue: null,
  page: 0,                // of the per-value table
  figuresWanted: false,   // the figures of `request` are still to be drawn
  logCounts: false,       // the histogram draws its counts on a log axis (figures.js)
  pendingCalculate: false, // Calculate was pressed while Python was starting
  compareArgs: null,      // the arguments of the comparison shown
  imatrix: null,          // {id, name, file}: llama.cpp's importance matrix, if one is loaded
};

// Test hooks live outside the address bar, so a shared link can never reach them: a test sets
// globalThis.quantcalcTestHooks before the page's scripts run (Playwright's add_init_script).
const hooks = globalThis.quantcalcTestHooks ?? {};
export const engine = new Engine({ bootTimeoutMs: hooks.bootTimeoutMs });

let nextId = 1;
export const newRequestId = () => `r${nextId++}`;

// A table that rows stream into, drawn at most every `ms`: soon() asks for a redraw (one is
// scheduled if none is), now() draws at once and drops the scheduled one. The scan's and the
// audit's tables use it, so hundreds of rows arriving do not redraw hundreds of times.
export function batchedRender(render, ms = 250) {
  let timer = null;
  const now = () => {
    clearTimeout(timer);
    timer = null;
    render();
  };
  return { now, soon: () => { timer ??= setTimeout(now, ms); } };
}
