/* The events list (templates/events.html): GET /api/events/ (filters → query), snapshot
 * thumbnails, the clip through the recording's playback page, DELETE with the CSRF header. */
import {csrfToken as csrf} from "../petcam/csrf.js";
import {inZone} from "../petcam/zone.js";

const grid = document.getElementById("grid"), empty = document.getElementById("empty");
const form = document.getElementById("filters"), listError = document.getElementById("list-error");
const moreWrap = document.getElementById("more-wrap");
const canDelete = grid.dataset.canDelete === "1";
let next = null, generation = 0;

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;  // never innerHTML
  return e;
}
function fmtWhen(iso) {
  return iso ? new Date(iso).toLocaleString([], inZone({dateStyle: "medium", timeStyle: "medium"})) : "";
}
function fmtLength(ev) {
  if (!ev.ended_at) return gettext("still going");
  const s = Math.max(0, Math.round((new Date(ev.ended_at) - new Date(ev.started_at)) / 1000));
  return s < 60 ? s + " s" : Math.floor(s / 60) + " min " + (s % 60) + " s";
}

function query() {
  const data = new FormData(form), params = new URLSearchParams({limit: "48"});
  for (const key of ["camera", "class_name"]) if (data.get(key)) params.set(key, data.get(key));
  const day = data.get("date");
  if (day) {  // the chosen day in the browser's time zone
    const [y, m, d] = day.split("-").map(Number);
    params.set("started_after", new Date(y, m - 1, d).toISOString());
    params.set("started_before", new Date(y, m - 1, d + 1).toISOString());
  }
  return "/api/events/?" + params;
}

function card(ev) {
  const c = el("article", {"class": "card", "data-testid": "event-card", "data-id": ev.id,
                           id: "event-" + ev.id});
  const snap = el(ev.clip_url ? "a" : "div", {"class": "snap"});
  if (ev.recording) snap.setAttribute("href", "/recordings/" + ev.recording + "/");
  if (ev.snapshot_url) {
    snap.append(el("img", {src: ev.snapshot_url, alt: ev.class_name + " at " + fmtWhen(ev.started_at),
                           loading: "lazy", "data-testid": "event-snapshot"}));
  } else {
    snap.append(el("span", {"class": "none"}, ev.ended_at ? gettext("No picture") : gettext("Happening now")));
  }
  const body = el("div", {"class": "body"});
  body.append(el("span", {"class": "name"}, ev.class_name + " · " + ev.camera));
  body.append(el("span", {"class": "meta"}, fmtWhen(ev.started_at) + " · " + fmtLength(ev)));
  body.append(el("span", {"class": "meta"}, "sure: " + Math.round(ev.peak_confidence * 100) + "%"));
  const actions = el("div", {"class": "actions"});
  if (ev.recording) actions.append(el("a", {href: "/recordings/" + ev.recording + "/", "data-testid": "event-clip"}, "Watch clip"));
  if (canDelete) {
    const del = el("button", {type: "button", "class": "delete", "data-testid": "event-delete"}, "Delete");
    del.addEventListener("click", async () => {
      if (!confirm(gettext("Delete this event? The recording stays."))) return;
      const resp = await fetch("/api/events/" + ev.id + "/", {method: "DELETE", headers: {"X-CSRFToken": csrf()}});
      if (resp.ok || resp.status === 404) { c.remove(); if (!grid.children.length) empty.hidden = false; }
      else showError(resp);
    });
    actions.append(del);
  }
  body.append(actions);
  c.append(snap, body);
  return c;
}

async function showError(resp) {
  let text = interpolate(gettext("Could not load events (%(status)s)."), {status: resp.status}, true);
  try { text = (await resp.json()).detail || text; } catch { /* not JSON */ }
  listError.textContent = text;
  listError.hidden = false;
}

async function load(url, replace) {
  const mine = ++generation;
  const resp = await fetch(url, {headers: {Accept: "application/json"}});
  if (mine !== generation) return;
  if (!resp.ok) { showError(resp); return; }
  listError.hidden = true;
  const page = await resp.json();
  if (replace) grid.replaceChildren();
  for (const ev of page.results) grid.append(card(ev));
  next = page.next;
  moreWrap.hidden = !next;
  empty.hidden = grid.children.length > 0;
  showLinked();
}

// A notification opens /events/#event-<id>: point at that card once it is on the page.
function showLinked() {
  const target = location.hash.startsWith("#event-") && document.getElementById(location.hash.slice(1));
  if (!target || target.classList.contains("linked")) return;
  target.classList.add("linked");
  target.scrollIntoView({block: "center"});
}
window.addEventListener("hashchange", showLinked);

form.addEventListener("change", () => load(query(), true));
document.getElementById("more").addEventListener("click", () => next && load(next, false));
load(query(), true);
