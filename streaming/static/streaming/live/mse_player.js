/* petcam live video over the site's own port: fMP4 over WebSocket into Media Source
 * Extensions. The fallback of live/player.js when WebRTC cannot connect (UDP blocked).
 *
 * WS /ws/cameras/{camera}/mse/ sends {"type": "init", mime, camera_base, seq}, the init
 * segment, then one fragment per frame, starting from the cached GOP. We append them in
 * order, jump to the live edge once the first picture is in, and keep the lag small
 * (a faster playback rate for a small lag, a jump for a big one). Every few fragments,
 * and every 2 s when idle, we acknowledge what arrived: the server stops sending when
 * too much is unacknowledged (a slow link) and resumes at the next IDR.
 *
 * Media time is camera time: cameraTime(mediaTime) = camera_base + mediaTime, which the
 * overlay uses to draw the boxes of the frame on screen.
 *
 * iOS Safari has ManagedMediaSource instead of MediaSource: used where MediaSource is
 * missing (with remote playback off, as it requires).
 */

const ACK_EVERY = 5;             // fragments between acknowledgements
const ACK_IDLE_MS = 2000;        // keep-alive: the server ends a silent socket
// Behind the live edge (the newest frame in the buffer): a small margin absorbs network
// jitter; more is caught up by playing 15 % faster, much more by a jump.
const LAG_JUMP_S = 1.0;          // behind by more: jump
const LAG_FAST_S = 0.25;         // behind by more: play faster until back at LIVE_EDGE_S
const LIVE_EDGE_S = 0.1;         // where a jump lands, behind the newest frame
const FAST_RATE = 1.15;
const KEEP_BEHIND_S = 10;        // buffer kept behind the playhead
const TRIM_EVERY_MS = 5000;

export function mseSupported() {
  return !!(window.ManagedMediaSource || window.MediaSource) && !!window.WebSocket;
}

// `events`: onOpen(), onError({code, detail}), onClosed(closeCode, reason)
// `options.token`: an API token instead of the page's login (benchmarks, other clients)
export function startMse(video, camera, events, options = {}) {
  const MediaSourceClass = window.MediaSource || window.ManagedMediaSource;
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const query = options.token ? "?token=" + encodeURIComponent(options.token) : "";
  const ws = new WebSocket(scheme + location.host + "/ws/cameras/" + encodeURIComponent(camera) + "/mse/" + query);
  ws.binaryType = "arraybuffer";

  const mse = {
    transport: "mse",
    openedAt: performance.now(),
    init: null,             // the last init message
    bytesReceived: 0,
    fragments: 0,
    jumps: 0,               // seeks to the live edge
    cameraTime: (mediaTime) => (mse.init && typeof mediaTime === "number")
      ? mse.init.camera_base + mediaTime : null,
    lag: () => {
      const b = sourceBuffer && sourceBuffer.buffered;
      return b && b.length ? b.end(b.length - 1) - video.currentTime : null;
    },
    stop: stop,
  };

  let mediaSource = null;
  let sourceBuffer = null;
  let objectUrl = null;
  let queue = [];            // ArrayBuffers waiting for the SourceBuffer
  let seq = 0;               // of the last message received
  let ackedSeq = 0;
  let lastAckAt = performance.now();
  let needEdge = true;       // jump to the live edge once the first picture is in
  let stopped = false;

  function send(message) {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }

  function ack() {
    ackedSeq = seq;
    lastAckAt = performance.now();
    send({type: "ack", seq: seq});
  }

  function resetMedia(init) {
    // A new stream (first one, new resolution, camera restart): a fresh MediaSource.
    mse.init = init;
    queue = [];
    sourceBuffer = null;
    needEdge = true;
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    mediaSource = new MediaSourceClass();
    if (window.ManagedMediaSource && MediaSourceClass === window.ManagedMediaSource) {
      video.disableRemotePlayback = true;  // ManagedMediaSource plays only without AirPlay
    }
    video.srcObject = null;  // a WebRTC stream left over
    objectUrl = URL.createObjectURL(mediaSource);
    video.src = objectUrl;
    const ms = mediaSource;
    ms.addEventListener("sourceopen", () => {
      if (ms !== mediaSource) return;
      try {
        sourceBuffer = ms.addSourceBuffer(init.mime);
        sourceBuffer.mode = "segments";
        sourceBuffer.addEventListener("updateend", onUpdateEnd);
      } catch (err) {
        events.onError({code: "unsupported", detail: "this browser cannot play " + init.mime});
        stop();
        return;
      }
      pump();
    }, {once: true});
  }

  function pump() {
    if (!sourceBuffer || sourceBuffer.updating || !queue.length) return;
    const data = queue.shift();
    try {
      sourceBuffer.appendBuffer(data);
    } catch (err) {
      if (err.name === "QuotaExceededError") {  // buffer full: drop what is behind us
        queue.unshift(data);
        trim(1);
      } else {
        console.warn("petcam: MSE append failed", err);
        events.onClosed(4000, "append failed: " + err.name);
        stop();
      }
    }
  }

  function onUpdateEnd() {
    if (needEdge) keepLive();
    pump();
  }

  function keepLive() {
    const b = sourceBuffer && sourceBuffer.buffered;
    if (!b || !b.length) return;
    const end = b.end(b.length - 1);
    const lag = end - video.currentTime;
    const inRange = [...Array(b.length).keys()].some((i) => b.start(i) <= video.currentTime && video.currentTime <= b.end(i));
    if (needEdge || lag > LAG_JUMP_S || lag < 0 || !inRange) {
      video.currentTime = Math.max(b.start(b.length - 1), end - LIVE_EDGE_S);
      video.playbackRate = 1;
      if (!needEdge) mse.jumps++;
      needEdge = false;
      video.play().catch(() => {});
    } else if (lag > LAG_FAST_S) {
      video.playbackRate = FAST_RATE;
    } else if (lag <= LIVE_EDGE_S) {
      video.playbackRate = 1;
    }
  }

  function trim(keepSeconds) {
    const b = sourceBuffer && sourceBuffer.buffered;
    if (!b || !b.length || sourceBuffer.updating) return;
    const until = video.currentTime - keepSeconds;
    if (until > b.start(0)) sourceBuffer.remove(b.start(0), until);
  }

  ws.onopen = () => events.onOpen();
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") {
      let m;
      try { m = JSON.parse(ev.data); } catch (err) { return; }
      if (m.type === "init") {
        seq = m.seq - 1;
        resetMedia(m);
      } else if (m.type === "error") {
        events.onError({code: m.error, detail: m.detail});
      } else if (m.type === "closed") {
        events.onError({code: "ended", detail: m.reason});
      }
      return;
    }
    seq++;
    mse.bytesReceived += ev.data.byteLength;
    if (mse.init && seq > mse.init.seq) mse.fragments++;
    queue.push(ev.data);
    pump();
    if (seq - ackedSeq >= ACK_EVERY) ack();
  };
  ws.onclose = (ev) => {
    if (!stopped) events.onClosed(ev.code, ev.reason);
    stop();
  };

  const timers = [
    setInterval(() => { if (performance.now() - lastAckAt >= ACK_IDLE_MS) ack(); }, 500),
    setInterval(() => { if (!needEdge) keepLive(); }, 200),
    setInterval(() => trim(KEEP_BEHIND_S), TRIM_EVERY_MS),
  ];

  function stop() {
    if (stopped) return;
    stopped = true;
    timers.forEach(clearInterval);
    if (ws.readyState <= WebSocket.OPEN) ws.close(1000);
    if (objectUrl) {
      if (video.src === objectUrl) {
        video.removeAttribute("src");
        video.load();
      }
      URL.revokeObjectURL(objectUrl);
      objectUrl = null;
    }
    queue = [];
    sourceBuffer = null;
    mediaSource = null;
  }

  return mse;
}

// Figures in the shape of player.js's WebRTC stats (inbound-rtp), for its status line.
export function mseStats(video, mse) {
  const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
  const total = q ? q.totalVideoFrames : 0;
  const dropped = q ? q.droppedVideoFrames : 0;
  return {
    timestamp: performance.now(),
    framesDecoded: total - dropped,
    framesReceived: mse.fragments,
    framesDropped: dropped,
    keyFramesDecoded: 0,
    bytesReceived: mse.bytesReceived,
    packetsLost: 0,
    frameWidth: video.videoWidth,
    frameHeight: video.videoHeight,
    pliCount: 0,
    codec: mse.init ? mse.init.mime : null,
    fmtp: null,
    lag: mse.lag(),
    jumps: mse.jumps,
  };
}
