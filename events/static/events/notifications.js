/* Phone notifications on the account page (templates/account.html, events/push_views.py):
 * subscribe this browser with Web Push (the site's VAPID key), choose cameras, classes
 * and quiet hours, and list or remove the user's devices. */
import {csrfToken} from "../petcam/csrf.js";
import {formZone} from "../petcam/zone.js";

const form = document.getElementById("notify-form");
const statusLine = document.getElementById("notify-status");
const enable = document.getElementById("notify-enable");
const save = document.getElementById("notify-save");
const disable = document.getElementById("notify-disable");
const list = document.getElementById("notify-devices");
const none = document.getElementById("notify-none");
const API = "/api/push/subscriptions/";
const supported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
let mine = null;  // this browser's row in the API, if subscribed

function say(text) { statusLine.textContent = text; }

async function api(method, url, body) {
  const response = await fetch(url, {
    method, headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json"},
    body: body === undefined ? undefined : JSON.stringify(body)});
  if (!response.ok && response.status !== 204) {
    let detail = interpolate(gettext("The server said %(status)s."), {status: response.status}, true);
    try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
    throw new Error(detail);
  }
  return response.status === 204 ? null : response.json();
}

function choices() {
  const data = new FormData(form);
  return {label: (data.get("label") || "").trim(), cameras: data.getAll("cameras"),
          classes: data.getAll("classes"), quiet_start: data.get("quiet_start") || null,
          quiet_end: data.get("quiet_end") || null,
          timezone: formZone()};
}

function fill(row) {
  form.elements.label.value = row.label;
  for (const box of form.querySelectorAll("input[name=cameras]")) box.checked = row.cameras.includes(box.value);
  for (const option of form.elements.classes.options) option.selected = row.classes.includes(option.value);
  form.elements.quiet_start.value = row.quiet_start || "";
  form.elements.quiet_end.value = row.quiet_end || "";
}

async function registration() {
  // app_shell.js registers /sw.js; give up rather than wait forever if it could not.
  return Promise.race([navigator.serviceWorker.ready,
    new Promise((_, reject) => setTimeout(() => reject(new Error(gettext("The app's service worker is not running."))), 10000))]);
}

async function currentEndpoint() {
  if (!supported) return null;
  try {
    const sub = await (await registration()).pushManager.getSubscription();
    return sub ? sub.endpoint : null;
  } catch { return null; }
}

function summary(row) {
  const parts = [row.cameras.length ? row.cameras.join(", ") : gettext("all cameras"),
                 row.classes.length ? row.classes.join(", ") : gettext("everything")];
  if (row.quiet_start) parts.push(interpolate(gettext("quiet %(start)s–%(end)s"), {start: row.quiet_start, end: row.quiet_end}, true));
  return parts.join(" · ");
}

async function refresh() {
  const [page, endpoint] = await Promise.all([api("GET", API), currentEndpoint()]);
  mine = page.results.find((row) => row.endpoint === endpoint) || null;
  list.replaceChildren();
  for (const row of page.results) {
    const item = document.createElement("li");
    item.dataset.testid = "notify-device";
    const text = document.createElement("span");
    text.textContent = (row.label || gettext("A device")) + (row === mine ? " " + gettext("(this one)") : "") + ": " + summary(row);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "danger";
    remove.dataset.testid = "notify-remove";
    remove.textContent = gettext("Remove");
    remove.addEventListener("click", () => act(async () => {
      if (row === mine) await unsubscribeHere();
      await api("DELETE", API + row.id + "/");
      say(gettext("Removed."));
    }));
    item.append(text, remove);
    list.append(item);
  }
  none.hidden = page.results.length > 0;
  if (mine) fill(mine);
  enable.hidden = Boolean(mine);
  save.hidden = disable.hidden = !mine;
}

async function unsubscribeHere() {
  const sub = await (await registration()).pushManager.getSubscription();
  if (sub) await sub.unsubscribe();
}

async function act(work) {
  for (const b of [enable, save, disable]) b.disabled = true;
  try {
    await work();
  } catch (error) {
    say(error.message || String(error));
  } finally {
    for (const b of [enable, save, disable]) b.disabled = false;
    if (!supported) enable.disabled = true;
    try { await refresh(); } catch (error) { say(error.message); }
  }
}

enable.addEventListener("click", () => act(async () => {
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    throw new Error(gettext("Notifications are blocked for this site: allow them in the browser's site settings."));
  }
  const {public_key: key} = await api("GET", "/api/push/vapid-public-key/");
  let sub;
  try {
    sub = await (await registration()).pushManager.subscribe({userVisibleOnly: true, applicationServerKey: key});
  } catch (error) {
    throw new Error(interpolate(gettext("This browser could not subscribe to notifications (%(reason)s)."), {reason: error.message || error.name}, true));
  }
  await api("POST", API, {...sub.toJSON(), ...choices()});
  say(gettext("This device will be notified."));
}));

save.addEventListener("click", () => act(async () => {
  if (mine) await api("PATCH", API + mine.id + "/", choices());
  say(gettext("Saved."));
}));

disable.addEventListener("click", () => act(async () => {
  const endpoint = mine && mine.endpoint;
  await unsubscribeHere();
  if (endpoint) await api("DELETE", API, {endpoint});
  say(gettext("This device will not be notified any more."));
}));

if (!supported) {
  enable.disabled = true;
  say(gettext("This browser cannot receive notifications. On an iPhone, add petcam to the home screen and open it from there."));
}
refresh().catch((error) => say(error.message));
