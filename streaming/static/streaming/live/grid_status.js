/* Every tile's camera status on the grid page, from one GET /api/cameras/.
 *
 * Two seconds after the last answer, not every two seconds: a camera whose worker
 * does not answer makes the request slow, so requests never pile up. Each player gets
 * its own camera's status as a `petcam:status` event (live/player.js ignores other
 * cameras') and shows it in its tile's state line.
 */
const POLL_AFTER_MS = 2000;

export function startGridStatusPoll() {
  async function pollCameras() {
    let results;
    try {
      const r = await fetch("/api/cameras/", {credentials: "same-origin"});
      if (r.status === 401 || r.status === 403) { location.href = "/accounts/login/?next=/"; return; }
      results = r.ok ? (await r.json()).results || [] : null;
    } catch (e) {
      results = null;  // the site is unreachable: every tile says so
    }
    document.querySelectorAll("[data-live-stage]").forEach((stage) => {
      const camera = stage.dataset.camera;
      const s = results === null ? {camera: camera, state: "worker_unreachable", live: false}
        : results.find((c) => c.camera === camera) || {camera: camera, state: "unknown", live: false};
      document.dispatchEvent(new CustomEvent("petcam:status", {detail: s}));
    });
    setTimeout(pollCameras, POLL_AFTER_MS);
  }
  pollCameras();
}
