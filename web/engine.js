// The page's side of the worker: request ids, boot progress, a boot timeout and restart.
const BOOT_TIMEOUT_MS = 120_000;

export class Engine extends EventTarget {
  constructor({ workerUrl = new URL("./worker.js", import.meta.url),
    bootTimeoutMs = BOOT_TIMEOUT_MS } = {}) {
    super();
    this.workerUrl = workerUrl;
    this.bootTimeoutMs = bootTimeoutMs;
    this.pending = new Map();
    this.nextId = 1;
    this.start();
  }

  // (Re)start the worker. A boot that neither succeeds nor fails in time (a wrong wasm MIME type
  // can make Pyodide wait forever) is reported as failed so the page can offer a retry.
  start() {
    this.worker?.terminate();
    for (const { reject } of this.pending.values()) reject(new Error("the engine restarted"));
    this.pending.clear();
    this.state = "booting";
    this.figuresReady = false;
    performance.mark("quantcalc:worker-created"); // read by bench/startup.py
    this.worker = new Worker(this.workerUrl, { type: "module" });
    this.worker.onmessage = (event) => this.receive(event.data);
    this.worker.onerror = (event) => {
      event.preventDefault?.();
      this.fail(event.message || "the Python worker could not start");
    };
    clearTimeout(this.bootTimer);
    this.bootTimer = setTimeout(
      () => this.fail(`Python did not start within ${this.bootTimeoutMs / 1000} s`),
      this.bootTimeoutMs);
  }

  fail(message) {
    if (this.state !== "booting") return;
    clearTimeout(this.bootTimer);
    this.state = "failed";
    this.worker.terminate();
    this.emit("failed", { message });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  receive(message) {
    switch (message.type) {
      case "progress":
        this.emit("progress", message);
        break;
      case "ready":
        clearTimeout(this.bootTimer);
        this.state = "ready";
        this.emit("ready", message); // listeners send their waiting requests first...
        this.worker.postMessage({ type: "load-figures" }); // ...then matplotlib loads
        break;
      case "boot-failed":
        this.fail(message.message);
        break;
      case "figures-ready":
        this.figuresReady = true;
        this.emit("figures-ready", message);
        break;
      case "figures-failed":
        this.emit("figures-failed", message);
        break;
      case "partial":
        this.pending.get(message.id)?.onPartial?.(message.data);
        break;
      case "reply": {
        const entry = this.pending.get(message.id);
        if (entry) {
          this.pending.delete(message.id);
          entry.resolve(message.result);
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

  // One call of quantcalc.api.<op>(...args); resolves with its plain result ({error: ...} on
  // bad input). `onPartial` receives pieces sent before the reply (figures, one at a time).
  request(op, args, onPartial = null) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onPartial });
      this.worker.postMessage({ id, op, args });
    });
  }
}
