/* The playback page's day strip (templates/playback.html): this camera's recordings of
 * the day the one on screen began (midnight to midnight in the page's time zone, GET
 * /api/cameras/{camera}/recording-spans/), on one time axis zoomed to where there are
 * recordings. Continuous (schedule) segments fill the strip's height; event and manual
 * recordings are drawn narrower on top of them, so one made during a continuous segment
 * stays visible and clickable. The recording being played is outlined, with a line where
 * its picture on screen is (dayStripAt); a click (or tap) on any other plays it.
 * ◀ / ▶ show the day before / after (not past today). */
import {inZone, midnightIn, offsetAt} from "../petcam/zone.js";

const MIN_VIEW_MS = 20_000;       // never zoom closer than 20 seconds
const TICK_STEPS_S = [10, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600];
const LABELS = {
  schedule: () => gettext("Continuous"),
  event: () => gettext("Event"),
  manual: () => gettext("Manual"),
};

let placeNow = null;  // set once the strip is drawn: moves the "now playing" line

/* The line at `seconds` into the recording on screen. */
export function dayStripAt(seconds) { if (placeNow) placeNow(seconds); }

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;  // never innerHTML: names are user text
  return e;
}
function clock(ms, seconds) {
  return new Date(ms).toLocaleTimeString([], inZone({hour: "2-digit", minute: "2-digit", hour12: false,
                                                     second: seconds ? "2-digit" : undefined}));
}
function endOf(r) {
  if (r.ended_at) return Date.parse(r.ended_at);
  const start = Date.parse(r.started_at);
  return r.status === "recording" ? Math.max(Date.now(), start + r.duration * 1000)
                                  : start + r.duration * 1000;
}

/* The part of the day to draw: from the first recording to the last, a little margin
 * either side, at least a minute, inside the day; the whole day when it has none. */
function viewOf(spans, dayStart, dayEnd) {
  if (!spans.length) return [dayStart, dayEnd];
  let lo = Math.max(dayStart, Math.min(...spans.map((s) => s.start)));
  let hi = Math.min(dayEnd, Math.max(...spans.map((s) => s.end)));
  const pad = Math.max((hi - lo) * 0.05, 2_000);
  lo -= pad; hi += pad;
  if (hi - lo < MIN_VIEW_MS) { const mid = (lo + hi) / 2; lo = mid - MIN_VIEW_MS / 2; hi = mid + MIN_VIEW_MS / 2; }
  return [Math.max(dayStart, lo), Math.min(dayEnd, hi)];
}

const midnight = midnightIn;  // in the page's time zone; DST-safe (no 24 h arithmetic)

export async function showDayStrip(rec, getJson, state) {
  const root = document.getElementById("day-strip");
  const track = document.getElementById("ds-track"), axis = document.getElementById("ds-axis");
  const note = document.getElementById("ds-note");
  const prev = document.getElementById("ds-prev"), next = document.getElementById("ds-next");
  const started = new Date(rec.started_at), startMs = started.getTime();
  const now = el("div", {"class": "ds-now", "data-testid": "day-strip-now", "aria-hidden": "true"});
  let day = midnight(started), spans = [], lo = 0, hi = 1, loading = 0;
  const pct = (t) => 100 * (Math.min(hi, Math.max(lo, t)) - lo) / (hi - lo);

  function draw() {
    track.replaceChildren(now);
    now.hidden = !spans.some((s) => s.rec.id === rec.id);
    // continuous segments first: event and manual recordings lie on top of them
    const order = {schedule: 0, manual: 1, event: 2};
    for (const s of [...spans].sort((a, b) => order[a.rec.trigger] - order[b.rec.trigger] || a.start - b.start)) {
      const r = s.rec, current = r.id === rec.id;
      const label = (LABELS[r.trigger] || LABELS.manual)() + " · " + clock(s.start, true) + "–" + clock(s.end, true) +
        (r.name ? " · " + r.name : "") + (current ? " · " + gettext("playing now") : "");
      const seg = el("button", {"type": "button", "class": "ds-seg " + r.trigger + (current ? " current" : ""),
                                "data-testid": "day-strip-segment", "data-id": r.id, "data-trigger": r.trigger,
                                "title": label, "aria-label": label});
      if (current) seg.setAttribute("aria-current", "true");
      seg.style.left = pct(s.start) + "%";
      seg.style.width = (pct(s.end) - pct(s.start)) + "%";
      seg.addEventListener("click", () => {
        if (!current) window.location.assign(r.playback_url + "?play=1");
      });
      track.append(seg);
    }
    axis.replaceChildren();
    const width = track.getBoundingClientRect().width;
    const most = Math.max(2, Math.floor(width / 70));
    const step = 1000 * (TICK_STEPS_S.find((s) => (hi - lo) / 1000 / s <= most) || 21600);
    const half = (step < 60_000 ? 30 : 20) * 100 / Math.max(1, width);  // a label's half width, in %
    const shift = offsetAt(lo) % step;  // ticks on the zone's whole hours, not UTC's
    for (let t = Math.ceil((lo + shift) / step) * step - shift; t <= hi; t += step) {
      if (pct(t) < half || pct(t) > 100 - half) continue;  // its label would stick out
      const tick = el("span", {}, clock(t, step < 60_000));
      tick.style.left = pct(t) + "%";
      axis.append(tick);
    }
  }

  async function load() {
    const ask = ++loading, end = midnight(day, 1);
    const url = "/api/cameras/" + encodeURIComponent(rec.camera) + "/recording-spans/?start=" +
      encodeURIComponent(day.toISOString()) + "&end=" + encodeURIComponent(end.toISOString());
    let data;
    try { data = await getJson(url); } catch (e) { return false; }  // the player works without it
    if (ask !== loading) return false;  // a later day was asked for meanwhile
    spans = data.recordings.map((r) => ({rec: r, start: Date.parse(r.started_at), end: endOf(r)}));
    const onThisDay = startMs >= day.getTime() && startMs < end.getTime();
    if (onThisDay && !spans.some((s) => s.rec.id === rec.id)) spans.push({rec: rec, start: startMs, end: endOf(rec)});
    [lo, hi] = viewOf(spans, day.getTime(), end.getTime());
    document.getElementById("ds-date").textContent = day.toLocaleDateString([], inZone({weekday: "long", day: "numeric", month: "long"}));
    note.hidden = spans.length > 0;
    next.disabled = end.getTime() > Date.now();
    root.hidden = false;
    draw();
    dayStripAt(state.mediaTime !== null && state.mediaTime !== undefined ? state.mediaTime : 0);
    state.dayStrip = {day: day.toISOString(), start: lo, end: hi, current: rec.id, truncated: data.truncated,
                      recordings: spans.map((s) => ({id: s.rec.id, trigger: s.rec.trigger}))};
    return true;
  }

  placeNow = (seconds) => { now.style.left = pct(startMs + 1000 * (seconds || 0)) + "%"; };
  prev.addEventListener("click", () => { day = midnight(day, -1); load(); });
  next.addEventListener("click", () => { day = midnight(day, 1); load(); });
  window.addEventListener("resize", () => { if (!root.hidden) draw(); });
  await load();
}
