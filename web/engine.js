// The page's side of the worker: request ids, boot progress, a boot timeout, and recovery. If the
// worker dies or Python fails fatally after start-up, every waiting request is answered with an
// error (never left waiting) and a new worker is started; the page keeps its form and file.
import { MSG } from "./protocol.js";
import { figureTheme } from "./theme.js";

const BOOT_TIMEOUT_MS = 120_000;

export class Engine extends EventTarget {
  constructor({ workerUrl = new URL("./worker.js", import.meta.url),
    bootTimeoutMs = BOOT_TIMEOUT_MS, figures = true } = {}) {
    super();
    this.workerUrl = workerUrl;
    this.figures = figures; // false: a helper that never draws, so matplotlib is not loaded
    this.bootTimeoutMs = bootTimeoutMs || BOOT_TIMEOUT_MS;
    this.pending = new Map();
    this.nextId = 1;
    this.start();
  }

  // (Re)start the worker. A boot that neither succeeds nor fails in time (a wrong wasm MIME type
  // can make Pyodide wait forever) is reported as failed so the page can offer a retry.
  start() {
    this.worker?.terminate();
    this.answerPending("the calculator restarted before answering; please try again");
    this.state = "booting";
    this.figuresReady = false;
    performance.mark("quantcalc:worker-created"); // read by bench/startup.py
    this.worker = new Worker(this.workerUrl, { type: "module" });
    this.worker.onmessage = (event) => this.receive(event.data);
    this.worker.onerror = (event) => {
      event.preventDefault?.();
      this.crashed(event.message || "the Python worker stopped");
    };
    clearTimeout(this.bootTimer);
    this.bootTimer = setTimeout(
      () => this.fail(`Python did not start within ${this.bootTimeoutMs / 1000} s`),
      this.bootTimeoutMs);
  }

  // Resolve every waiting request with an error the page shows at its field.
  answerPending(message, kind = "engine") {
    for (const { resolve } of this.pending.values()) {
      resolve({ error: { kind, field: "values", message } });
    }
    this.pending.clear();
    this.emit("busy", { pending: 0 });
  }

  // Stop whatever the worker is computing: Python cannot be interrupted from outside, so the
  // worker is replaced (a few seconds, from the browser's cache). The page keeps everything.
  cancel() {
    if (this.state !== "ready" || this.pending.size === 0) return;
    this.answerPending("cancelled", "cancelled");
    this.emit("restarting", { message: "Cancelled. The calculator is restarting; your settings " +
      "and values are kept." });
    this.start();
  }

  fail(message) {
    if (this.state !== "booting") return;
    clearTimeout(this.bootTimer);
    this.state = "failed";
    this.worker.terminate();
    this.answerPending(`the calculator could not start: ${message}`);
    this.emit("failed", { message });
  }

  // After start-up: the worker died or Python can no longer run. Say so, start afresh.
  crashed(message) {
    if (this.state === "booting") {
      this.fail(message);
      return;
    }
    const text = `The calculator stopped (${message}) and is restarting; your settings and ` +
      "values are kept. Press Calculate again once it is ready.";
    this.answerPending(text);
    this.emit("restarting", { message: text });
    this.start();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  receive(message) {
    switch (message.type) {
      case MSG.progress:
        this.emit("progress", message);
        break;
      case MSG.ready:
        clearTimeout(this.bootTimer);
        this.state = "ready";
        this.emit("ready", message); // listeners send their waiting requests first...
        if (this.figures) { // ...then matplotlib, drawing for the page's colour scheme
          this.worker.postMessage({ type: MSG.loadFigures, theme: figureTheme() });
        }
        break;
      case MSG.bootFailed:
        this.fail(message.message);
        break;
      case MSG.fatal:
        this.crashed(message.message);
        break;
      case MSG.figuresReady:
        this.figuresReady = true;
        this.emit("figures-ready", message);
        break;
      case MSG.figuresFailed:
        this.emit("figures-failed", message);
        break;
      case MSG.partial:
        this.pending.get(message.id)?.onPartial?.(message.data);
        break;
      case MSG.reply: {
        const entry = this.pending.get(message.id);
        if (entry) {
          this.pending.delete(message.id);
          entry.resolve(message.result);
          this.emit("busy", { pending: this.pending.size });
        }
        break;
      }
      default:
        break;
    }
  }

  // Resolve when the engine is ready (now or later), and when matplotlib is in.
  whenReady() {
    return this.state === "ready" ? Promise.resolve() : this.next("ready");
  }

  whenFiguresReady() {
    return this.figuresReady ? Promise.resolve() : this.next("figures-ready");
  }

  next(type) {
    return new Promise((resolve) => this.addEventListener(type, resolve, { once: true }));
  }

  // One call of quantcalc.api.<op>(**args), its arguments named as the Python function names
  // them (protocol.js); resolves with its plain result ({error: ...} on bad input or a failed
  // engine; it never rejects). `onPartial` receives pieces sent before the reply (figures, one
  // at a time).
  request(op, args = {}, onPartial = null) {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, { resolve, onPartial });
      this.worker.postMessage({ type: MSG.call, id, op, args });
      this.emit("busy", { pending: this.pending.size });
    });
  }
}
