// Results the engine has computed, kept in this browser so that a return visit (a reload, a
// shared link opened again, the same documentation page) shows them at once, while Python is
// still starting. An entry is keyed by the exact settings and values AND by the build: a new
// build (a fixed formula, another Pyodide) never shows an older build's numbers, and the service
// worker deletes the older builds' caches when it takes over.
//
// Only pasted values are kept (a loaded file is not kept across visits either), and only small
// ones: the entry holds every per-value row and the figures' SVG text (as stored-json.js writes
// them: typed arrays and infinite numbers come back as they were).
import { fromJson, toJson } from "./stored-json.js";

export const MAX_VALUES = 20_000;  // rows of the per-value table an entry may hold
const MAX_ENTRIES = 12;             // the oldest goes first
const VERSION = 1;                  // bump when the entry's shape changes

// The build's id is the name of the folder this file is served from: app/<build>/.
const BUILD = new URL(".", import.meta.url).pathname.split("/").filter(Boolean).at(-1);
const CACHE = `quantcalc-${BUILD}-results`;

function usable(request) {
  return "caches" in globalThis && typeof request.source.text === "string"
    && globalThis.crypto?.subtle !== undefined;
}

// A stable address for one request: the SHA-256 of its settings (sorted) and values.
async function addressOf(request) {
  const config = Object.fromEntries(Object.entries(request.config).sort());
  const text = JSON.stringify({ version: VERSION, config, values: request.source.text });
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return new URL(`quantcalc-result/${hex}`, location.origin).href;
}

// The saved {reply, figures} for this request, or null. Never throws: a broken or
// unavailable cache only means the engine computes the result as usual.
export async function find(request) {
  if (!usable(request)) return null;
  try {
    const response = await caches.match(await addressOf(request), { cacheName: CACHE });
    return response ? fromJson(await response.text()) : null;
  } catch {
    return null;
  }
}

// Keep the engine's reply and its figures ([{name, title, svg, where}], drawn for the colour
// scheme `theme`) for this request.
export async function keep(request, reply, figures, theme) {
  if (!usable(request) || reply.summary.count > MAX_VALUES) return;
  try {
    const cache = await caches.open(CACHE);
    const body = toJson({ reply, figures, theme });
    await cache.put(await addressOf(request),
      new Response(body, { headers: { "Content-Type": "application/json" } }));
    const entries = await cache.keys(); // in the order they were put
    await Promise.all(entries.slice(0, Math.max(0, entries.length - MAX_ENTRIES))
      .map((entry) => cache.delete(entry)));
  } catch {
    // full storage or private mode: nothing is lost but the shortcut
  }
}
