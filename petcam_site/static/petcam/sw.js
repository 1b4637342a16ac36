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

/* Phone notifications (events/push.py sends one per event start, encrypted for this
 * browser): {title, body, image, url, tag}. The image is the event's snapshot (or the
 * camera's live picture when the event has none yet), behind the login: fetched here
 * with the session's cookie and shown as a data: URL (the notification's own image fetch
 * would carry no cookie); a click opens url, the event on the events page. Only
 * same-site paths are followed. */
function sitePath(value) {
  return typeof value === "string" && value.startsWith("/") && !value.startsWith("//") ? value : null;
}

async function imageDataUrl(path) {
  try {
    const response = await fetch(path, {credentials: "same-origin"});
    const type = response.headers.get("content-type") || "";
    if (!response.ok || !type.startsWith("image/")) return null;
    const bytes = new Uint8Array(await response.arrayBuffer());
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return "data:" + type + ";base64," + btoa(text);
  } catch (error) {
    return null;  // offline or logged out: the notification goes without its picture
  }
}

async function showPush(data) {
  const image = sitePath(data.image) && await imageDataUrl(data.image);
  const options = {
    body: typeof data.body === "string" ? data.body : "",
    icon: SHELL.staticPrefix + "petcam/icon-192.png",
    badge: SHELL.staticPrefix + "petcam/icon-192.png",
    tag: typeof data.tag === "string" ? data.tag : undefined,
    data: {url: sitePath(data.url) || "/events/"},
  };
  if (image) options.image = image;
  return self.registration.showNotification(
    typeof data.title === "string" && data.title ? data.title : "petcam", options);
}

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (error) { data = {}; }
  event.waitUntil(showPush(data || {}));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL(event.notification.data && event.notification.data.url || "/events/",
                      self.location.origin).href;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({type: "window", includeUncontrolled: true});
    const open = windows.find((client) => new URL(client.url).pathname === new URL(url).pathname);
    if (open) {
      try {
        await open.focus();
        return await open.navigate(url);
      } catch (error) { /* not controlled by this worker: open a new window */ }
    }
    return self.clients.openWindow(url);
  })());
});
