/* petcam's service worker (served as /sw.js by petcam_site/app_shell.py, which puts
 * self.PETCAM_SHELL = {version, staticPrefix, precache} in front of this file).
 *
 * It caches the app shell only: same-origin GETs under the static prefix (CSS, JS,
 * icons). Pages (they carry the user's data), the API, recordings and their HLS, the
 * WebRTC signaling and WebSockets never pass through it: the fetch handler returns
 * without answering them and the browser goes to the network as usual. Each deploy
 * (new static files) gets a new cache; the old ones are deleted on activation.
 */
const SHELL = self.PETCAM_SHELL;
const CACHE = "petcam-shell-" + SHELL.version;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL.precache))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n.startsWith("petcam-shell-") && n !== CACHE)
      .map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

function isShell(request) {
  const url = new URL(request.url);
  return request.method === "GET" && url.origin === self.location.origin &&
    url.pathname.startsWith(SHELL.staticPrefix) && !request.headers.has("range");
}

async function fromShellCache(request) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(request, {ignoreSearch: false});
  if (hit) return hit;
  const response = await fetch(request);
  // Only complete, same-origin answers: never a 404 or an opaque/partial response.
  if (response.status === 200 && response.type === "basic") {
    cache.put(request, response.clone());
  }
  return response;
}

self.addEventListener("fetch", (event) => {
  if (isShell(event.request)) event.respondWith(fromShellCache(event.request));
});
