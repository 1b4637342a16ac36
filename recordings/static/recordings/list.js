/* The recordings catalog (templates/recordings.html): GET /api/recordings/ (filters →
 * query), play via the download URL (HTTP Range makes seeking work), PATCH keep and
 * name (rename in place), DELETE with the CSRF header. Cards are titled by name or by
 * what was seen, when and how long (title.js); a recording still running has a
 * placeholder picture and no Delete. */
import {csrfToken as csrf} from "../petcam/csrf.js";
import {renameButton} from "./rename.js";
import {fileName, recordingTitle} from "./title.js";
import {inZone} from "../petcam/zone.js";

// The API's words on the cards' chips, in the page's language (unknown ones as they are).
const CHIP_WORDS = {
  manual: pgettext("recording trigger", "manual"), event: pgettext("recording trigger", "event"),
  schedule: pgettext("recording trigger", "schedule"),
  recording: pgettext("recording status", "recording"), interrupted: pgettext("recording status", "interrupted"),
  failed: pgettext("recording status", "failed"),
};
const chipWord = (word) => CHIP_WORDS[word] || word;

const grid = document.getElementById("grid"), empty = document.getElementById("empty");
const form = document.getElementById("filters"), listError = document.getElementById("list-error");
const moreWrap = document.getElementById("more-wrap");
const player = document.getElementById("player"), video = document.getElementById("player-video");
let next = null, generation = 0;

function fmtDuration(s) {
  s = Math.max(0, Math.round(s || 0));
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = String(s % 60).padStart(2, "0");
  return h ? h + ":" + String(m).padStart(2, "0") + ":" + sec : m + ":" + sec;
}
function fmtSize(b) {
  b = b || 0;
  if (b < 1024) return b + " B";
  if (b < 1024 * 1024) return (b / 1024).toFixed(0) + " KB";
  if (b < 1024 ** 3) return (b / 1024 / 1024).toFixed(1) + " MB";
  return (b / 1024 ** 3).toFixed(2) + " GB";
}
function fmtWhen(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString([], inZone({dateStyle: "medium", timeStyle: "medium"}));
}
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;  // never innerHTML: names are user text
  return e;
}
function label(rec) { return recordingTitle(rec); }

function query() {
  const data = new FormData(form), params = new URLSearchParams({limit: "48"});
  for (const key of ["camera", "trigger", "status"]) if (data.get(key)) params.set(key, data.get(key));
  const day = data.get("date");
  if (day) {  // the chosen day in the browser's time zone
    const [y, m, d] = day.split("-").map(Number);
    params.set("started_after", new Date(y, m - 1, d).toISOString());
    params.set("started_before", new Date(y, m - 1, d + 1).toISOString());
  }
  return "/api/recordings/?" + params;
}

function card(rec) {
  const c = el("article", {"class": "card", "data-testid": "recording-card", "data-id": rec.id});
  const thumb = el("button", {"type": "button", "class": "thumb", "aria-label": interpolate(gettext("Play %(title)s"), {title: label(rec)}, true),
                              "data-testid": "recording-play"});
  const placeholder = (text) => el("span", {"class": "placeholder", "data-testid": "recording-placeholder"}, text);
  if (rec.status === "recording") {
    thumb.append(placeholder("● " + gettext("Recording now…")));  // no keyframe picture until it ends
  } else {
    const img = el("img", {"src": rec.thumbnail_url, "alt": "", "loading": "lazy",
                           "data-testid": "recording-thumbnail"});
    img.addEventListener("error", () => img.replaceWith(placeholder(gettext("No picture"))));
    thumb.append(img);
  }
  if (rec.status !== "recording") thumb.append(el("span", {"class": "dur"}, fmtDuration(rec.duration)));
  thumb.addEventListener("click", () => play(rec));
  const body = el("div", {"class": "body"});
  const nameRow = el("div", {"class": "name-row"});
  const name = el("div", {"class": "name", "title": label(rec) + " (" + fileName(rec) + ")",
                          "data-testid": "recording-name"}, label(rec));
  nameRow.append(name);
  if (grid.dataset.canChange === "1") {
    nameRow.append(renameButton(rec, nameRow, name));
  }
  body.append(nameRow);
  body.append(el("div", {"class": "meta"}, rec.camera + " · " + fmtWhen(rec.started_at)));
  body.append(el("div", {"class": "meta"}, rec.status === "recording" ? gettext("Still recording") :
                 fmtDuration(rec.duration) + " · " + fmtSize(rec.bytes) +
                 (rec.width ? " · " + rec.width + "×" + rec.height : "")));
  const chips = el("div", {"class": "chips", "data-testid": "recording-chips"});
  chips.append(el("span", {"class": "chip " + rec.trigger, "data-testid": "recording-trigger"}, chipWord(rec.trigger)));
  if (rec.status !== "complete") chips.append(el("span", {"class": "chip " + rec.status, "title": rec.failure_reason || ""}, chipWord(rec.status)));
  for (const cls of rec.detection_classes || []) chips.append(el("span", {"class": "chip", "data-testid": "recording-class"}, cls));
  body.append(chips);
  const actions = el("div", {"class": "actions"});
  // the playback page: detection timeline, boxes, scrubbing thumbnails
  const open = el("a", {"href": "/recordings/" + rec.id + "/", "data-testid": "recording-open"}, gettext("Open"));
  const download = el("a", {"href": rec.download_url, "download": ""}, gettext("Download"));
  const del = el("button", {"type": "button", "class": "delete", "data-testid": "recording-delete"}, gettext("Delete"));
  del.addEventListener("click", () => remove(rec, c, del));
  const keepLabel = el("label", {}, "");
  const keep = el("input", {"type": "checkbox", "data-testid": "recording-keep"});
  keep.checked = !!rec.keep;
  keep.addEventListener("change", () => setKeep(rec, keep));
  keepLabel.append(keep, document.createTextNode(gettext("Keep")));
  actions.append(open, download);
  // only roles that may (petcam_site/permissions.py): viewers neither delete nor keep
  // a running recording cannot be deleted (409): stop it first, from the live page
  if (grid.dataset.canDelete === "1" && rec.status !== "recording") actions.append(del);
  if (grid.dataset.canChange === "1") actions.append(keepLabel);
  body.append(actions);
  c.append(thumb, body);
  return c;
}

async function load(url, append) {
  const mine = ++generation;
  listError.hidden = true;
  let data;
  try {
    const resp = await fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}});
    data = await resp.json();
    if (!resp.ok) throw new Error(data.detail || resp.statusText);
  } catch (e) {
    if (mine !== generation) return;
    listError.textContent = interpolate(gettext("Could not load recordings: %(error)s"), {error: e.message}, true);
    listError.hidden = false;
    return;
  }
  if (mine !== generation) return;  // a newer filter change won
  if (!append) grid.replaceChildren();
  for (const rec of data.results) grid.append(card(rec));
  next = data.next;
  moreWrap.hidden = !next;
  empty.hidden = grid.children.length > 0;
}

function play(rec) {
  document.getElementById("player-title").textContent = label(rec);
  document.getElementById("player-meta").textContent = rec.camera + " · " + fmtWhen(rec.started_at);
  player.hidden = false;
  player.dataset.id = rec.id;
  video.src = rec.download_url;
  video.play().catch(() => {});  // autoplay may be refused: the controls remain
  player.scrollIntoView({behavior: "smooth", block: "start"});
}
function closePlayer() {
  video.pause();
  video.removeAttribute("src");
  video.load();
  player.hidden = true;
  delete player.dataset.id;
}

async function remove(rec, c, button) {
  if (!window.confirm(interpolate(gettext("Delete “%(title)s”? The file is removed."), {title: label(rec)}, true))) return;
  button.disabled = true;
  if (player.dataset.id === String(rec.id)) closePlayer();
  const resp = await fetch("/api/recordings/" + rec.id + "/", {
    method: "DELETE", credentials: "same-origin", headers: {"X-CSRFToken": csrf()}});
  if (resp.ok || resp.status === 404) {
    c.remove();
    empty.hidden = grid.children.length > 0;
  } else {
    button.disabled = false;
    let detail = resp.statusText;
    try { detail = (await resp.json()).detail || detail; } catch (e) { /* not JSON */ }
    window.alert(interpolate(gettext("Could not delete: %(error)s"), {error: detail}, true));
  }
}

async function setKeep(rec, box) {
  box.disabled = true;
  const resp = await fetch("/api/recordings/" + rec.id + "/", {
    method: "PATCH", credentials: "same-origin",
    headers: {"X-CSRFToken": csrf(), "Content-Type": "application/json"},
    body: JSON.stringify({keep: box.checked})});
  if (resp.ok) rec.keep = (await resp.json()).keep;
  box.checked = !!rec.keep;
  box.disabled = false;
}

form.addEventListener("change", () => load(query(), false));
form.addEventListener("submit", (e) => e.preventDefault());
document.getElementById("more").addEventListener("click", () => next && load(next, true));
document.getElementById("player-close").addEventListener("click", closePlayer);
load(query(), false);
