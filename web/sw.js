// Service worker: everything the page needs is precached per build, so the calculator works
// offline after the first visit. build.py fills in BUILD and PRECACHE.
//
// - Assets (app/<build>/..., pyodide/...) are served cache-first from this build's cache. Their
//   URLs change with the build (app/) or the Pyodide version (pyodide/), so a cached file is
//   never stale and two builds never mix.
// - The page itself (a navigation) is network-first, so a new build shows up when online; it is
//   cached only when it is this build's page, and served from the cache when offline.
// - A new build's worker waits until the page asks it to take over ("reload to update").
const BUILD = "__BUILD__";
const PRECACHE = __PRECACHE__;
const CACHE = `quantcalc-${BUILD}`;
const NETWORK_TIMEOUT_MS = 4000;
const scoped = (path) => new URL(path, self.registration.scope).href;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(PRECACHE.map(scoped))));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    // quantcalc-<build> and quantcalc-<build>-results (the page's saved results) stay
    await Promise.all(names.filter((n) => n.startsWith("quantcalc-") && !n.startsWith(CACHE))
      .map((n) => caches.delete(n)));
    await self.clients.claim();
  })());
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "skip-waiting") self.skipWaiting();
});

async function fromNetworkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await Promise.race([
      fetch(request),
      new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")),
        NETWORK_TIMEOUT_MS)),
    ]);
    if (response.ok) {
      const text = await response.clone().text();
      if (text.includes(`app/${BUILD}/`)) await cache.put(scoped("./"), response.clone());
    }
    return response;
  } catch (error) {
    const cached = await cache.match(scoped("./"));
    if (cached) return cached;
    throw error;
  }
}

async function fromCacheFirst(request) {
  const cached = await caches.match(request.url, { cacheName: CACHE, ignoreSearch: true });
  if (!cached) return fetch(request);
  // The worker checks the wasm's MIME type with a HEAD request: answer it from the cache too.
  if (request.method === "HEAD") {
    return new Response(null, { status: cached.status, headers: cached.headers });
  }
  return cached;
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (!["GET", "HEAD"].includes(request.method) || !request.url.startsWith(self.registration.scope)) {
    return;
  }
  event.respondWith(request.mode === "navigate" ? fromNetworkFirst(request)
    : fromCacheFirst(request));
});
