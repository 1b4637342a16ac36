/* A recording's title as a person reads it: its name, else what was seen, when, how long
 * ("Cat · Tue 18:08 · 2 min"), never the file name (that stays in the tooltip).
 * Shared by the recordings list, the playback page and the live page's "saved" note;
 * recordings/titles.py says the same on the server (the admin). */
import {inZone} from "../petcam/zone.js";

function cap(s) { return s ? s.charAt(0).toUpperCase() + s.slice(1) : s; }

export function spokenDuration(seconds) {
  const s = Math.max(0, Math.round(seconds || 0));
  if (s < 60) return s + " s";
  const m = Math.round(s / 60);
  if (m < 60) return m + " min";
  return Math.floor(m / 60) + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
}

export function whatWasSeen(rec) {
  const classes = rec.detection_classes || [];
  if (!classes.length) return rec.trigger === "event" ? gettext("Event") : gettext("Recording");
  return classes.slice(0, 2).map(cap).join(" & ") + (classes.length > 2 ? " +" + (classes.length - 2) : "");
}

export function recordingTitle(rec) {
  if (rec.name) return rec.name;
  const parts = [whatWasSeen(rec)];
  if (rec.started_at) {
    const when = new Date(rec.started_at);
    parts.push(when.toLocaleDateString([], inZone({weekday: "short"})) + " " +
               when.toLocaleTimeString([], inZone({hour: "2-digit", minute: "2-digit", hour12: false})));
  }
  if (rec.status !== "recording") parts.push(spokenDuration(rec.duration));  // not known yet
  return parts.join(" · ");
}

export function fileName(rec) { return (rec.file || "").split("/").pop(); }
