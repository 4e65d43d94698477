// Offline use (the service worker, sw.js, and its "reload to update") and embedding (the height
// message an iframe's parent page listens for).
import { $ } from "./store.js";

export async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  const note = $("#offline-status");
  let updateRequested = false;
  try {
    const registration = await navigator.serviceWorker.register("sw.js");
    const offerUpdate = (worker) => {
      const button = $("#update-button");
      button.hidden = false;
      note.textContent = "A new version is available.";
      button.onclick = () => {
        updateRequested = true;
        worker.postMessage({ type: "skip-waiting" });
      };
    };
    navigator.serviceWorker.addEventListener("controllerchange", () => {
      if (updateRequested) location.reload();
    });
    if (registration.waiting && navigator.serviceWorker.controller) {
      offerUpdate(registration.waiting);
    }
    registration.addEventListener("updatefound", () => {
      const worker = registration.installing;
      worker?.addEventListener("statechange", () => {
        if (worker.state === "installed" && navigator.serviceWorker.controller) {
          offerUpdate(worker);
        }
      });
    });
    await navigator.serviceWorker.ready;
    if ($("#update-button").hidden) note.textContent = "Ready for offline use.";
    note.dataset.state = "ready";
  } catch (error) {
    note.textContent = `Offline use is unavailable here (${error.message}).`;
  }
}

// In an iframe, tell the parent page how tall the calculator is so the frame can fit it.
export function reportHeight() {
  if (window.parent === window) return;
  const send = () => window.parent.postMessage(
    { type: "quantcalc:height", height: document.documentElement.scrollHeight }, "*");
  new ResizeObserver(send).observe(document.body);
  send();
}
