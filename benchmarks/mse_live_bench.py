"""Live video over WebSocket + MSE next to WebRTC, in the same run: time to first frame,
glass-to-glass, and the server CPU each viewer costs.

(a) Browser (Debian Chromium, software decode, loopback): the page's own MSE player
    (static/streaming/live/mse_player.js, imported into a page of the site) and, side by
    side, the WebRTC viewer of browser_latency_bench. Time to first frame: socket (MSE)
    or offer POST (WebRTC) -> first requestVideoFrameCallback, `--trials` new viewers at
    random points of the GOP. Glass-to-glass: the simulator's frame code read from each
    presented frame, mapped to its CLOCK_MONOTONIC stamp in shm (browser_latency_bench's
    method), expectedDisplayTime - stamp.
(b) CPU: `--viewers` headless viewers of each kind (MSE: WebSocket clients that
    acknowledge like the page; WebRTC: aiortc clients), one kind at a time, and the
    CPU of the worker process and of daphne over `--seconds`, minus an idle window:
    the cost per viewer. In the production layout (Redis; default when it runs) the
    worker and daphne are separate processes and MSE bytes cross Redis; embedded
    (`--mode inprocess`) they are one process.

Prints tables and JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import sys
import time
from pathlib import Path

from benchmarks import browser_latency_bench as bl
from benchmarks._harness import Stack, cpu_seconds, emit, loadavg, pct, print_table
from benchmarks._rtc_clients import ClientPool, window
from tests.support.browser import CHROMIUM, READ_FRAME_CODE_FN, launch

TARGET_G2G_P50 = 500.0

# One MSE viewer with the page's own player module; the same result shape as WATCH_JS.
MSE_WATCH_JS = "async ({token, timeoutMs, collectMs}) => {" + READ_FRAME_CODE_FN + r"""
  const {startMse} = await import("/static/streaming/live/mse_player.js");
  const canvas = document.createElement("canvas");
  canvas.width = 320; canvas.height = 64;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  const readCode = (video) => {
    if (video.videoWidth < 320 || video.videoHeight < 64) return null;
    ctx.drawImage(video, 0, 0, 320, 64, 0, 0, 320, 64);
    return readFrameCode(ctx);
  };
  const res = {frames: [], timeOrigin: performance.timeOrigin};
  const video = document.createElement("video");
  video.muted = true; video.autoplay = true; video.playsInline = true;
  video.width = 320; video.height = 180;
  document.body.appendChild(video);
  let resolveFirst, resolveDone, error = null;
  const first = new Promise((r) => { resolveFirst = r; });
  const done = new Promise((r) => { resolveDone = r; });
  const onFrame = (now, md) => {
    if (res.firstFrameAt === undefined) { res.firstFrameAt = now; resolveFirst(); }
    res.frames.push({code: readCode(video), now: now, presentationTime: md.presentationTime,
                     expectedDisplayTime: md.expectedDisplayTime, receiveTime: null,
                     processingDuration: md.processingDuration, mediaTime: md.mediaTime});
    if (now - res.firstFrameAt >= collectMs) resolveDone();
    else video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  res.postAt = performance.now();
  const mse = startMse(video, "default", {
    onOpen: () => { res.answerAt = performance.now(); },
    onError: (e) => { error = e.code + ": " + e.detail; },
    onClosed: (code) => { error = error || "socket closed " + code; },
  }, {token: token});
  const timeout = (ms) => new Promise((r) => setTimeout(() => r("timeout"), ms));
  try {
    if (await Promise.race([first.then(() => "ok"), timeout(timeoutMs)]) === "timeout") {
      res.error = error || "no frame within " + timeoutMs + " ms";
    } else {
      await Promise.race([done, timeout(collectMs + 5000)]);
      res.error = error;
    }
    res.lag = mse.lag();
    res.jumps = mse.jumps;
    const q = video.getVideoPlaybackQuality();
    res.quality = {total: q.totalVideoFrames, dropped: q.droppedVideoFrames};
    return res;
  } finally {
    mse.stop();
    video.remove();
  }
}
"""


def mse_ttff_trials(page, token: str, trials: int, gop_s: float, recorder, clocks,
                    loop_frames: int, live_mode: bool, collect_s: float) -> dict:
    rows = []
    for i in range(trials):
        time.sleep(random.uniform(0.2, gop_s + 0.2))  # start anywhere in the GOP
        res = page.evaluate(MSE_WATCH_JS, {"token": token, "timeoutMs": 10_000,
                                           "collectMs": 1000 * collect_s})
        row = {"trial": i + 1, "error": res.get("error")}
        if res.get("firstFrameAt") is not None:
            row["first_frame_ms"] = res["firstFrameAt"] - res["postAt"]
            lat = bl.frame_latencies(res, clocks, recorder, loop_frames, live_mode)
            if lat:
                row["first_frame_age_ms"] = lat[0]["glass_ms"]
                live = [x for x in lat if x["glass_ms"] <= 500]
                if live:
                    row["live_after_ms"] = live[0]["now"] - res["postAt"]
                tail = [x["glass_ms"] for x in lat
                        if x["now"] - res["firstFrameAt"] >= 1000 * (collect_s - 1)]
                if tail:
                    row["late_glass_ms"] = pct(tail, 50)
        rows.append(row)
        print(f"  [MSE] trial {i + 1}: first frame {bl._r(row.get('first_frame_ms'))} ms, "
              f"late glass {bl._r(row.get('late_glass_ms'))} ms {row['error'] or ''}",
              file=sys.stderr, flush=True)
    return {"label": "MSE", "trials": trials,
            "errors": [r["error"] for r in rows if r["error"]],
            **{k: bl.stats_ms([r.get(k) for r in rows])
               for k in ("first_frame_ms", "live_after_ms", "first_frame_age_ms",
                         "late_glass_ms")},
            "rows": rows}


def mse_glass_to_glass(page, stack: Stack, recorder, clocks, loop_frames: int,
                       live_mode: bool, args) -> dict:
    cal = clocks.calibrate_browser(page)
    res = page.evaluate(MSE_WATCH_JS, {"token": stack.token, "timeoutMs": 15_000,
                                       "collectMs": 1000 * (args.g2g_seconds + args.settle)})
    first = res.get("firstFrameAt", 0)
    lat = bl.frame_latencies(res, clocks, recorder, loop_frames, live_mode)
    settled = [x for x in lat if x["now"] - first >= args.settle * 1000]
    presented = [f for f in res["frames"] if f["now"] - first >= args.settle * 1000]
    return {"setting": "MSE", "error": res.get("error"),
            "frames_presented": len(presented), "frames_mapped": len(settled),
            "presented_fps": round(len(presented) / args.g2g_seconds, 2),
            "glass_ms": bl.stats_ms([x["glass_ms"] for x in settled]),
            "presented_ms": bl.stats_ms([x["presented_ms"] for x in settled]),
            "compositor_ms": bl.stats_ms([x["compositor_ms"] for x in settled]),
            "player_lag_s": res.get("lag"), "live_edge_jumps": res.get("jumps"),
            "playback_quality": res.get("quality"), "clock_calibration": cal,
            "load": loadavg()}


# --- CPU: headless MSE viewers in a child process -----------------------------------------


def _mse_client_process(conn, base: str, token: str) -> None:
    from tests.support.mse_client import MseClient

    async def main() -> None:
        clients: list[MseClient] = []
        loop = asyncio.get_running_loop()
        while True:
            cmd, arg = await loop.run_in_executor(None, conn.recv)
            if cmd == "connect":
                new = [MseClient(base, token, keep=False) for _ in range(arg)]
                await asyncio.gather(*(c.connect() for c in new))
                clients += new
                conn.send(len(clients))
            elif cmd == "snapshot":
                conn.send({"t": time.monotonic(), "cpu_s": sum(os.times()[:2]),
                           "frames": [c.count for c in clients],
                           "bytes": [c.bytes for c in clients],
                           "closed": [c.close_code for c in clients]})
            elif cmd == "close":
                await asyncio.gather(*(c.close() for c in clients))
                clients = []
                conn.send(True)
            else:
                conn.send(True)
                return

    asyncio.run(main())


class MsePool:
    def __init__(self, base: str, token: str) -> None:
        self.conn, child = mp.get_context("spawn").Pipe()
        self.proc = mp.get_context("spawn").Process(target=_mse_client_process,
                                                    args=(child, base, token), daemon=True)
        self.proc.start()

    def ask(self, cmd: str, arg=None, timeout: float = 60):
        self.conn.send((cmd, arg))
        if not self.conn.poll(timeout):
            raise RuntimeError("the MSE client process did not answer")
        return self.conn.recv()

    def shutdown(self) -> None:
        try:
            self.ask("exit")
        except Exception:
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()


def daphne_pid(stack: Stack) -> int:
    """The site process behind the `timeout` wrapper (its only child)."""
    wrapper = stack.site.popen.pid
    children = Path(f"/proc/{wrapper}/task/{wrapper}/children").read_text().split()
    return int(children[0]) if children else wrapper


def cpu_window(stack: Stack, seconds: float) -> dict:
    """CPU % of the worker and of daphne over `seconds`, with the camera's frame count."""
    worker, site = stack.worker_pid(), daphne_pid(stack)
    s0 = stack.status()
    w0, d0, t0 = cpu_seconds(worker), cpu_seconds(site), time.monotonic()
    time.sleep(seconds)
    w1, d1, t1 = cpu_seconds(worker), cpu_seconds(site), time.monotonic()
    s1 = stack.status()
    dt = t1 - t0
    same = worker == site
    return {"worker_cpu_pct": 100 * (w1 - w0) / dt,
            "daphne_cpu_pct": None if same else 100 * (d1 - d0) / dt,
            "camera_frames": s1["reader"]["frames_read"] - s0["reader"]["frames_read"],
            "sessions": s1["viewers"]["sessions"], "dt": dt, "load": loadavg()}


def measure_cpu(stack: Stack, args) -> list[dict]:
    rows = []
    time.sleep(args.warmup)
    idle = cpu_window(stack, args.seconds)
    rows.append({"viewers": "none (idle)", "n": 0, **_cpu_row(idle, idle, 0, None)})
    mse = MsePool(stack.base, stack.token)
    try:
        mse.ask("connect", args.viewers)
        time.sleep(args.warmup)
        b = mse.ask("snapshot")
        w = cpu_window(stack, args.seconds)
        a = mse.ask("snapshot")
        fps = [(fa - fb) / (a["t"] - b["t"]) for fa, fb in zip(a["frames"], b["frames"],
                                                             strict=True)]
        rows.append({"viewers": "MSE (WebSocket)", "n": args.viewers,
                     **_cpu_row(w, idle, args.viewers, fps),
                     "client_cpu_pct": round(100 * (a["cpu_s"] - b["cpu_s"]) / (a["t"] - b["t"]),
                                             1)})
        mse.ask("close")
    finally:
        mse.shutdown()
    time.sleep(3)  # sessions end with their sockets
    pool = ClientPool({"kind": "http", "base": stack.base, "token": stack.token}, 1)
    try:
        pool.connect(args.viewers, 4)
        time.sleep(args.warmup)
        b = pool.snapshot()
        w = cpu_window(stack, args.seconds)
        a = pool.snapshot()
        fps = [v["fps"] for v in window(b, a)["viewers"]]
        rows.append({"viewers": "WebRTC (aiortc clients)", "n": args.viewers,
                     **_cpu_row(w, idle, args.viewers, fps),
                     "client_cpu_pct": round(window(b, a)["client_cpu_pct"], 1)})
        pool.close_viewers()
    finally:
        pool.shutdown()
    return rows


def _cpu_row(w: dict, idle: dict, n: int, fps: list[float] | None) -> dict:
    cam_fps = w["camera_frames"] / w["dt"]
    dropped = sum(s.get("dropped", 0) for s in w["sessions"])
    row = {"worker_cpu_pct": round(w["worker_cpu_pct"], 1),
           "daphne_cpu_pct": None if w["daphne_cpu_pct"] is None else round(w["daphne_cpu_pct"], 1),
           "camera_fps": round(cam_fps, 1),
           "viewer_fps_min": round(min(fps), 1) if fps else None,
           "viewer_fps_mean": round(sum(fps) / len(fps), 1) if fps else None,
           "dropped": dropped, "load": w["load"]}
    if n:
        row["worker_pct_per_viewer"] = round((w["worker_cpu_pct"] - idle["worker_cpu_pct"]) / n, 2)
        if w["daphne_cpu_pct"] is not None:
            row["daphne_pct_per_viewer"] = round(
                (w["daphne_cpu_pct"] - idle["daphne_cpu_pct"]) / n, 2)
    return row


def run(args) -> dict:
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"{CHROMIUM} is missing (apt-get install chromium)")
    stack = Stack(width=args.width, height=args.height, fps=args.fps, bitrate=args.bitrate,
                  gop=args.gop, profile=args.profile, mode=args.mode,
                  max_viewers=max(10, args.viewers), keep_logs=args.keep_logs)
    gop = args.gop or 2 * args.fps
    result: dict = {"benchmark": "mse_live", "ttff": [], "g2g": [], "cpu": []}
    recorder = None
    try:
        stack.prepare()
        stack.start_simulator()
        recorder = bl.ShmRecorder(stack.segment)
        stack.start_server()
        stack.wait_live()
        sim = bl.simulator_info(stack)
        live_mode = sim["mode"] == "live"
        loop_frames = sim["loop_frames"] or bl.SimulatorConfig(
            width=args.width, height=args.height, fps=args.fps, gop=args.gop).loop_frames
        if not args.skip_browser:
            with sync_playwright() as pw:
                browser = launch(pw)
                try:
                    page = browser.new_page()
                    page.goto(stack.base + "/health")
                    clocks = bl.Clocks()
                    g2g = mse_glass_to_glass(page, stack, recorder, clocks, loop_frames,
                                             live_mode, args)
                    result["g2g"].append(g2g)
                    print(f"  [MSE] glass-to-glass: {g2g['glass_ms']}", file=sys.stderr,
                          flush=True)
                    rtc = bl.glass_to_glass(page, stack, recorder, clocks, loop_frames,
                                            live_mode, args)
                    rtc["setting"] = "WebRTC"
                    result["g2g"].append(rtc)
                    print(f"  [WebRTC] glass-to-glass: {rtc['glass_ms']}", file=sys.stderr,
                          flush=True)
                    result["ttff"].append(mse_ttff_trials(
                        page, stack.token, args.trials, gop / args.fps, recorder, clocks,
                        loop_frames, live_mode, args.trial_seconds))
                    result["ttff"].append(bl.ttff_trials(
                        page, stack.token, args.trials, gop / args.fps, recorder, clocks,
                        loop_frames, live_mode, "WebRTC", args.trial_seconds))
                    page.close()
                finally:
                    browser.close()
        if args.viewers:
            result["cpu"] = measure_cpu(stack, args)
        result["simulator"] = bl.simulator_info(stack)
    finally:
        if recorder is not None:
            recorder.stop()
        stack.close()
    result["config"] = {"resolution": f"{args.width}x{args.height}", "fps": args.fps,
                        "bitrate_kbps": args.bitrate, "gop_frames": gop, "mode": stack.mode,
                        "trials": args.trials, "g2g_seconds": args.g2g_seconds,
                        "viewers": args.viewers, "cpu_window_s": args.seconds}
    ratios, targets = {}, {}
    by = {g["setting"]: g["glass_ms"] for g in result["g2g"]}
    if by.get("MSE", {}).get("p50") is not None:
        p50 = by["MSE"]["p50"]
        targets[f"MSE glass-to-glass p50 < {TARGET_G2G_P50:g} ms (got {p50})"] = (
            p50 < TARGET_G2G_P50)
        if by.get("WebRTC", {}).get("p50"):
            ratios["g2g_p50_mse_over_webrtc"] = round(p50 / by["WebRTC"]["p50"], 2)
    ttff = {t["label"]: t["first_frame_ms"] for t in result["ttff"]}
    if ttff.get("MSE", {}).get("p50") and ttff.get("WebRTC", {}).get("p50"):
        ratios["ttff_p50_mse_over_webrtc"] = round(ttff["MSE"]["p50"] / ttff["WebRTC"]["p50"], 2)
    cpu = {r["viewers"]: r for r in result["cpu"]}
    m, w = cpu.get("MSE (WebSocket)"), cpu.get("WebRTC (aiortc clients)")
    if m and w and w.get("worker_pct_per_viewer"):
        ratios["worker_cpu_per_viewer_mse_over_webrtc"] = round(
            m["worker_pct_per_viewer"] / w["worker_pct_per_viewer"], 2)
    result["ratios"], result["targets_met"] = ratios, targets
    return result


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.mse_live_bench",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=10, help="new viewers per transport")
    ap.add_argument("--trial-seconds", type=float, default=3)
    ap.add_argument("--g2g-seconds", type=float, default=20)
    ap.add_argument("--settle", type=float, default=3)
    ap.add_argument("--viewers", type=int, default=5, help="per transport in the CPU part "
                                                           "(0: skip it)")
    ap.add_argument("--seconds", type=float, default=15, help="CPU window")
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--skip-browser", action="store_true")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--bitrate", type=int, default=8000, help="kbit/s")
    ap.add_argument("--gop", type=int, default=None, help="frames (default 2 s)")
    ap.add_argument("--profile", default="main")
    ap.add_argument("--mode", choices=["auto", "external", "inprocess"], default="auto")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--json", help="also write the JSON here")
    args = ap.parse_args()
    result = run(args)
    rows = [{"transport": t["label"], "metric": metric, **t[metric]}
            for t in result["ttff"] for metric in ("first_frame_ms", "late_glass_ms")]
    rows += [{"transport": g["setting"], "metric": "glass_ms (long viewer)", **g["glass_ms"]}
             for g in result["g2g"]]
    if rows:
        print_table(rows, ["transport", "metric", "n", "p50", "p95", "mean", "min", "max"])
    if result["cpu"]:
        print()
        print_table(result["cpu"], ["viewers", "n", "worker_cpu_pct", "worker_pct_per_viewer",
                                    "daphne_cpu_pct", "daphne_pct_per_viewer", "camera_fps",
                                    "viewer_fps_min", "viewer_fps_mean", "dropped", "load"])
    brief = {**result, "ttff": [{k: v for k, v in t.items() if k != "rows"}
                                for t in result["ttff"]]}
    emit(result, args.json, shown=brief)


if __name__ == "__main__":
    main()
