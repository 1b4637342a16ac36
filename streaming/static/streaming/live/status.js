/* One camera's live status, polled once a second.
 *
 * Every answer is sent as a `petcam:status` event: the player's state line and
 * message follow the camera (live/player.js), the overlay takes the viewer clocks
 * and the frame rate from it (live/overlay.js). Operators and admins also get the
 * figures in the page's details panel (templates/live.html renders it only for them).
 */
import {inZone} from "../../petcam/zone.js";
const POLL_MS = 1000;

const PHASE_WORDS = {starting: "starting", live: "live", off: "off"};

// "day" / "night" in the page's language; other names (e.g. "camera 2") as they are.
function cameraWord(name) {
  if (name === "day") return gettext("day camera");
  if (name === "night") return gettext("night camera");
  return name.startsWith("camera") ? name : interpolate(gettext("%(name)s camera"), {name: name}, true);
}

// Day or night: which of the board's two cameras is on (shm cameras say so; others do not),
// a small badge next to the live one, made here so the page template stays as it is.
function showDayNight(s) {
  const stateLine = document.getElementById("state");
  if (!stateLine) return;
  let label = document.getElementById("day-night");
  if (!label && !s.active_camera) return;
  if (!label) {
    label = document.createElement("span");
    label.id = "day-night";
    label.dataset.testid = "day-night";
    stateLine.after(" ", label);
  }
  label.hidden = !s.active_camera;
  if (!s.active_camera) return;
  label.className = "badge " + s.active_camera.replace(/\s+/g, "-");
  label.textContent = cameraWord(s.active_camera);
  const last = s.last_camera_switch;
  label.title = last ? interpolate(gettext("switched to the %(camera)s at %(time)s"), {
    camera: cameraWord(last.active_camera), time: new Date(last.at).toLocaleTimeString([], inZone())}, true) : "";
}


// `camera` is the camera's slug.
export function startStatusPoll(camera) {
  // Labels the page does not have (a viewer's page has no details) are simply not filled.
  const $ = (id) => document.getElementById(id) || document.createElement("span");

  function showDetails(s) {
    const live = s.live;
    $("camera-state").textContent = s.state === "worker_unreachable" ? "worker unreachable"
      : (PHASE_WORDS[s.phase] || s.state || "–") + (s.state && s.state !== "live" ? " (" + s.state + ")" : "");
    $("fps").textContent = live ? s.fps.toFixed(1) + " fps" : "–";
    $("bitrate").textContent = live ? (s.bitrate_kbps / 1000).toFixed(2) + " Mbit/s" : "–";
    $("resolution").textContent = s.width ? s.width + "×" + s.height : "–";
    $("profile").textContent = s.profile ? s.profile + " (" + s.profile_level_id + ", level " + s.level.toFixed(1) + ")" : "–";
    $("gop").textContent = s.gop_frames ? s.gop_frames + " frames" : "–";
    if (s.reader) {
      $("frames-read").textContent = s.reader.frames_read;
      $("gaps").textContent = s.reader.gaps + " (" + s.reader.frames_missed + " frames)";
      $("skipped").textContent = Object.values(s.reader.skipped).reduce((a, b) => a + b, 0);
    }
    if (s.stream_segment) $("segment").textContent = s.stream_segment;
    $("viewers").textContent = s.viewers ? s.viewers.count + " / " + s.viewers.max : "–";
  }

  function show(s) {
    showDetails(s);
    showDayNight(s);
    document.dispatchEvent(new CustomEvent("petcam:status", {detail: s}));
  }

  async function poll() {
    try {
      const r = await fetch("/api/cameras/" + encodeURIComponent(camera) + "/", {credentials: "same-origin"});
      if (r.status === 403 || r.status === 401) { location.href = "/accounts/login/?next=/"; return; }
      show(await r.json());
    } catch (e) {
      show({camera: camera, state: "worker_unreachable", live: false});
    }
  }
  poll();
  setInterval(poll, POLL_MS);
}
