// The last finished (or cancelled) model scan, kept in this browser's Cache Storage so a reload
// does not lose it, until the user clears it. Keyed by the build, like saved results: a newer
// build computes with newer code, and the service worker deletes older builds' caches. The scan
// goes through stored-json.js, which keeps its infinite numbers (an exact format's SQNR). What
// scan.js keeps: {doc (its "estimate" too), files (names), specs, choice (Quick or Exact, and
// whether the user chose it), madeExact (tensors of an estimate measured again exactly)}.
import { fromJson, toJson } from "./stored-json.js";

const BUILD = new URL(".", import.meta.url).pathname.split("/").filter(Boolean).at(-1);
const CACHE = `quantcalc-${BUILD}-scan`;
const ADDRESS = new URL("quantcalc-scan/last", location.origin).href;

export async function load() {
  if (!("caches" in globalThis)) return null;
  try {
    const response = await caches.match(ADDRESS, { cacheName: CACHE });
    return response ? fromJson(await response.text()) : null;
  } catch {
    return null;
  }
}

export async function keep(saved) {
  if (!("caches" in globalThis)) return;
  try {
    const cache = await caches.open(CACHE);
    await cache.put(ADDRESS, new Response(toJson(saved),
      { headers: { "Content-Type": "application/json" } }));
  } catch {
    // full storage or private mode: the scan is still shown, only not kept
  }
}

export async function clear() {
  if (!("caches" in globalThis)) return;
  try {
    await (await caches.open(CACHE)).delete(ADDRESS);
  } catch {
    // nothing kept
  }
}
