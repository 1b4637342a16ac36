/* Record/Stop for the live camera: POST start/stop, poll the live figures every second.
 * When a recording ends (this Stop, or another tab, or the event trigger) a note says it
 * was saved, with its title and a link to its playback page. */
import {csrfToken} from "../../petcam/csrf.js";
import {recordingTitle} from "../../recordings/title.js";

// `bar` is the #recbar element (only rendered for roles that may record); `stage`
// carries the camera and the CSRF token the page was rendered with.
export function startRecordButton(bar, stage) {
  const cam = stage.dataset.camera;
  const base = "/api/cameras/" + encodeURIComponent(cam) + "/recording/";
  const btn = bar.querySelector("#record-button");
  const live = bar.querySelector("#record-live");
  const timer = bar.querySelector("#record-timer");
  const size = bar.querySelector("#record-size");
  const err = bar.querySelector("#record-error");
  const saved = bar.querySelector("#record-saved");
  const savedText = bar.querySelector("#record-saved-text");
  const savedLink = bar.querySelector("#record-saved-link");
  let recording = false, pollTimer = null, busy = false, shownId = null;
  bar.querySelector("#record-saved-close").addEventListener("click", () => { saved.hidden = true; });

  function fmtTime(s) {
    s = Math.max(0, Math.floor(s || 0));
    const m = Math.floor(s / 60), sec = String(s % 60).padStart(2, "0");
    return m >= 60 ? Math.floor(m / 60) + ":" + String(m % 60).padStart(2, "0") + ":" + sec : m + ":" + sec;
  }
  function fmtSize(b) {
    b = b || 0;
    if (b < 1024 * 1024) return (b / 1024).toFixed(0) + " KB";
    if (b < 1024 * 1024 * 1024) return (b / 1048576).toFixed(1) + " MB";
    return (b / 1073741824).toFixed(2) + " GB";
  }
  function showError(text) { err.textContent = text || ""; err.hidden = !text; }
  function showSaved(rec) {
    if (!rec || rec.id === undefined || rec.id === shownId) return;
    shownId = rec.id;
    const failed = rec.status === "failed" || rec.status === "interrupted";
    saved.classList.toggle("failed", failed);
    savedText.textContent = failed ? gettext("Recording ended with a problem (what was recorded is kept):")
                                   : gettext("Saved:");
    savedLink.textContent = recordingTitle(rec);
    savedLink.href = "/recordings/" + encodeURIComponent(rec.id) + "/";
    savedLink.title = failed && rec.failure_reason ? rec.failure_reason : gettext("Watch it");
    saved.hidden = false;
  }
  function render(s) {
    const was = recording;
    recording = !!(s && s.recording);
    if (recording) saved.hidden = true;
    else if (was && s) showSaved(s.last);  // ended elsewhere (another tab, an event)
    btn.textContent = recording ? "■ " + gettext("Stop") : "● " + gettext("Record");
    btn.classList.toggle("recording", recording);
    btn.setAttribute("aria-pressed", recording ? "true" : "false");
    if (recording) {
      live.hidden = false;
      timer.textContent = fmtTime(s.duration);
      size.textContent = fmtSize(s.bytes);
    }
    if (recording && !pollTimer) pollTimer = setInterval(poll, 1000);
    if (!recording && pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }
  async function errorText(r) {
    let body = {};
    try { body = await r.json(); } catch (e) { /* not JSON */ }
    const what = {409: gettext("Conflict"), 507: gettext("Disk full"), 503: gettext("Unavailable"), 504: gettext("Worker not answering")}[r.status] || interpolate(gettext("Error %(status)s"), {status: r.status}, true);
    return what + ": " + (body.detail || body.error || r.statusText);
  }
  async function poll() {
    try {
      const r = await fetch(base, {credentials: "same-origin"});
      if (r.ok) render(await r.json());
    } catch (e) { /* the status panel reports an unreachable worker */ }
  }
  btn.addEventListener("click", async () => {
    if (busy) return;
    busy = true; btn.disabled = true; showError("");
    const op = recording ? "stop/" : "start/";
    try {
      const r = await fetch(base + op, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken(stage.dataset.csrf)},
        body: op === "start/" ? "{}" : undefined,
      });
      if (!r.ok) showError(await errorText(r));
      else if (op === "start/") { live.hidden = false; timer.textContent = fmtTime(0); size.textContent = fmtSize(0); }
      else { live.hidden = true; showSaved(await r.json()); }
    } catch (e) {
      showError(interpolate(gettext("Network error: %(error)s"), {error: e.message}, true));
    } finally {
      await poll();
      busy = false; btn.disabled = false;
    }
  });
  poll();
}
