/* Playback of one recording.
 *
 * The <video> plays the file from the download endpoint (HTTP Range: seeking fetches
 * only what it needs). Under it, the detection timeline (GET .../timeline/): one row
 * per class, a bar where it was seen, a marker at each start; click or drag anywhere
 * to jump. While the pointer is over the timeline (or drags on a phone) a thumbnail of
 * the nearest keyframe before that time shows (GET .../thumbnails/: one sprite for the
 * whole recording). The stored detector results (GET .../detections/?start=&end=, a
 * minute at a time) are drawn over each presented frame with the live page's drawing
 * (detections/box_drawing.js). A recording's own detection track ("source": "track":
 * every detector result, on the file's clock) gives the result nearest the frame on
 * screen, within one detector interval, else none. Older recordings only have the
 * sampled history: the result at that frame's time (within 1.5 frames), or the previous
 * one for up to 1.5 sampling intervals.
 *
 * The "Watch in VLC" box holds a signed HLS link (GET .../hls/link/): a player that
 * cannot log in plays it as is; "Copy link" puts it on the clipboard.
 *
 * Above the timeline, the day strip (day_strip.js): the camera's recordings that day,
 * continuous segments and event/manual recordings, this one outlined; a click plays another.
 *
 * window.petcamPlayback, for tests: ready, duration, mediaTime (of the frame on screen),
 * result {time, frame_number}, boxes [{class_name, confidence, video, css}], content,
 * timeline, thumbnails, counts, dayStrip {start, end, current, recordings}.
 */
import * as draw from "../detections/box_drawing.js";
import {dayStripAt, showDayStrip} from "./day_strip.js";
import {renameButton} from "./rename.js";
import {fileName, recordingTitle} from "./title.js";
import {inZone} from "../petcam/zone.js";

const root = document.getElementById("playback");
const id = root.dataset.recording;
const api = "/api/recordings/" + id + "/";
const video = document.getElementById("video");
const canvas = document.getElementById("overlay");
const ctx = canvas.getContext("2d");
const timelineEl = document.getElementById("timeline");
const rowsEl = document.getElementById("tl-rows");
const axisEl = document.getElementById("tl-axis");
const playhead = document.getElementById("tl-playhead");
const hoverLine = document.getElementById("tl-hover");
const preview = document.getElementById("preview");
const previewTile = document.getElementById("preview-tile");
const errorEl = document.getElementById("pb-error");
const WINDOW = 60;            // seconds of stored results per request
const MATCH_FRAMES = 1.5;

const state = {
  ready: false, duration: 0, mediaTime: null, result: null, boxes: [], content: null,
  timeline: null, thumbnails: null, dayStrip: null, recording: null, source: null, interval: null, hlsLink: null,
  counts: {frames: 0, windows: 0, matched: 0, held: 0, none: 0},
};
window.petcamPlayback = state;
let fps = 30, sampleSeconds = 1, frameW = null, frameH = null;
let source = "history", interval = 1;  // where results come from, seconds between them
const windows = new Map();    // window number -> results (sorted) or a pending Promise

function fail(text) { errorEl.textContent = text; errorEl.hidden = false; }
async function getJson(url) {
  const resp = await fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}});
  let data = null;
  try { data = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) throw new Error((data && data.detail) || resp.statusText);
  return data;
}
function fmt(s, tenths) {
  s = Math.max(0, s || 0);
  const m = Math.floor(s / 60), sec = s - m * 60;
  const text = tenths ? sec.toFixed(1).padStart(4, "0") : String(Math.floor(sec)).padStart(2, "0");
  return m + ":" + text;
}
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;  // never innerHTML: names are user text
  return e;
}

// ---- geometry: time <-> x on the timeline ---------------------------------------------

function trackBox() { return rowsEl.getBoundingClientRect(); }
function pct(t) { return state.duration ? Math.min(100, Math.max(0, 100 * t / state.duration)) : 0; }
function timeAt(clientX) {
  const box = trackBox();
  return Math.min(state.duration, Math.max(0, (clientX - box.left) / box.width * state.duration));
}
function place(node, t) {  // left edge of `node`, in the timeline's coordinates
  const outer = timelineEl.getBoundingClientRect(), box = trackBox();
  node.style.left = (box.left - outer.left + box.width * pct(t) / 100) + "px";
}

// ---- the timeline ------------------------------------------------------------------------

function renderAxis() {
  axisEl.replaceChildren();
  if (!state.duration) return;
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
  const step = steps.find((s) => state.duration / s <= 6) || 3600;
  for (let t = 0; t <= state.duration + 1e-6; t += step) {
    const tick = el("span", {}, fmt(t));
    tick.style.left = pct(t) + "%";
    axisEl.append(tick);
  }
}

function renderTimeline(data) {
  state.timeline = data;
  rowsEl.replaceChildren();
  if (!data.classes.length) {
    rowsEl.append(el("div", {"class": "tl-empty", "data-testid": "timeline-empty"},
                     gettext("Nothing was detected during this recording.")));
  }
  for (const cls of data.classes) {
    const color = draw.classColor(cls.class_name);
    const row = el("div", {"class": "tl-row", "data-testid": "timeline-row", "data-class": cls.class_name});
    row.append(el("span", {"class": "tl-label"}, cls.class_name + " · " + cls.segments.length));
    for (const [start, end] of cls.segments) {
      const seg = el("div", {"class": "tl-seg", "data-testid": "timeline-segment",
                             "data-start": start, "data-end": end});
      seg.style.left = pct(start) + "%";
      seg.style.width = (pct(end) - pct(start)) + "%";
      seg.style.background = color;
      const marker = el("button", {"type": "button", "class": "tl-marker", "data-testid": "timeline-marker",
                                   "data-time": start, "data-class": cls.class_name,
                                   "title": cls.class_name + " at " + fmt(start, true),
                                   "aria-label": cls.class_name + " at " + fmt(start, true)});
      marker.style.left = pct(start) + "%";
      marker.style.color = color;
      // Into the frame that starts at the marker (times are rounded to the millisecond:
      // exactly `start` could land on the end of the frame before).
      marker.addEventListener("click", (ev) => { ev.stopPropagation(); seek(start + 0.4 / fps); });
      row.append(seg, marker);
    }
    rowsEl.append(row);
  }
}

function detectionStarts() {
  if (!state.timeline) return [];
  return state.timeline.classes.flatMap((c) => c.segments.map((s) => s[0])).sort((a, b) => a - b);
}

// ---- thumbnails while scrubbing ----------------------------------------------------------

let thumbs = null;  // null: not asked yet; a Promise while loading; the strip; false if none
function loadThumbs() {
  if (thumbs === null) {
    thumbs = getJson(api + "thumbnails/").then((strip) => {
      thumbs = strip;
      state.thumbnails = strip;
      const img = new Image();  // warm the cache: the first hover shows a picture at once
      img.src = strip.sprite_url;
      return strip;
    }).catch(() => { thumbs = false; return false; });
  }
  return thumbs;
}
function tileFor(t) {
  if (!thumbs || !thumbs.thumbnails) return null;
  let best = thumbs.thumbnails[0];
  for (const tile of thumbs.thumbnails) { if (tile.time <= t + 1e-3) best = tile; else break; }
  return best;
}
function showPreview(clientX) {
  const t = timeAt(clientX);
  place(hoverLine, t);
  hoverLine.hidden = false;
  document.getElementById("preview-time").textContent = fmt(t, true);
  const tile = tileFor(t);
  if (tile) {
    previewTile.style.width = thumbs.tile_width + "px";
    previewTile.style.height = thumbs.tile_height + "px";
    previewTile.style.backgroundImage = "url(" + thumbs.sprite_url + ")";
    previewTile.style.backgroundPosition = (-tile.x) + "px " + (-tile.y) + "px";
    previewTile.dataset.time = tile.time;
  } else if (thumbs === null) {
    loadThumbs().then(() => { if (!preview.hidden) showPreview(clientX); });
  }
  const outer = timelineEl.getBoundingClientRect();
  const half = ((thumbs && thumbs.tile_width) || 60) / 2 + 4;
  const x = Math.min(outer.width - half, Math.max(half, clientX - outer.left));
  preview.style.left = x + "px";
  preview.hidden = false;
}
function hidePreview() { preview.hidden = true; hoverLine.hidden = true; }

let dragging = null;  // {pointerId, lastSeek}
timelineEl.addEventListener("pointerdown", (ev) => {
  if (ev.target.closest(".tl-marker") || !state.duration) return;  // markers seek on click
  dragging = {pointerId: ev.pointerId, lastSeek: 0};
  timelineEl.setPointerCapture(ev.pointerId);
  showPreview(ev.clientX);
});
timelineEl.addEventListener("pointermove", (ev) => {
  if (!state.duration) return;
  if (dragging && ev.pointerId === dragging.pointerId) {
    showPreview(ev.clientX);
    const now = performance.now();
    if (now - dragging.lastSeek > 250) { dragging.lastSeek = now; seek(timeAt(ev.clientX)); }
  } else if (ev.pointerType === "mouse") {
    showPreview(ev.clientX);
  }
});
function endDrag(ev, apply) {
  if (!dragging || ev.pointerId !== dragging.pointerId) return;
  dragging = null;
  if (apply) seek(timeAt(ev.clientX));
  if (ev.pointerType !== "mouse") hidePreview();
}
timelineEl.addEventListener("pointerup", (ev) => endDrag(ev, true));
timelineEl.addEventListener("pointercancel", (ev) => endDrag(ev, false));
timelineEl.addEventListener("pointerleave", (ev) => { if (!dragging) hidePreview(); });
timelineEl.addEventListener("pointerenter", () => loadThumbs());

// ---- stored detections over the video -------------------------------------------------

function windowResults(n) {
  if (n < 0 || n * WINDOW > state.duration + WINDOW) return [];
  const known = windows.get(n);
  if (Array.isArray(known)) return known;
  if (!known) {
    const url = api + "detections/?start=" + n * WINDOW + "&end=" + (n + 1) * WINDOW;
    windows.set(n, getJson(url).then((data) => {
      windows.set(n, data.results);
      state.counts.windows++;
      render();  // the frame on screen may have been waiting for these
    }).catch(() => windows.delete(n)));
  }
  return null;  // loading
}

function resultAt(t) {
  const n = Math.floor(t / WINDOW);
  const here = windowResults(n);
  const reach = source === "track" ? interval : 1.5 * sampleSeconds;
  const near = (t - n * WINDOW < reach + 1) ? windowResults(n - 1) : [];
  if (t - n * WINDOW > WINDOW - 10) windowResults(n + 1);  // prefetch the next minute
  const candidates = [...(near || []), ...(here || [])];
  let nearest = null, held = null;
  for (const r of candidates) {
    if (nearest === null || Math.abs(r.time - t) < Math.abs(nearest.time - t)) nearest = r;
    if (r.time <= t && (held === null || r.time > held.time)) held = r;
  }
  if (source === "track") {  // every detector result is there: the nearest, or none
    if (nearest && Math.abs(nearest.time - t) <= interval + 0.5 / fps) return [nearest, "matched"];
    return [null, "none"];
  }
  if (nearest && Math.abs(nearest.time - t) <= MATCH_FRAMES / fps) return [nearest, "matched"];
  // the feed samples at the first result after each interval: allow for that lateness
  if (held && t - held.time <= 1.5 * sampleSeconds) return [held, "held"];
  return [null, "none"];
}

function render() {
  const t = state.mediaTime !== null ? state.mediaTime : video.currentTime;
  const [result, how] = state.ready ? resultAt(t) : [null, "none"];
  const rect = draw.contentRect(video);
  const boxes = draw.boxesFor(result && {frame_width: frameW, frame_height: frameH,
                                         detections: result.detections}, rect);
  draw.sizeCanvas(canvas, ctx, rect, video);
  draw.drawBoxes(ctx, boxes, rect);
  state.result = result ? {time: result.time, frame_number: result.frame_number, how: how} : null;
  state.boxes = boxes;
  state.content = rect ? {x: rect.x, y: rect.y, w: rect.w, h: rect.h} : null;
  document.getElementById("pb-boxes").textContent =
    result ? boxes.length + (boxes.length === 1 ? " box" : " boxes") + (how === "held" ? " (sampled)" : "") : "";
  document.getElementById("pb-clock").textContent = fmt(t, true) + " / " + fmt(state.duration, true);
  playhead.hidden = !state.duration;
  if (state.duration) place(playhead, t);
  dayStripAt(t);
}

function onFrame(now, md) {
  video.requestVideoFrameCallback(onFrame);
  state.counts.frames++;
  state.mediaTime = md.mediaTime;
  render();
}
if (typeof video.requestVideoFrameCallback === "function") video.requestVideoFrameCallback(onFrame);
// Paused seeks present a frame too, but keep a fallback for players without the callback.
video.addEventListener("seeked", () => { if (video.paused) { state.mediaTime = null; render(); } });
video.addEventListener("timeupdate", () => { if (typeof video.requestVideoFrameCallback !== "function") render(); });
if (window.ResizeObserver) new ResizeObserver(() => render()).observe(video);
window.addEventListener("resize", () => { renderAxis(); render(); });

function seek(t) {
  t = Math.min(Math.max(0, t), Math.max(0, state.duration - 0.001));
  video.currentTime = t;
  render();
}
function jumpDetection(direction) {
  const now = video.currentTime, starts = detectionStarts();
  const target = direction > 0 ? starts.find((s) => s > now + 0.05)
                               : [...starts].reverse().find((s) => s < now - 0.3);
  if (target !== undefined) seek(target);
}
document.getElementById("prev-det").addEventListener("click", () => jumpDetection(-1));
document.getElementById("next-det").addEventListener("click", () => jumpDetection(1));

// ---- a signed link for VLC and other players ------------------------------------------

function inTime(seconds) {
  const h = Math.floor(seconds / 3600), m = Math.round((seconds % 3600) / 60);
  if (h >= 1 && m) return interpolate(ngettext("in about %(h)s hour %(m)s min", "in about %(h)s hours %(m)s min", h), {h: h, m: m}, true);
  if (h >= 1) return interpolate(ngettext("in about %(h)s hour", "in about %(h)s hours", h), {h: h}, true);
  return interpolate(gettext("in %(m)s min"), {m: Math.max(1, m)}, true);
}
async function setUpShare(rec) {
  const box = document.getElementById("pb-share");
  if (rec.format !== "mp4") return;  // raw .h264 has no HLS
  let link;
  try { link = await getJson(api + "hls/link/"); } catch (e) { return; }
  const url = new URL(link.url, location.href).href;
  const input = document.getElementById("pb-hls-url");
  const said = document.getElementById("pb-hls-copied");
  input.value = url;
  document.getElementById("pb-hls-expiry").textContent = inTime(link.expires_in);
  state.hlsLink = url;
  input.addEventListener("focus", () => input.select());
  document.getElementById("pb-hls-copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(url);
      said.textContent = gettext("Copied. Paste it into VLC.");
    } catch (e) {  // no clipboard access (an insecure origin, a refusal): let them copy
      input.focus();
      input.select();
      said.textContent = gettext("Press Ctrl+C (or long-press → Copy) to copy the selected link.");
    }
  });
  box.hidden = false;
}

// ---- start -----------------------------------------------------------------------------

async function start() {
  let rec, timeline;
  try {
    [rec, timeline] = await Promise.all([getJson(api), getJson(api + "timeline/")]);
  } catch (e) {
    fail(interpolate(gettext("Could not load the recording: %(reason)s"), {reason: e.message}, true));
    return;
  }
  state.recording = rec;
  state.duration = rec.duration || timeline.duration || 0;
  fps = rec.duration > 0 && rec.frame_count > 1 ? rec.frame_count / rec.duration : 30;
  sampleSeconds = timeline.sample_seconds || 1;
  source = timeline.source || "history";
  interval = timeline.interval || sampleSeconds;
  state.source = source;
  state.interval = interval;
  frameW = rec.width;
  frameH = rec.height;
  const title = document.getElementById("pb-title");
  title.textContent = recordingTitle(rec);
  document.title = recordingTitle(rec) + " · petcam";
  if (root.dataset.canChange === "1") {  // rename in place, as on the recordings page
    const row = document.getElementById("pb-name-row");
    row.append(renameButton(rec, row, title, () => { document.title = recordingTitle(rec) + " · petcam"; }));
  }
  document.getElementById("pb-file").textContent = fileName(rec);
  document.getElementById("pb-meta").textContent = rec.camera + " · " +
    new Date(rec.started_at).toLocaleString([], inZone({dateStyle: "medium", timeStyle: "medium"})) +
    " · " + fmt(rec.duration) + (rec.width ? " · " + rec.width + "×" + rec.height : "");
  document.getElementById("pb-download").href = rec.download_url;
  setUpShare(rec);
  showDayStrip(rec, getJson, state);
  video.src = rec.download_url;
  renderAxis();
  renderTimeline(timeline);
  const query = new URLSearchParams(location.search);
  const wanted = parseFloat(query.get("t"));
  if (root.dataset.next) {  // a continued recording: play on into its next segment
    video.addEventListener("ended", () => { location.href = "/recordings/" + root.dataset.next + "/?play=1"; });
  }
  video.addEventListener("loadedmetadata", () => {
    if (Number.isFinite(video.duration) && video.duration > 0) state.duration = video.duration;
    renderAxis();
    renderTimeline(state.timeline);
    state.ready = true;
    if (Number.isFinite(wanted)) seek(wanted);
    if (query.get("play") === "1") video.play().catch(() => {});  // muted: allowed
    render();
  }, {once: true});
  video.addEventListener("error", () => fail(gettext("The video could not be played.")), {once: true});
  windowResults(0);
}
start();
