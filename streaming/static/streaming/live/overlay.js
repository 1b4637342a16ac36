/* petcam detection overlay: the detector's boxes drawn over the live <video>.
 *
 * Results come over WS /ws/cameras/{camera}/ (session cookie), each stamped
 * with the camera timestamp of the frame it was computed on. The video comes
 * over WebRTC, later and with jitter, so "draw the newest message" would put
 * the box where the pet will be a few frames from now. Instead every
 * presented frame (requestVideoFrameCallback) is mapped to its camera
 * timestamp through the server's clock message for our viewer session:
 *   pts = (rtpTimestamp - rtp_origin) mod 2^32, newest anchor with from_pts <= pts,
 *   camera_ts = camera_base + pts / clock_rate
 * and gets the buffered result nearest in time (within MATCH_FRAMES frame
 * intervals; between results of a slower detector the previous one is held
 * for HOLD_SECONDS). Frames replayed from the server's GOP cache at session
 * start precede the first anchor: they have no camera time and get no boxes.
 * Until the clock is known the newest result is drawn as is. Over WebSocket/MSE
 * (player.mse) no clock message is needed: a frame's mediaTime is camera time
 * (camera_ts = camera_base + mediaTime, live/mse_player.js).
 *
 * window.petcamOverlay exposes what is drawn, for tests:
 *   boxes          [{class_name, confidence, video: {x, y, w, h}, css: {x, y, w, h}}]
 *                  video = video pixels, css = CSS pixels relative to the <video> element
 *   frameCameraTs  camera timestamp of the frame the boxes were matched to (null unless mode "clock")
 *   rtpTimestamp   that frame's RTP timestamp (requestVideoFrameCallback metadata)
 *   result         {timestamp, frame_number} of the drawn result, or null
 *   mode           "clock" (per-frame match) | "latest" (no clock yet) | "none" (nothing fresh)
 *   content        the picture's rectangle inside the element, CSS pixels (object-fit: contain)
 *   socket, counts, clock
 */
import * as draw from "../../detections/box_drawing.js";

// `stage` holds the <video> and the overlay <canvas>; `player` is its live player
// (live/player.js), whose current session picks the clock.
export function startOverlay(stage, player) {
  const BUFFER_SECONDS = 4;     // results kept for matching frames (the video lags them)
  const MATCH_FRAMES = 1.5;     // a result this many frame intervals from a frame belongs to it
  const HOLD_SECONDS = 0.25;    // slower detector: keep the previous result this long
  const STALE_MS = 1000;        // no result this long: the detector stopped, no boxes
  const HOUSEKEEP_MS = 100;     // redraw without frames (stale boxes, resize, camera off)
  const RECONNECT_MIN_MS = 1000;
  const RECONNECT_MAX_MS = 10000;
  const RTP_WRAP = 4294967296;

  const video = stage.querySelector("video");
  const canvas = stage.querySelector("canvas.overlay");
  // Only in the operators' details panel; viewers have none.
  const stateEl = document.getElementById("detections-state") || document.createElement("span");
  const ctx = canvas.getContext("2d");
  const camera = stage.dataset.camera;

  const overlay = {
    socket: "connecting",
    mode: "none",
    boxes: [],
    frameCameraTs: null,
    rtpTimestamp: null,
    result: null,
    content: null,
    clock: null,
    counts: {messages: 0, frames: 0, matched: 0, held: 0, unmatched: 0, unmapped: 0, latest: 0},
  };
  window.petcamOverlay = overlay;

  const buffer = [];         // recent results, sorted by camera timestamp
  let latest = null;         // the newest result received
  let lastResultAt = null;   // performance.now() of its arrival
  const clocks = new Map();  // viewer session -> clock message
  const unwrapped = new Map(); // viewer session -> last unwrapped pts (RTP wraps every 13 h)
  let frame = null;          // the presented frame: {rtp, session}
  let cameraFps = 30;

  // ---- results and clocks --------------------------------------------------

  function onDetections(m) {
    if (typeof m.timestamp !== "number" || !Array.isArray(m.detections)) return;
    const r = {timestamp: m.timestamp, frame_number: m.frame_number, frame_width: m.frame_width,
               frame_height: m.frame_height, detections: m.detections};
    overlay.counts.messages++;
    const newest = buffer.length ? buffer[buffer.length - 1].timestamp : -Infinity;
    if (r.timestamp < newest - BUFFER_SECONDS) buffer.length = 0;  // camera clock restarted
    let i = buffer.length;
    while (i > 0 && buffer[i - 1].timestamp > r.timestamp) i--;   // nearly always at the end
    buffer.splice(i, 0, r);
    const cutoff = buffer[buffer.length - 1].timestamp - BUFFER_SECONDS;
    while (buffer[0].timestamp < cutoff) buffer.shift();
    latest = r;
    lastResultAt = performance.now();
    render(false);  // the frame on screen may have been waiting for this result
  }

  function newestAnchor(clock) {
    return clock.anchors.length ? Math.max(...clock.anchors.map((a) => a.from_pts)) : -1;
  }

  function onClock(c) {
    if (!c || !c.session || !Array.isArray(c.anchors) || typeof c.rtp_origin !== "number") return;
    const known = clocks.get(c.session);
    // The same clock arrives over the socket and in the status poll; keep the newer.
    if (known && newestAnchor(known) > newestAnchor(c)) return;
    clocks.delete(c.session);
    clocks.set(c.session, c);
    while (clocks.size > 8) clocks.delete(clocks.keys().next().value);
  }

  function cameraTime(clock, session, rtp) {
    const wrapped = ((rtp - clock.rtp_origin) % RTP_WRAP + RTP_WRAP) % RTP_WRAP;
    const last = unwrapped.get(session);
    let pts;
    if (last === undefined) {
      pts = wrapped + RTP_WRAP * Math.round((newestAnchor(clock) - wrapped) / RTP_WRAP);
    } else {
      let delta = ((wrapped - last) % RTP_WRAP + RTP_WRAP) % RTP_WRAP;
      if (delta > RTP_WRAP / 2) delta -= RTP_WRAP;
      pts = last + delta;
    }
    unwrapped.set(session, pts);
    let anchor = null;
    for (const a of clock.anchors) {
      if (a.from_pts <= pts && (anchor === null || a.from_pts > anchor.from_pts)) anchor = a;
    }
    return anchor === null ? null : anchor.camera_base + pts / (clock.clock_rate || 90000);
  }

  // ---- matching ------------------------------------------------------------

  function match(ts) {
    let nearest = null;
    for (const r of buffer) {
      if (nearest === null || Math.abs(r.timestamp - ts) < Math.abs(nearest.timestamp - ts)) nearest = r;
    }
    if (nearest && Math.abs(nearest.timestamp - ts) <= MATCH_FRAMES / cameraFps) return [nearest, "matched"];
    for (let i = buffer.length - 1; i >= 0; i--) {
      const r = buffer[i];
      if (r.timestamp <= ts) return ts - r.timestamp <= HOLD_SECONDS ? [r, "held"] : [null, "unmatched"];
    }
    return [null, "unmatched"];
  }

  // Decide what belongs on the frame on screen; `counted` for the per-frame figures.
  function choose(counted) {
    const fresh = lastResultAt !== null && performance.now() - lastResultAt <= STALE_MS;
    const session = player.session;
    const clock = session ? clocks.get(session) : null;
    const rtpKnown = frame && typeof frame.rtp === "number";
    if (!fresh) return {mode: "none", result: null, cameraTs: null};
    if (player.mse) {
      const ts = frame ? player.mse.cameraTime(frame.mediaTime) : null;
      if (ts === null) {
        if (counted) overlay.counts.latest++;
        return {mode: "latest", result: latest, cameraTs: null};
      }
      const [result, how] = match(ts);
      if (counted) overlay.counts[how]++;
      return {mode: "clock", result: result, cameraTs: ts};
    }
    if (!clock || !rtpKnown || frame.session !== session) {
      if (counted) overlay.counts.latest++;
      return {mode: "latest", result: latest, cameraTs: null};
    }
    overlay.clock = clock;
    const ts = frame.cameraTs !== undefined && frame.clock === clock
      ? frame.cameraTs : cameraTime(clock, session, frame.rtp);
    frame.cameraTs = ts;
    frame.clock = clock;
    if (ts === null) {  // replayed from the GOP cache: no camera time
      if (counted) overlay.counts.unmapped++;
      return {mode: "clock", result: null, cameraTs: null};
    }
    const [result, how] = match(ts);
    if (counted) overlay.counts[how]++;
    return {mode: "clock", result: result, cameraTs: ts};
  }

  // ---- drawing -------------------------------------------------------------

  function contentRect() { return draw.contentRect(video); }
  function sizeCanvas(rect) { draw.sizeCanvas(canvas, ctx, rect, video); }
  function boxesFor(result, rect) { return draw.boxesFor(result, rect); }
  function drawBoxes(boxes, rect) { draw.drawBoxes(ctx, boxes, rect); }

  function render(counted) {
    const chosen = choose(counted);
    const rect = contentRect();
    const boxes = boxesFor(chosen.result, rect);
    sizeCanvas(rect);
    drawBoxes(boxes, rect);
    overlay.mode = chosen.mode;
    overlay.boxes = boxes;
    overlay.frameCameraTs = chosen.cameraTs;
    overlay.rtpTimestamp = frame ? frame.rtp : null;
    overlay.result = chosen.result ? {timestamp: chosen.result.timestamp,
                                      frame_number: chosen.result.frame_number} : null;
    overlay.content = rect ? {x: rect.x, y: rect.y, w: rect.w, h: rect.h} : null;
    showState();
  }

  function showState() {
    let text;
    if (overlay.socket !== "open") text = overlay.socket;
    else if (overlay.mode === "none") text = lastResultAt === null ? "waiting" : "none (detector quiet)";
    else {
      const n = overlay.boxes.length;
      text = n + (n === 1 ? " box" : " boxes") + (overlay.mode === "clock" ? " · frame-synced" : " · syncing");
    }
    if (stateEl.textContent !== text) stateEl.textContent = text;
  }

  // ---- frames --------------------------------------------------------------

  function onFrame(now, md) {
    video.requestVideoFrameCallback(onFrame);
    overlay.counts.frames++;
    frame = {rtp: md.rtpTimestamp, session: player.session, mediaTime: md.mediaTime};
    render(true);
  }

  // ---- socket --------------------------------------------------------------

  let backoff = RECONNECT_MIN_MS;

  function connectSocket() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/ws/cameras/" + encodeURIComponent(camera) + "/");
    overlay.socket = "connecting";
    ws.onopen = () => {
      overlay.socket = "open";
      backoff = RECONNECT_MIN_MS;
      showState();
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (err) { return; }
      if (m.type === "detections") onDetections(m);
      else if (m.type === "clock") onClock(m);
    };
    ws.onclose = (ev) => {
      overlay.socket = ev.code === 4401 ? "not logged in" : "offline";
      showState();
      if (ev.code === 4404) return;  // no such camera: retrying cannot help
      setTimeout(connectSocket, backoff);
      backoff = Math.min(backoff * 2, RECONNECT_MAX_MS);
    };
  }

  // ---- wiring --------------------------------------------------------------

  document.addEventListener("petcam:status", (ev) => {
    const s = ev.detail;
    if (s.live && s.fps > 1) cameraFps = s.fps;
    if (!s.live && lastResultAt !== null) {  // camera off: no box over the "camera off" note
      lastResultAt = null;
      buffer.length = 0;
      render(false);
    }
    // The poll carries every session's clock too: covers a socket that missed the message.
    const sessions = s.viewers && Array.isArray(s.viewers.sessions) ? s.viewers.sessions : [];
    for (const v of sessions) if (v.clock && v.session === player.session) onClock(v.clock);
  });
  if (window.ResizeObserver) new ResizeObserver(() => render(false)).observe(video);
  window.addEventListener("resize", () => render(false));
  if (typeof video.requestVideoFrameCallback === "function") video.requestVideoFrameCallback(onFrame);
  setInterval(() => render(false), HOUSEKEEP_MS);
  connectSocket();
  return overlay;
}
