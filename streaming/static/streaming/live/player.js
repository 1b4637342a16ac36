/* petcam live player: one receive-only WebRTC connection to the media worker.
 *
 * Signaling is a single HTTP round trip (the server does no trickle ICE):
 * gather our candidates, POST the offer, apply the answer, which carries the
 * server's candidates. The STUN/TURN servers (TURN with a short-lived
 * credential) come from GET /api/webrtc/ice-servers/; `?ice=relay` in the page's
 * address forces the TURN relay (iceTransportPolicy "relay"), as the server's
 * PETCAM_ICE_TRANSPORT_POLICY=relay does for everyone. The rest of this file keeps the picture coming:
 * reconnect with backoff when the connection or the offer fails, and a frame
 * watchdog for a connection that looks healthy but shows nothing.
 *
 * live.html and live_grid.html start it (live/page.js, live/grid.js). Every
 * element with `data-live-stage` (and data-camera) gets its own player:
 * live.html has one, the grid one per camera tile. A player inside a
 * `data-player-scope` element finds its labels there by `data-el`, otherwise
 * by id; labels a page does not have are simply not shown.
 *
 * WebRTC first; when it has not connected within MSE_FALLBACK_MS (UDP blocked, no
 * TURN) or the browser has no RTCPeerConnection, the same live video comes over a
 * WebSocket on the site's own port into Media Source Extensions (live/mse_player.js).
 * The status line says which transport plays, and a button switches by hand.
 *
 * window.petcamPlayer (the page's first player) and window.petcamPlayers[camera]
 * expose the state for tests and benchmarks:
 *   transport               "webrtc" | "mse"
 *   pc, session             the current RTCPeerConnection and server session id
 *   mse                     the WebSocket/MSE connection when transport is "mse"
 *   offerSentAt, firstFrameAt  performance.now() marks of the current connection
 *   stats()                 Promise of the inbound video figures (getStats) + rates
 *   state                   the state line: live | connecting | starting camera |
 *                           camera off | reconnecting | server not answering | no live video
 *
 * The state line (element "state") says what the viewer gets, from both the camera's
 * status (phase: starting / live / off) and this browser's connection: "live" only
 * while decoded frames arrive.
 */
import {csrfToken as pageCsrfToken} from "../../petcam/csrf.js";
import {mseStats, mseSupported, startMse} from "./mse_player.js";

const ICE_SERVERS_API = "/api/webrtc/ice-servers/";
// One fetch for every player of the page, renewed at half the credentials' lifetime.
let iceConfig = null;  // Promise of {iceServers, iceTransportPolicy}, with .refreshAt

export function startPlayer(stage) {
  const ICE_GATHER_CAP_MS = 2000;    // no trickle: wait for candidates, but not forever
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 5000;
  const STALL_MS = 3000;             // camera live, session up, no new frame this long -> reconnect
  const DISCONNECT_GRACE_MS = 2000;  // "disconnected" often heals by itself (ICE consent)
  const OFFER_TIMEOUT_MS = 15000;    // the server gives up on the worker after 10 s
  const forceRelay = new URLSearchParams(location.search).get("ice") === "relay";
  const STATS_EVERY_MS = 1000;
  const MSE_FALLBACK_MS = 5000;      // WebRTC not connected by then: video over the WebSocket

  const video = stage.querySelector("video");
  const camera = stage.dataset.camera;
  const api = "/api/cameras/" + encodeURIComponent(camera) + "/webrtc/";
  const scope = stage.closest("[data-player-scope]");
  const el = (id) => (scope ? scope.querySelector('[data-el="' + id + '"]')
                            : document.getElementById(id)) || document.createElement("span");

  const player = {
    transport: window.RTCPeerConnection ? "webrtc" : "mse",
    mse: null,
    pc: null,
    session: null,
    offerSentAt: null,
    firstFrameAt: null,
    connects: 0,      // offers answered by the server
    reconnects: 0,    // reconnects scheduled (any reason)
    lastReason: null, // why the last reconnect was scheduled
    rates: {fps: null, bitrateKbps: null},
    stats: () => readStats().then((s) => s && Object.assign(s, player.rates)),
    ttff: () => (player.firstFrameAt === null || player.offerSentAt === null)
      ? null : player.firstFrameAt - player.offerSentAt,
  };
  if (!window.petcamPlayer) window.petcamPlayer = player;
  window.petcamPlayers = window.petcamPlayers || {};
  window.petcamPlayers[camera] = player;

  let generation = 0;        // bumped per connection: callbacks of an old one must do nothing
  let backoff = BACKOFF_MIN_MS;
  let retryTimer = null;
  let disconnectTimer = null;
  let connectStartedAt = 0;
  let offerError = null;     // {code, detail} of the last failed offer, until one succeeds
  let stripMdns = true;      // see withoutMdnsCandidates(); off again if ICE fails without them
  let relayError = null;     // the TURN server's refusal while gathering, e.g. "401 Unauthorized"
  let fallbackTimer = null;
  let webrtcWorked = false;  // once WebRTC connected here, its failures retry WebRTC
  const cameraStatus = {known: false, live: false, state: null, phase: null, liveSince: 0};
  const LIVE_FRESH_MS = 2500;  // "live" while a frame was decoded this recently
  player.state = "connecting";
  const progress = {pc: null, sample: null, lastAt: 0};  // frame watchdog + rate baseline

  // ---- signaling ---------------------------------------------------------

  const csrfToken = () => pageCsrfToken(stage.dataset.csrf);

  class OfferError extends Error {
    constructor(status, code, detail) {
      super(detail || code);
      this.status = status;
      this.code = code;
    }
  }

  async function fetchIceConfig() {
    let response;
    try {
      response = await fetch(ICE_SERVERS_API, {credentials: "same-origin",
                                               signal: AbortSignal.timeout(OFFER_TIMEOUT_MS)});
    } catch (err) {
      throw new OfferError(0, "network", "The server cannot be reached.");
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new OfferError(response.status, body.error || "http_" + response.status, body.detail);
    return {iceServers: body.iceServers || [], iceTransportPolicy: body.iceTransportPolicy || "all",
            ttl: body.ttl || 0};
  }

  async function rtcConfiguration() {
    if (!iceConfig || performance.now() > iceConfig.refreshAt) {
      const pending = fetchIceConfig();
      pending.refreshAt = Infinity;  // until it answers: every player waits for this one
      pending.then((c) => { pending.refreshAt = performance.now() + c.ttl * 500; },
                   () => { if (iceConfig === pending) iceConfig = null; });
      iceConfig = pending;
    }
    const config = await iceConfig;  // a failed fetch throws its OfferError here
    return {iceServers: config.iceServers,
            iceTransportPolicy: forceRelay ? "relay" : config.iceTransportPolicy};
  }

  function hasRelayCandidate(sdp) {
    return /^a=candidate:\S+ \d+ \S+ \d+ \S+ \d+ typ relay/m.test(sdp);
  }

  async function postOffer(sdp) {
    let response;
    try {
      response = await fetch(api + "offer/", {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
        body: JSON.stringify({type: "offer", sdp: sdp}),
        signal: AbortSignal.timeout(OFFER_TIMEOUT_MS),
      });
    } catch (err) {
      throw new OfferError(0, "network", "The server cannot be reached.");
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new OfferError(response.status, body.error || "http_" + response.status, body.detail);
    return body;
  }

  function deleteSession(session, keepalive) {
    // keepalive lets the request outlive the page (sendBeacon can only POST).
    return fetch(api + encodeURIComponent(session) + "/", {
      method: "DELETE",
      credentials: "same-origin",
      headers: {"X-CSRFToken": csrfToken()},
      keepalive: !!keepalive,
      signal: keepalive ? undefined : AbortSignal.timeout(2000),
    }).catch(() => null);
  }

  // ---- connection --------------------------------------------------------

  function preferH264(transceiver) {
    // The server only sends the camera's H.264 as is: offer H.264 only (with rtx
    // for retransmissions), packetization-mode=1 first as the server sends FU-A.
    if (!transceiver.setCodecPreferences || !window.RTCRtpReceiver || !RTCRtpReceiver.getCapabilities) return;
    const codecs = (RTCRtpReceiver.getCapabilities("video") || {codecs: []}).codecs;
    const isMode1 = (c) => /packetization-mode=1/.test(c.sdpFmtpLine || "");
    const h264 = codecs.filter((c) => c.mimeType.toLowerCase() === "video/h264");
    const rtx = codecs.filter((c) => c.mimeType.toLowerCase() === "video/rtx");
    if (!h264.length) return;  // let the server answer with a clear error
    h264.sort((a, b) => isMode1(b) - isMode1(a));
    try {
      transceiver.setCodecPreferences(h264.concat(rtx));
    } catch (err) {
      console.warn("petcam: setCodecPreferences refused", err);
    }
  }

  function iceGatheringDone(pc, capMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      const timer = setTimeout(done, capMs);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  function withoutMdnsCandidates(sdp) {
    // Browsers hide their addresses behind random "<uuid>.local" names. The
    // server would try to resolve each by mDNS and wait up to 1 s for the
    // (usually absent) reply before it answers. It does not need them: we are
    // the controlling ICE agent, our checks reach its candidates and tell it
    // our real address.
    if (!stripMdns) return sdp;
    return sdp.split("\r\n").filter((line) => !/^a=candidate:\S+ \d+ \S+ \d+ \S+\.local /i.test(line)).join("\r\n");
  }

  async function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    await hangUp();
    showTransport();
    if (player.transport === "mse") return connectMse();
    armFallback();
    const gen = generation;
    connectStartedAt = performance.now();
    showConnection("connecting");
    let config;
    try {
      config = await rtcConfiguration();
    } catch (err) {
      if (gen === generation) onOfferFailed(err);
      return;
    }
    if (gen !== generation) return;
    const pc = new RTCPeerConnection(config);
    Object.assign(player, {pc: pc, session: null, offerSentAt: null, firstFrameAt: null});
    relayError = null;
    preferH264(pc.addTransceiver("video", {direction: "recvonly"}));
    pc.ontrack = (ev) => attach(ev.streams[0] || new MediaStream([ev.track]), gen);
    pc.onconnectionstatechange = () => onConnectionState(pc, gen);
    pc.onicecandidateerror = (ev) => {
      if (gen === generation && /^turns?:/i.test(ev.url || "")) {
        relayError = (ev.errorCode + " " + (ev.errorText || "")).trim();
      }
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await iceGatheringDone(pc, ICE_GATHER_CAP_MS);
      if (gen !== generation) return;  // superseded while gathering
      if (config.iceTransportPolicy === "relay" && !hasRelayCandidate(pc.localDescription.sdp)) {
        // Nothing to offer: the relay refused us (e.g. an expired credential) or is unreachable.
        iceConfig = null;  // next try with a fresh credential
        throw new OfferError(0, "no_relay", relayError || "no answer from the relay server");
      }
      player.offerSentAt = performance.now();
      const answer = await postOffer(withoutMdnsCandidates(pc.localDescription.sdp));
      if (gen !== generation) {  // superseded while the server answered: give the slot back
        deleteSession(answer.session);
        return;
      }
      player.session = answer.session;
      await pc.setRemoteDescription({type: "answer", sdp: answer.sdp});
      player.connects++;
      offerError = null;
      updateMessage();
    } catch (err) {
      if (gen !== generation) return;
      onOfferFailed(err);
    }
  }

  // ---- WebSocket + MSE: the fallback -------------------------------------

  function armFallback() {
    if (fallbackTimer || webrtcWorked || !mseSupported()) return;
    fallbackTimer = setTimeout(() => {
      fallbackTimer = null;
      // The server answered and refused (a full camera, too many sessions): the
      // WebSocket has the same limits, so wait on WebRTC's retry instead.
      if (offerError && offerError.status > 0) { armFallback(); return; }
      if (!webrtcWorked && player.transport === "webrtc") {
        switchTransport("mse", "WebRTC did not connect within " + MSE_FALLBACK_MS / 1000 + " s");
      }
    }, MSE_FALLBACK_MS);
  }

  function switchTransport(to, reason) {
    clearTimeout(fallbackTimer);
    fallbackTimer = null;
    console.info("petcam: live video over " + to + ": " + reason);
    player.transport = to;
    backoff = BACKOFF_MIN_MS;
    offerError = null;
    connect();
  }

  function connectMse() {
    const gen = generation;
    Object.assign(player, {offerSentAt: performance.now(), firstFrameAt: null});
    connectStartedAt = performance.now();
    showConnection("connecting");
    player.mse = startMse(video, camera, {
      onOpen: () => { if (gen === generation) showConnection("connected"); },
      onError: (err) => {
        if (gen !== generation) return;
        offerError = err;
        updateMessage();
      },
      onClosed: (code) => {
        if (gen !== generation) return;
        player.mse = null;
        if (code === 4401) onOfferFailed({status: 401});
        else scheduleReconnect("video socket closed (" + code + ")");
      },
    });
    watchFirstFrame(gen);
  }

  function showTransport() {
    const other = player.transport === "mse" ? "webrtc" : "mse";
    const usable = other === "mse" ? mseSupported() : !!window.RTCPeerConnection;
    el("transport").textContent = player.transport === "mse" ? "WebSocket" : "WebRTC";
    const button = el("transport-switch");
    button.hidden = !usable;
    button.textContent = other === "mse" ? gettext("use WebSocket") : gettext("use WebRTC");
  }

  async function hangUp() {
    generation++;
    clearTimeout(disconnectTimer);
    if (player.mse) {
      player.mse.stop();
      player.mse = null;
    }
    const pc = player.pc;
    const session = player.session;
    player.pc = null;
    player.session = null;
    if (pc) {
      pc.ontrack = null;
      pc.onconnectionstatechange = null;
      pc.close();
    }
    // Wait for the DELETE: with one viewer slot left, the next offer needs ours back.
    if (session) await deleteSession(session);
  }

  function scheduleReconnect(reason) {
    if (retryTimer) return;
    const delay = backoff;
    retryTimer = true;  // set before the display update below reads it
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    player.reconnects++;
    player.lastReason = reason;
    console.info("petcam: reconnecting in " + delay + " ms: " + reason);
    showConnection("retry in " + (delay / 1000).toFixed(1) + " s");
    retryTimer = setTimeout(connect, delay);
  }

  function onOfferFailed(err) {
    if (err.status === 401 || err.status === 403) {
      location.href = "/accounts/login/?next=" + encodeURIComponent(location.pathname);
      return;
    }
    offerError = {code: err.code || "error", detail: err.message, status: err.status || 0};
    updateMessage();
    scheduleReconnect("offer failed: " + offerError.code);
  }

  function onConnectionState(pc, gen) {
    if (gen !== generation) return;
    const state = pc.connectionState;
    showConnection(state);
    clearTimeout(disconnectTimer);
    if (state === "connected") {
      pc.wasConnected = webrtcWorked = true;
      clearTimeout(fallbackTimer);
    }
    if (state === "failed" || state === "closed") {
      if (state === "failed" && !pc.wasConnected) {
        stripMdns = false;  // next time, send every candidate
        iceConfig = null;   // and ask for fresh TURN credentials
        if (relayError) {
          offerError = {code: "no_relay", detail: relayError};
          updateMessage();
        }
      }
      scheduleReconnect("connection " + state);
    } else if (state === "disconnected") {
      disconnectTimer = setTimeout(() => {
        if (gen === generation && pc.connectionState === "disconnected") scheduleReconnect("connection disconnected");
      }, DISCONNECT_GRACE_MS);
    }
  }

  // ---- picture -----------------------------------------------------------

  function attach(stream, gen) {
    video.srcObject = stream;
    video.play().catch(() => {});  // muted autoplay is allowed; a refusal only delays the picture
    watchFirstFrame(gen);
  }

  function watchFirstFrame(gen) {
    const mark = () => {
      if (gen !== generation || player.firstFrameAt !== null) return;
      player.firstFrameAt = performance.now();
      progress.lastAt = player.firstFrameAt;
      offerError = null;
      backoff = BACKOFF_MIN_MS;  // this connection works: next failure retries quickly again
      el("video-ttff").textContent = player.ttff() === null ? "–" : Math.round(player.ttff()) + " ms";
      updateMessage();
    };
    if (typeof video.requestVideoFrameCallback === "function") video.requestVideoFrameCallback(mark);
    video.addEventListener("loadeddata", mark, {once: true});
  }

  // ---- stats and the frame watchdog ---------------------------------------

  async function readStats() {
    if (player.mse) return mseStats(video, player.mse);
    const pc = player.pc;
    if (!pc) return null;
    const report = await pc.getStats();
    for (const r of report.values()) {
      if (r.type !== "inbound-rtp" || r.kind !== "video") continue;
      const codec = r.codecId ? report.get(r.codecId) : null;
      return {
        timestamp: r.timestamp,
        framesDecoded: r.framesDecoded || 0,
        framesReceived: r.framesReceived || 0,
        framesDropped: r.framesDropped || 0,
        keyFramesDecoded: r.keyFramesDecoded || 0,
        bytesReceived: r.bytesReceived || 0,
        packetsLost: r.packetsLost || 0,
        frameWidth: r.frameWidth || 0,
        frameHeight: r.frameHeight || 0,
        pliCount: r.pliCount || 0,
        codec: codec ? codec.mimeType : null,
        fmtp: codec ? codec.sdpFmtpLine : null,
      };
    }
    return null;
  }

  async function sampleStats() {
    const pc = player.pc || player.mse;
    const s = await readStats().catch(() => null);
    const now = performance.now();
    if (pc !== progress.pc) {  // new connection: new baseline
      Object.assign(progress, {pc: pc, sample: null, lastAt: player.firstFrameAt || 0});
      player.rates = {fps: null, bitrateKbps: null};
    }
    if (s && progress.sample) {
      const dt = (s.timestamp - progress.sample.timestamp) / 1000;
      if (dt > 0) {
        player.rates = {
          fps: (s.framesDecoded - progress.sample.framesDecoded) / dt,
          bitrateKbps: 8 * (s.bytesReceived - progress.sample.bytesReceived) / dt / 1000,
        };
      }
    }
    if (s && s.framesDecoded > (progress.sample ? progress.sample.framesDecoded : 0)) {
      progress.lastAt = now;
      backoff = BACKOFF_MIN_MS;
    }
    if (s) progress.sample = s;
    showStats(s);
    checkStall(now);
    updateMessage();
  }

  function checkStall(now) {
    // A camera restart normally flows through the same connection (the server
    // forwards the new SPS and IDR). Only when the camera has been live for a
    // while and still no frame is decoded is the connection presumed broken.
    if (!cameraStatus.live || retryTimer || !(player.session || player.mse)) return;
    const since = Math.max(progress.lastAt, cameraStatus.liveSince, connectStartedAt);
    if (now - since > STALL_MS) scheduleReconnect("no frame decoded for " + STALL_MS / 1000 + " s");
  }

  // ---- display -----------------------------------------------------------

  function showConnection(text) {
    el("connection").textContent = text;
    el("connection-dot").className = "dot " + text.split(" ")[0];
    updateMessage();
  }

  function pictureFlowing() {
    if (player.firstFrameAt === null || performance.now() - progress.lastAt >= LIVE_FRESH_MS) return false;
    if (player.mse) return true;  // frames decoded from the WebSocket: that is the connection
    const pc = player.pc;
    return !!pc && pc.connectionState === "connected";
  }

  // The state words, for the translation catalogs (makemessages finds them here).
  void [gettext_noop("no live video"), gettext_noop("starting camera"), gettext_noop("camera off"),
        gettext_noop("live"), gettext_noop("server not answering"), gettext_noop("reconnecting"),
        gettext_noop("connecting")];

  // [text, kind]: kind is the state line's class (live, waiting, off, error).
  function stateLine() {
    const unreachable = cameraStatus.known && cameraStatus.state === "worker_unreachable";
    if (offerError && offerError.code === "unsupported") return ["no live video", "error"];
    if (cameraStatus.known && !unreachable && !cameraStatus.live) {
      return cameraStatus.phase === "starting" ? ["starting camera", "waiting"] : ["camera off", "off"];
    }
    // The picture may keep coming while the status does not (e.g. Redis restarting).
    if (pictureFlowing()) return ["live", "live"];
    if (unreachable) return ["server not answering", "error"];
    if (retryTimer || offerError) return ["reconnecting", "waiting"];
    return ["connecting", "waiting"];
  }

  function showState() {
    const [state, kind] = stateLine();
    player.state = state;  // the English word: scripts and tests read it
    const text = gettext(state);  // the state line in the page's language (/jsi18n/)
    const line = el("state");
    if (line.textContent !== text) line.textContent = text;
    line.className = "state-line " + kind;
    stage.dataset.state = kind;  // CSS and the controls (live/controls.js) follow it
  }

  function showStats(s) {
    const r = player.rates;
    el("video-fps").textContent = r.fps === null ? "–" : r.fps.toFixed(1);
    el("video-bitrate").textContent = r.bitrateKbps === null ? "–" : (r.bitrateKbps / 1000).toFixed(2);
    el("video-resolution").textContent = s && s.frameWidth ? s.frameWidth + "×" + s.frameHeight : "–";
  }

  function messageText() {
    if (offerError && offerError.code === "max_viewers") {
      return [gettext("This camera already has the maximum number of viewers. " +
                      "The picture starts as soon as a place frees up."), true];
    }
    if (offerError && offerError.code === "too_many_sessions") {
      return [gettext("You are already watching this camera in other tabs or devices. " +
                      "Close one of them to watch here."), true];
    }
    if (offerError && offerError.code === "unknown_camera") return [gettext("This camera does not exist."), true];
    if (offerError && offerError.code === "no_relay") {
      return [interpolate(gettext("Cannot connect to the camera through the relay server (%(detail)s). Retrying…"),
                          {detail: offerError.detail}, true), true];
    }
    if (offerError && offerError.code === "unsupported") return [gettext("This browser cannot play live video."), true];
    if (offerError) return [interpolate(gettext("Cannot start the video (%(detail)s). Retrying…"), {detail: offerError.detail}, true), true];
    if (cameraStatus.known && cameraStatus.state === "worker_unreachable") {
      return [gettext("The media server is not answering. The video resumes when it is back."), true];
    }
    if (cameraStatus.known && !cameraStatus.live && cameraStatus.phase === "starting") {
      return [gettext("Starting the camera…"), false];
    }
    if (cameraStatus.known && !cameraStatus.live) {
      return [gettext("The camera is off. The video resumes when it comes back."), false];
    }
    if (player.firstFrameAt === null) return [gettext("Connecting…"), false];
    return [null, false];
  }

  function updateMessage() {
    const [text, isError] = messageText();
    const box = el("player-message");
    box.hidden = text === null;
    box.textContent = text || "";
    box.classList.toggle("error", isError);
    showState();
  }

  // ---- wiring ------------------------------------------------------------

  document.addEventListener("petcam:status", (ev) => {
    const s = ev.detail;
    if (s.camera && s.camera !== camera) return;  // another tile's camera
    if (s.live && !cameraStatus.live) cameraStatus.liveSince = performance.now();
    Object.assign(cameraStatus, {known: true, live: !!s.live, state: s.state, phase: s.phase || null});
    updateMessage();
  });

  // Leaving the page frees the viewer slot at once instead of after the server's timeout.
  window.addEventListener("pagehide", () => {
    if (player.session) deleteSession(player.session, true);
    player.session = null;
    generation++;
    if (player.pc) player.pc.close();
    if (player.mse) player.mse.stop();
  });
  window.addEventListener("pageshow", (ev) => { if (ev.persisted) connect(); });

  el("transport-switch").addEventListener("click", () => {
    switchTransport(player.transport === "mse" ? "webrtc" : "mse", "chosen by the user");
  });
  if (!window.RTCPeerConnection && !mseSupported()) {
    offerError = {code: "unsupported", detail: "this browser has no WebRTC"};
    updateMessage();
    return player;
  }
  setInterval(sampleStats, STATS_EVERY_MS);
  connect();
  return player;
}

// One player per `data-live-stage` element, in document order.
export function startPlayers() {
  return [...document.querySelectorAll("[data-live-stage]")].map(startPlayer);
}
