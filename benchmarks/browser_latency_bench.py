"""Live video in real headless Chromium: time to first frame and glass-to-glass latency.

Debian chromium (Playwright, software H.264, no GPU) on loopback, against the
camera simulator (2 s GOP by default, pre-encoded loop) and petcam's worker.
The page is the site's own origin (/health) plus this script's JS: an
RTCPeerConnection, the offer POSTed with an API token, the track played in a
<video>, and requestVideoFrameCallback for every presented frame.

(a) Time to first frame: offer POST start -> first requestVideoFrameCallback,
    `--trials` new viewers each, started at random points of the GOP. Side by
    side in the same run: the server replaying the cached GOP (default) and,
    when the worker has the PETCAM_GOP_REPLAY switch, the "wait for the next
    IDR" reference measured for real with PETCAM_GOP_REPLAY=0; always also
    the reference's expected wait computed from the simulator's IDR times
    seen in shm (POST start -> next IDR written). "live after" is when the
    first frame less than 150 ms old was shown (a replayed GOP is history);
    "late glass" is the glass-to-glass p50 over the trial's last second (does
    the start leave the browser's playout delay high?).

(b) Glass-to-glass: each presented frame is drawn to a canvas and its frame
    code (scene.py: 2 rows of 18 blocks at (16,16)) decoded in the page; the
    code maps to the frame_number whose CLOCK_MONOTONIC stamp this script's
    own FrameReader saw in shm. Browser times (performance.timeOrigin + t,
    wall clock) are moved to CLOCK_MONOTONIC through paired samples of the
    two clocks. Latency = expectedDisplayTime ("glass") - shm stamp, with the
    components: shm write -> reader yield (this script's FrameReader, the
    worker's algorithm), shm stamp -> last packet received (receiveTime:
    worker, aiortc, loopback), receive -> presented (jitter buffer + decode),
    presented -> expected display (compositor). The camera's encode happens
    before the stamp and is not in the figure: the simulator's libx264
    encode time per frame is reported next to it.

--relay: the same against a real coturn (started here on 127.0.0.1, stopped after),
    side by side in the same run: "direct" (host candidates, the default page) and
    "TURN relay" (iceTransportPolicy relay with the credential from GET
    /api/webrtc/ice-servers/, fetched before each trial as the live page does). With
    --relay, "gather_ms" (createOffer -> candidates gathered, which includes the TURN
    allocation) and "from_start_ms" (createOffer -> first frame) are what the relay adds.

Prints tables and JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks._harness import Stack, emit, loadavg, pct, print_table
from streaming.media.h264.nal import NalType, nal_type, split_nal_units
from streaming.media.shm.stream_reader import FrameReader
from streaming.simulator import SimulatorConfig
from tests.support.browser import CHROMIUM, READ_FRAME_CODE_FN, launch

TARGET_TTFF_P50 = 300.0
TARGET_G2G_P50 = 50.0
TARGET_G2G_P95 = 80.0
LIVE_MS = 150.0  # a frame at most this old counts as "live" for the caught-up time

# One viewer: returns timings (performance.now() ms) and, for `collectMs` after the
# first frame, every presented frame with its decoded frame code (READ_FRAME_CODE_FN, the
# tests' reader, on the picture's top-left 320x64 at native scale).
WATCH_JS = "async ({token, timeoutMs, collectMs, relay}) => {" + READ_FRAME_CODE_FN + r"""
  const stripMdns = (sdp) => sdp.split("\r\n").filter(
    (l) => !/^a=candidate:\S+ \d+ \S+ \d+ \S+\.local /i.test(l)).join("\r\n");
  const headers = {"Content-Type": "application/json", "Authorization": "Token " + token};
  const canvas = document.createElement("canvas");
  canvas.width = 320; canvas.height = 64;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  const readCode = (video) => {
    if (video.videoWidth < 320 || video.videoHeight < 64) return null;
    ctx.drawImage(video, 0, 0, 320, 64, 0, 0, 320, 64);
    return readFrameCode(ctx);
  };
  const res = {frames: [], timeOrigin: performance.timeOrigin};
  let config = {};
  if (relay) {  // as the live page: the API's servers, TURN only
    const ice = await (await fetch("/api/webrtc/ice-servers/", {headers})).json();
    config = {iceServers: ice.iceServers, iceTransportPolicy: "relay"};
  }
  res.startAt = performance.now();
  const pc = new RTCPeerConnection(config);
  const tr = pc.addTransceiver("video", {direction: "recvonly"});
  const video = document.createElement("video");
  video.muted = true; video.autoplay = true; video.playsInline = true;
  video.width = 320; video.height = 180;
  document.body.appendChild(video);
  let resolveFirst, resolveDone;
  const first = new Promise((r) => { resolveFirst = r; });
  const done = new Promise((r) => { resolveDone = r; });
  const onFrame = (now, md) => {
    if (res.firstFrameAt === undefined) {
      res.firstFrameAt = now;
      res.firstPresentationTime = md.presentationTime;
      resolveFirst();
    }
    res.frames.push({code: readCode(video), now: now, presentationTime: md.presentationTime,
                     expectedDisplayTime: md.expectedDisplayTime,
                     receiveTime: md.receiveTime, processingDuration: md.processingDuration,
                     rtpTimestamp: md.rtpTimestamp, presentedFrames: md.presentedFrames});
    if (now - res.firstFrameAt >= collectMs) resolveDone();
    else video.requestVideoFrameCallback(onFrame);
  };
  pc.ontrack = (ev) => {
    res.trackAt = performance.now();
    video.srcObject = new MediaStream([ev.track]);
    video.play().catch(() => {});
    video.requestVideoFrameCallback(onFrame);
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "connected" && res.connectedAt === undefined)
      res.connectedAt = performance.now();
  };
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((r) => {
      if (pc.iceGatheringState === "complete") return r();
      pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === "complete") r(); };
      setTimeout(r, 3000);
    });
    res.postAt = performance.now();
    if (relay && !/ typ relay /.test(pc.localDescription.sdp)) {
      res.error = "no relay candidate (TURN refused or unreachable)";
      return res;
    }
    const resp = await fetch("/api/cameras/default/webrtc/offer/", {method: "POST", headers,
      body: JSON.stringify({type: "offer", sdp: stripMdns(pc.localDescription.sdp)})});
    const answer = await resp.json();
    res.answerAt = performance.now();
    if (!resp.ok) {
      res.error = "offer HTTP " + resp.status + ": " + JSON.stringify(answer);
      return res;
    }
    res.session = answer.session;
    await pc.setRemoteDescription({type: "answer", sdp: answer.sdp});
    const timeout = (ms) => new Promise((r) => setTimeout(() => r("timeout"), ms));
    if (await Promise.race([first.then(() => "ok"), timeout(timeoutMs)]) === "timeout") {
      res.error = "no frame within " + timeoutMs + " ms (" + pc.connectionState + ")";
    } else {
      await Promise.race([done, timeout(collectMs + 5000)]);
    }
    const stats = await pc.getStats();
    for (const r of stats.values())
      if (r.type === "inbound-rtp" && r.kind === "video")
        res.inbound = {framesDecoded: r.framesDecoded, framesDropped: r.framesDropped,
                       packetsLost: r.packetsLost, nackCount: r.nackCount,
                       pliCount: r.pliCount, jitterBufferDelay: r.jitterBufferDelay,
                       jitterBufferEmittedCount: r.jitterBufferEmittedCount,
                       totalDecodeTime: r.totalDecodeTime, frameWidth: r.frameWidth,
                       frameHeight: r.frameHeight, decoderImplementation: r.decoderImplementation};
    return res;
  } finally {
    pc.close();
    video.remove();
    if (res.session)
      await fetch("/api/cameras/default/webrtc/" + res.session + "/", {method: "DELETE", headers});
  }
}
"""


class ShmRecorder:
    """This process's own FrameReader: frame_number -> (stamp ns, read ns, is IDR)."""

    def __init__(self, segment: str) -> None:
        self.reader = FrameReader(segment)
        self.frames: dict[int, tuple[int, int, bool]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="shm-recorder")
        self._thread.start()

    def _run(self) -> None:
        for raw in self.reader.frames(self._stop.is_set):
            h = raw.header
            idr = any(nal_type(n) == NalType.IDR for n in split_nal_units(raw.data))
            self.frames[h.frame_number] = (h.tv_sec * 10**9 + h.tv_nsec, raw.read_ns, idr)

    def idr_stamps(self) -> list[int]:
        return sorted(ts for ts, _, idr in list(self.frames.values()) if idr)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(3)
        self.reader.close()


class Clocks:
    """Browser wall-clock ms <-> CLOCK_MONOTONIC ns, from paired samples."""

    def __init__(self) -> None:
        self.wall_minus_mono_ns = self._wall_minus_mono()
        self.browser_minus_wall_ns = 0.0
        self.browser_uncertainty_ms = None

    @staticmethod
    def _wall_minus_mono() -> int:
        best = None
        for _ in range(50):
            m0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            w = time.time_ns()
            m1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            if best is None or m1 - m0 < best[0]:
                best = (m1 - m0, w - (m0 + m1) // 2)
        return best[1]

    def calibrate_browser(self, page, samples: int = 30) -> dict:
        """Chromium's timeOrigin+now against time.time(), bracketed by the round trip."""
        best = None
        for _ in range(samples):
            w0 = time.time_ns()
            b = page.evaluate("performance.timeOrigin + performance.now()")
            w1 = time.time_ns()
            if best is None or w1 - w0 < best[0]:
                best = (w1 - w0, b * 1e6 - (w0 + w1) / 2)
        self.browser_minus_wall_ns = best[1]
        self.browser_uncertainty_ms = best[0] / 2e6
        return {"browser_minus_wall_ms": round(best[1] / 1e6, 3),
                "uncertainty_ms": round(self.browser_uncertainty_ms, 3)}

    def to_mono_ns(self, browser_epoch_ms: float) -> float:
        return browser_epoch_ms * 1e6 - self.browser_minus_wall_ns - self.wall_minus_mono_ns


def code_index(recorder: ShmRecorder, loop_frames: int, live_mode: bool) -> dict:
    """Frame code shown in the picture -> [(frame_number, stamp ns)].

    Live encoding draws the frame number itself; a replayed loop draws the
    position in the loop (frame_number - 1) % loop_frames + 1, so a code
    names a frame only together with a time, and the loop (6 s) is far
    longer than any latency measured here.
    """
    index: dict[int, list[tuple[int, int]]] = {}
    for fn, (ts, _read, _idr) in list(recorder.frames.items()):
        code = (fn & 0xFFFFFFFF) if live_mode else (fn - 1) % loop_frames + 1
        index.setdefault(code, []).append((fn, ts))
    return index


MAP_SLACK_NS = 200_000_000


def frame_for_code(index: dict, code: int, mono_ns: float) -> tuple[int, int] | None:
    """The newest frame showing `code` stamped before `mono_ns` (+ slack for clock error and
    for a canvas that caught the next frame: those come out slightly negative, and counted)."""
    best = None
    for fn, ts in index.get(code, ()):
        if ts <= mono_ns + MAP_SLACK_NS and (best is None or fn > best[0]):
            best = (fn, ts)
    return best


def stats_ms(values: list[float]) -> dict:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return {"n": 0, "p50": None, "p95": None, "mean": None, "min": None, "max": None}
    return {"n": len(values), "p50": round(pct(values, 50), 1), "p95": round(pct(values, 95), 1),
            "mean": round(sum(values) / len(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1)}


def frame_latencies(res: dict, clocks: Clocks, recorder: ShmRecorder, loop_frames: int,
                    live_mode: bool) -> list[dict]:
    out = []
    origin = res["timeOrigin"]
    index = code_index(recorder, loop_frames, live_mode)
    for f in res["frames"]:
        if f["code"] is None:
            continue
        display = clocks.to_mono_ns(origin + (f["expectedDisplayTime"] or f["now"]))
        hit = frame_for_code(index, f["code"], display)
        if hit is None:
            continue
        fn, ts = hit
        _ts, read_ns, _idr = recorder.frames[fn]

        def ms(t, ts=ts):
            return None if t is None else (clocks.to_mono_ns(origin + t) - ts) / 1e6

        out.append({"frame_number": fn, "code": f["code"], "now": f["now"],
                    "glass_ms": (display - ts) / 1e6,
                    "presented_ms": ms(f["presentationTime"]),
                    "callback_ms": ms(f["now"]),
                    "received_ms": ms(f.get("receiveTime")),
                    "shm_read_ms": (read_ns - ts) / 1e6,
                    "decode_ms": (f["processingDuration"] * 1000
                                  if f.get("processingDuration") is not None else None),
                    "compositor_ms": ((f["expectedDisplayTime"] - f["presentationTime"])
                                      if f.get("expectedDisplayTime") is not None else None)})
    return out


def ttff_trials(page, token: str, trials: int, gop_s: float, recorder: ShmRecorder,
                clocks: Clocks, loop_frames: int, live_mode: bool, label: str,
                collect_s: float, relay: bool = False) -> dict:
    rows = []
    for i in range(trials):
        time.sleep(random.uniform(0.2, gop_s + 0.2))  # start anywhere in the GOP
        res = page.evaluate(WATCH_JS, {"token": token, "timeoutMs": 10_000,
                                       "collectMs": 1000 * collect_s, "relay": relay})
        row = {"trial": i + 1, "error": res.get("error")}
        post = res.get("postAt")
        if post is not None:
            post_mono = clocks.to_mono_ns(res["timeOrigin"] + post)
            row["answer_ms"] = res.get("answerAt", post) - post
            row["gather_ms"] = post - res["startAt"]
            if res.get("connectedAt") is not None:
                row["connected_ms"] = res["connectedAt"] - post
            if res.get("firstFrameAt") is not None:
                row["first_frame_ms"] = res["firstFrameAt"] - post
                row["from_start_ms"] = res["firstFrameAt"] - res["startAt"]
            row["post_mono_ns"] = post_mono
            lat = frame_latencies(res, clocks, recorder, loop_frames, live_mode)
            if lat:
                row["first_frame_age_ms"] = lat[0]["glass_ms"]
                live = [x for x in lat if x["glass_ms"] <= LIVE_MS]
                if live:
                    row["live_after_ms"] = live[0]["now"] - post
                # Does the start leave the picture late? Glass-to-glass over the last second.
                tail = [x["glass_ms"] for x in lat
                        if x["now"] - res["firstFrameAt"] >= 1000 * (collect_s - 1)]
                if tail:
                    row["late_glass_ms"] = pct(tail, 50)
        rows.append(row)
        print(f"  [{label}] trial {i + 1}: first frame "
              f"{_r(row.get('first_frame_ms'))} ms, live after {_r(row.get('live_after_ms'))} ms "
              f"{row['error'] or ''}", file=sys.stderr, flush=True)
    time.sleep(gop_s + 0.5)  # the IDR after the last trial
    idrs = recorder.idr_stamps()
    for row in rows:
        # The reference's floor: POST start -> the next IDR the camera writes.
        post_mono = row.pop("post_mono_ns", None)
        after = [t for t in idrs if post_mono is not None and t >= post_mono]
        if after:
            row["next_idr_ms"] = (after[0] - post_mono) / 1e6
    return {
        "label": label,
        "trials": trials,
        "errors": [r["error"] for r in rows if r["error"]],
        "first_frame_ms": stats_ms([r.get("first_frame_ms") for r in rows]),
        "live_after_ms": stats_ms([r.get("live_after_ms") for r in rows]),
        "first_frame_age_ms": stats_ms([r.get("first_frame_age_ms") for r in rows]),
        "late_glass_ms": stats_ms([r.get("late_glass_ms") for r in rows]),
        "answer_ms": stats_ms([r.get("answer_ms") for r in rows]),
        "gather_ms": stats_ms([r.get("gather_ms") for r in rows]),
        "from_start_ms": stats_ms([r.get("from_start_ms") for r in rows]),
        "connected_ms": stats_ms([r.get("connected_ms") for r in rows]),
        "next_idr_ms": stats_ms([r.get("next_idr_ms") for r in rows]),
        "rows": rows,
    }


def glass_to_glass(page, stack: Stack, recorder: ShmRecorder, clocks: Clocks,
                   loop_frames: int, live_mode: bool, args, relay: bool = False) -> dict:
    cal = clocks.calibrate_browser(page)
    res = page.evaluate(WATCH_JS, {"token": stack.token, "timeoutMs": 15_000,
                                   "collectMs": 1000 * (args.g2g_seconds + args.settle),
                                   "relay": relay})
    cal_after = clocks.calibrate_browser(page)
    first = res.get("firstFrameAt", 0)
    lat = frame_latencies(res, clocks, recorder, loop_frames, live_mode)
    settled = [x for x in lat if x["now"] - first >= args.settle * 1000]
    presented = [f for f in res["frames"] if f["now"] - first >= args.settle * 1000]
    inbound = res.get("inbound") or {}
    # Glass p50 per 5 s of the run (from the first frame): does a start-up effect decay?
    buckets = {}
    for x in lat:
        buckets.setdefault(int((x["now"] - first) // 5000), []).append(x["glass_ms"])
    return {
        "error": res.get("error"),
        "frames_presented": len(presented),
        "frames_with_code": sum(f["code"] is not None for f in presented),
        "frames_mapped": len(settled),
        # received before the camera wrote it: the canvas read a newer picture than the
        # callback's metadata describes (the callback ran late); such frames look ~1 frame
        # younger than they are.
        "frames_code_ahead_of_metadata": sum(1 for x in settled if x["received_ms"] is not None
                                             and x["received_ms"] < 0),
        "presented_fps": round(len(presented) / args.g2g_seconds, 2),
        "glass_ms": stats_ms([x["glass_ms"] for x in settled]),
        "presented_ms": stats_ms([x["presented_ms"] for x in settled]),
        "received_ms": stats_ms([x["received_ms"] for x in settled]),
        "shm_read_ms": stats_ms([x["shm_read_ms"] for x in settled]),
        "receive_to_presented_ms": stats_ms([x["presented_ms"] - x["received_ms"]
                                             for x in settled if x["received_ms"] is not None]),
        "decode_ms": stats_ms([x["decode_ms"] for x in settled]),
        "compositor_ms": stats_ms([x["compositor_ms"] for x in settled]),
        "glass_p50_per_5s": {f"{5 * k}-{5 * k + 5}s": round(pct(v, 50), 1)
                             for k, v in sorted(buckets.items())},
        "chrome_jitter_buffer_ms_avg": (
            round(1000 * inbound["jitterBufferDelay"] / inbound["jitterBufferEmittedCount"], 1)
            if inbound.get("jitterBufferEmittedCount") else None),
        "inbound": inbound,
        "clock_calibration": {"before": cal, "after": cal_after},
        "load": loadavg(),
    }


def _r(v):
    return None if v is None else round(v)


def simulator_info(stack: Stack) -> dict:
    text = stack.simulator.log_path.read_text(errors="replace")
    m = re.search(r"loop of (\d+) frames \(encode ([\d.]+) ms/frame", text)
    if m:
        return {"mode": "loop", "loop_frames": int(m.group(1)), "encode_ms": float(m.group(2))}
    m = re.search(r"live \(encode ([\d.]+) ms/frame", text)
    return {"mode": "live", "loop_frames": 0, "encode_ms": float(m.group(1)) if m else None}


def run(args) -> dict:
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"{CHROMIUM} is missing (apt-get install chromium)")
    turn_ctx = contextlib.nullcontext(None)
    if args.relay:
        from tests.support.turn_server import running_coturn

        turn_ctx = running_coturn(Path(tempfile.mkdtemp(prefix="petcam-bench-coturn-")))
    with turn_ctx as turn:
        return _run(args, turn)


def _run(args, turn) -> dict:
    from playwright.sync_api import sync_playwright

    stack = Stack(width=args.width, height=args.height, fps=args.fps, bitrate=args.bitrate,
                  gop=args.gop, profile=args.profile, mode=args.mode, max_viewers=10,
                  extra_env=turn.site_env() if turn else None, keep_logs=args.keep_logs)
    gop = args.gop or 2 * args.fps
    recorder = None
    result: dict = {"benchmark": "browser_latency", "ttff": [], "g2g": [], "notes": []}
    if turn:
        result["turn"] = turn.url
    try:
        stack.prepare()
        stack.start_simulator()
        recorder = ShmRecorder(stack.segment)
        with sync_playwright() as pw:
            browser = launch(pw)
            try:
                settings = [("GOP replay (petcam default)", {"PETCAM_GOP_REPLAY": "1"}, False)]
                if turn:  # the relay against the direct path, same server settings
                    settings = [("direct (host candidates)", {"PETCAM_GOP_REPLAY": "1"}, False),
                                ("TURN relay (coturn)", {"PETCAM_GOP_REPLAY": "1"}, True)]
                elif args.reference:
                    settings.append(("wait for next IDR (PETCAM_GOP_REPLAY=0)",
                                     {"PETCAM_GOP_REPLAY": "0"}, False))
                if args.also_unpaced:
                    # Issue 13: IDR pacing, batched sends and the idle reader must not
                    # cost latency: the send path as it was before them, same run.
                    settings.append(("GOP replay, unpaced, a sendto per packet, reader never "
                                     "relaxed", {"PETCAM_GOP_REPLAY": "1", "PETCAM_PACING": "0",
                                                 "PETCAM_BATCH_SEND": "0",
                                                 "PETCAM_IDLE_RELAX": "0"}, False))
                for label, env, relay in settings:
                    stack.start_server(env)
                    status = stack.wait_live()
                    sim = simulator_info(stack)
                    live_mode = sim["mode"] == "live"
                    loop_frames = sim["loop_frames"] or SimulatorConfig(
                        width=args.width, height=args.height, fps=args.fps,
                        gop=args.gop).loop_frames
                    replay = status.get("viewers", {}).get("replay_gop")
                    if env["PETCAM_GOP_REPLAY"] == "0" and replay is not False:
                        result["notes"].append("the worker does not report replay_gop=false: "
                                               "PETCAM_GOP_REPLAY has no effect; reference "
                                               "only as the expected wait")
                        stack.stop_server()
                        break
                    page = browser.new_page()
                    page.goto(stack.base + "/health")
                    clocks = Clocks()
                    # (b) glass-to-glass on one long-lived viewer, in both settings.
                    g2g = glass_to_glass(page, stack, recorder, clocks, loop_frames, live_mode,
                                         args, relay)
                    g2g["setting"] = label
                    result["g2g"].append(g2g)
                    print(f"  [{label}] glass-to-glass: {g2g['glass_ms']}", file=sys.stderr,
                          flush=True)
                    result["ttff"].append(ttff_trials(
                        page, stack.token, args.trials, gop / args.fps, recorder, clocks,
                        loop_frames, live_mode, label, args.trial_seconds, relay))
                    page.close()
                    stack.stop_server()
            finally:
                browser.close()
        result["simulator"] = simulator_info(stack)
    finally:
        if recorder is not None:
            recorder.stop()
        stack.close()
    idrs = []
    if recorder is not None:
        stamps = recorder.idr_stamps()
        idrs = [(b - a) / 1e6 for a, b in zip(stamps, stamps[1:], strict=False)]
    result["config"] = {"resolution": f"{args.width}x{args.height}", "fps": args.fps,
                        "bitrate_kbps": args.bitrate, "gop_frames": gop,
                        "profile": args.profile, "trials": args.trials,
                        "g2g_seconds": args.g2g_seconds, "worker_mode": stack.mode,
                        "idr_interval_ms_mean": round(sum(idrs) / len(idrs), 1) if idrs else None,
                        "expected_idr_wait_ms": round(sum(idrs) / len(idrs) / 2, 1)
                        if idrs else None}
    ratios, targets = {}, {}
    if turn and len(result["g2g"]) > 1 and result["g2g"][0]["glass_ms"]["p50"]:
        ratios["g2g_p50_relay_over_direct"] = round(
            result["g2g"][1]["glass_ms"]["p50"] / result["g2g"][0]["glass_ms"]["p50"], 2)
    elif len(result["g2g"]) > 1 and result["g2g"][1]["glass_ms"]["p50"]:
        ratios["g2g_p50_replay_over_no_replay"] = round(
            result["g2g"][0]["glass_ms"]["p50"] / result["g2g"][1]["glass_ms"]["p50"], 2)
    replay = result["ttff"][0] if result["ttff"] else None
    ref = result["ttff"][1] if len(result["ttff"]) > 1 and not turn else None
    if turn and len(result["ttff"]) > 1:
        direct, relayed = result["ttff"]
        for metric in ("first_frame_ms", "from_start_ms", "gather_ms"):
            if direct[metric]["p50"] and relayed[metric]["p50"]:
                ratios[f"relay_over_direct_{metric}_p50"] = round(
                    relayed[metric]["p50"] / direct[metric]["p50"], 2)
    if replay and replay["first_frame_ms"]["p50"] is not None:
        p50 = replay["first_frame_ms"]["p50"]
        targets[f"time to first frame p50 < {TARGET_TTFF_P50:g} ms (got {p50})"] = (
            p50 < TARGET_TTFF_P50)
        exp = replay["next_idr_ms"]["mean"]
        if exp:
            ratios["expected_next_idr_wait_over_replay_ttff_p50"] = round(exp / p50, 2)
        if ref and ref["first_frame_ms"]["p50"]:
            ratios["reference_ttff_p50_over_replay_p50"] = round(
                ref["first_frame_ms"]["p50"] / p50, 2)
            ratios["reference_ttff_p95_over_replay_p95"] = round(
                ref["first_frame_ms"]["p95"] / replay["first_frame_ms"]["p95"], 2)
    g2g = result["g2g"][0]["glass_ms"] if result["g2g"] else {}
    if g2g.get("p50") is not None:
        targets[f"glass-to-glass p50 < {TARGET_G2G_P50:g} ms (got {g2g['p50']})"] = (
            g2g["p50"] < TARGET_G2G_P50)
        targets[f"glass-to-glass p95 < {TARGET_G2G_P95:g} ms (got {g2g['p95']})"] = (
            g2g["p95"] < TARGET_G2G_P95)
    result["ratios"] = ratios
    result["targets_met"] = targets
    return result


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.browser_latency_bench",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=20, help="new viewers per setting")
    ap.add_argument("--trial-seconds", type=float, default=3,
                    help="frames watched per trial after the first one ('late glass' is the "
                         "glass-to-glass p50 over the last second of it)")
    ap.add_argument("--g2g-seconds", type=float, default=20, help="glass-to-glass window")
    ap.add_argument("--settle", type=float, default=3,
                    help="seconds after the first frame left out of glass-to-glass")
    ap.add_argument("--no-reference", dest="reference", action="store_false",
                    help="skip the PETCAM_GOP_REPLAY=0 trials")
    ap.add_argument("--also-unpaced", action="store_true",
                    help="a third setting: GOP replay with PETCAM_PACING=0, "
                         "PETCAM_BATCH_SEND=0 and PETCAM_IDLE_RELAX=0 (do issue 13's "
                         "send-path changes cost latency?)")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--bitrate", type=int, default=8000, help="kbit/s")
    ap.add_argument("--gop", type=int, default=None, help="frames (default 2 s)")
    ap.add_argument("--profile", default="main",
                    help="simulator H.264 profile (this Chromium offers Main, not High)")
    ap.add_argument("--mode", choices=["auto", "external", "inprocess"], default="auto")
    ap.add_argument("--relay", action="store_true",
                    help="start a coturn and compare direct viewers with relayed ones")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--json", help="also write the JSON here")
    args = ap.parse_args()
    result = run(args)
    rows = []
    for t in result["ttff"]:
        for metric in ("first_frame_ms", "live_after_ms", "first_frame_age_ms", "late_glass_ms",
                       "answer_ms", "gather_ms", "from_start_ms",
                       "connected_ms", "next_idr_ms"):
            rows.append({"setting": t["label"], "metric": metric, **t[metric]})
    print_table(rows, ["setting", "metric", "n", "p50", "p95", "mean", "min", "max"])
    for g2g in result["g2g"]:
        print(f"\nglass-to-glass, {g2g['setting']}:")
        rows = [{"component": k, **g2g[k]} for k in (
            "glass_ms", "presented_ms", "received_ms", "shm_read_ms", "receive_to_presented_ms",
            "decode_ms", "compositor_ms")]
        print_table(rows, ["component", "n", "p50", "p95", "mean", "min", "max"])
        inbound = g2g["inbound"] or {}
        print(f"frames presented {g2g['frames_presented']} ({g2g['presented_fps']} fps), "
              f"with a readable code {g2g['frames_with_code']}, mapped {g2g['frames_mapped']} "
              f"({g2g['frames_code_ahead_of_metadata']} read ahead of their metadata); "
              f"Chrome: decoded {inbound.get('framesDecoded')}, dropped "
              f"{inbound.get('framesDropped')}, lost {inbound.get('packetsLost')}, "
              f"PLI {inbound.get('pliCount')}, jitter buffer avg "
              f"{g2g['chrome_jitter_buffer_ms_avg']} ms; glass p50 per 5 s "
              f"{g2g['glass_p50_per_5s']}; clock calibration {g2g['clock_calibration']}")
    sim = result.get("simulator", {})
    print(f"simulator: {sim}; encode (before the shm stamp, not in glass-to-glass): "
          f"{sim.get('encode_ms')} ms/frame")
    brief = {**result, "ttff": [{k: v for k, v in t.items() if k != "rows"}
                                for t in result["ttff"]]}
    emit(result, args.json, shown=brief)  # per-trial rows: in the --json file only


if __name__ == "__main__":
    main()
