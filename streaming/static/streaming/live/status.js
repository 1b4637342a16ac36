/* One camera's live status, polled once a second and shown in the status panel.
 *
 * Every answer is also sent as a `petcam:status` event: the player reacts to the
 * camera going off and on (live/player.js), the overlay takes the viewer clocks
 * and the frame rate from it (live/overlay.js).
 */
const POLL_MS = 1000;

// Day or night: which of the board's two cameras is on (shm cameras say so; others do not),
// a small badge next to the live one, made here so the page template stays as it is.
function showDayNight(badge, s) {
  let label = document.getElementById("day-night");
  if (!label && !s.active_camera) return;
  if (!label) {
    label = document.createElement("span");
    label.id = "day-night";
    label.dataset.testid = "day-night";
    badge.after(" ", label);
  }
  label.hidden = !s.active_camera;
  if (!s.active_camera) return;
  label.className = "badge " + s.active_camera.replace(/\s+/g, "-");
  label.textContent = s.active_camera.startsWith("camera") ? s.active_camera : s.active_camera + " camera";
  const last = s.last_camera_switch;
  label.title = last ? "switched to the " + last.active_camera + " camera at " + new Date(last.at).toLocaleTimeString() : "";
}

// `panel` carries data-camera and holds the figures, found by id.
export function startStatusPoll(panel) {
  const camera = panel.dataset.camera;
  const $ = (id) => document.getElementById(id);

  function show(s) {
    const badge = $("state-badge");
    const live = s.live;
    badge.textContent = live ? "live" : (s.state === "worker_unreachable" ? "worker unreachable" : "waiting for camera");
    badge.className = "badge " + (live ? "live" : (s.state === "worker_unreachable" ? "error" : "waiting"));
    showDayNight(badge, s);
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
    document.dispatchEvent(new CustomEvent("petcam:status", {detail: s}));
  }

  async function poll() {
    try {
      const r = await fetch("/api/cameras/" + encodeURIComponent(camera) + "/", {credentials: "same-origin"});
      if (r.status === 403 || r.status === 401) { location.href = "/accounts/login/?next=/"; return; }
      show(await r.json());
    } catch (e) {
      show({state: "worker_unreachable", live: false});
    }
  }
  poll();
  setInterval(poll, POLL_MS);
}
