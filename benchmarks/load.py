"""Load: N WebSocket clients and N WebRTC viewers, ramping N up until frame rate or latency
degrades; prints the knee (table + JSON).

A throw-away install (benchmarks/_harness.py: simulator with detections,
`media_worker` + daphne over Redis when Redis runs, else the embedded `serve`).
At each step N (--steps, default 2,4,8,12,16,20,25,30) it adds viewers (aiortc,
receive-only, in --client-procs processes, _rtc_clients.py) and WebSocket
clients (/ws/cameras/default/, in this process) up to N each, waits --settle
seconds, then measures over --window seconds:

- viewers: each one's fps against the camera's own rate in the same window
  (the segment's write_index); the worker's shm-to-send latency from /metrics
  (petcam_frame_send_latency_seconds, mean and p95 from the bucket deltas);
- WebSocket: age of each detection message on arrival (camera timestamp ->
  received, same clock on one machine), p50/p95;
- CPU of the worker and of daphne, in % of one core; the load average.

The knee is the last N before the first step where a viewer gets less than
--min-share (0.9) of the camera's frames, a viewer fails to connect, or the
WebSocket p95 exceeds --ws-p95-factor (3x) that of the first step (and 100 ms);
a step that looks degraded is measured once more before it counts (one noisy
window on a shared machine is not a knee).
The viewers are Python processes on the same 2-core machine: past some N
they, not the server, are what falls behind; the table shows both CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from benchmarks._harness import Stack, cpu_seconds, emit, loadavg, pct, print_table
from benchmarks._rtc_clients import ClientPool, window


class SocketClients:
    """WebSocket clients on a loop in a thread; each records the age of every detection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.ages: list[tuple[float, float]] = []  # (arrival, age s)
        self.errors: list[str] = []
        self.tasks: list = []

    async def _client(self) -> None:
        import websockets

        try:
            async with websockets.connect(self.url, open_timeout=20, max_queue=None) as ws:
                async for raw in ws:
                    now = time.monotonic()
                    msg = json.loads(raw)
                    if msg.get("type") == "detections" and msg.get("timestamp"):
                        self.ages.append((now, now - float(msg["timestamp"])))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def grow(self, n: int) -> None:
        while len(self.tasks) < n:
            self.tasks.append(asyncio.run_coroutine_threadsafe(self._client(), self.loop))

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        time.sleep(0.5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def camera_index(stack: Stack) -> tuple[float, int]:
    """(now, the simulator's write_index): the camera's own frame count, straight from shm
    (a status request's delay under load would skew the window)."""
    with open(Path("/dev/shm") / stack.segment.lstrip("/"), "rb") as f:
        return time.monotonic(), struct.unpack("<I", f.read(4))[0]


def latency_histogram(base: str) -> dict[float, float]:
    """petcam_frame_send_latency_seconds buckets {le: cumulative count} plus sum/count."""
    with urllib.request.urlopen(base + "/metrics", timeout=15) as resp:
        text = resp.read().decode()
    out: dict = {}
    for family in text_string_to_metric_families(text):
        if family.name != "petcam_frame_send_latency_seconds":
            continue
        for s in family.samples:
            if s.labels.get("camera") != "default":
                continue
            if s.name.endswith("_bucket"):
                out[float(s.labels["le"])] = s.value
            elif s.name.endswith("_sum"):
                out["sum"] = s.value
            elif s.name.endswith("_count"):
                out["count"] = s.value
    return out


def histogram_window(before: dict, after: dict) -> tuple[float | None, float | None]:
    """(mean, p95 upper bound) in ms of the observations between two scrapes."""
    n = after.get("count", 0) - before.get("count", 0)
    if n <= 0:
        return None, None
    mean = 1000 * (after["sum"] - before.get("sum", 0)) / n
    p95 = None
    for le in sorted(k for k in after if isinstance(k, float)):
        if after[le] - before.get(le, 0) >= 0.95 * n:
            p95 = 1000 * le if le != float("inf") else None
            break
    return round(mean, 2), p95


def run(args) -> dict:
    steps = [int(x) for x in args.steps.split(",")]
    stack = Stack(width=args.width, height=args.height, fps=args.fps, bitrate=args.bitrate,
                  mode=args.mode, max_viewers=max(steps), keep_logs=args.keep_logs)
    at = stack.sim_args.index("--detect-fps")
    stack.sim_args[at + 1] = str(args.detect_fps)
    pool = sockets = None
    rows: list[dict] = []
    try:
        stack.prepare()
        stack.start_simulator()
        stack.start_server()
        stack.wait_live()
        worker_pid = stack.worker_pid()
        site_pid = None
        if stack.mode == "external":  # daphne is its own process; find it under `timeout`
            out = subprocess.run(["pgrep", "-P", str(stack.site.popen.pid)],
                                 capture_output=True, text=True)
            site_pid = int(out.stdout.split()[0]) if out.stdout.split() else None
        pool = ClientPool({"kind": "http", "base": stack.base, "token": stack.token},
                          args.client_procs)
        sockets = SocketClients(
            f"ws://127.0.0.1:{stack.port}/ws/cameras/default/?token={stack.token}")
        errors: list[str] = []
        rechecked: list[dict] = []

        def measure(n: int, worker_pid: int, site_pid: int | None) -> dict:
            snap0 = pool.snapshot()
            hist0 = latency_histogram(stack.base)
            t0, index0 = camera_index(stack)
            cpu0 = (cpu_seconds(worker_pid), cpu_seconds(site_pid) if site_pid else 0.0)
            time.sleep(args.window)
            t1, index1 = camera_index(stack)
            cpu1 = (cpu_seconds(worker_pid), cpu_seconds(site_pid) if site_pid else 0.0)
            snap1, status1 = pool.snapshot(), stack.status()
            hist1 = latency_histogram(stack.base)
            w = window(snap0, snap1)
            camera = (index1 - index0) / (t1 - t0)
            fps = [v["fps"] for v in w["viewers"]]
            ages = [1000 * a for when, a in list(sockets.ages) if t0 <= when < t1]
            mean_ms, p95_ms = histogram_window(hist0, hist1)
            return {
                "viewers": n, "ws_clients": len(sockets.tasks),
                "connected": status1["viewers"]["count"],
                "camera_fps": round(camera, 1),
                "viewer_fps_min": round(min(fps), 1) if fps else None,
                "viewer_share_min": round(min(fps) / camera, 3) if fps and camera else None,
                "send_latency_ms_mean": mean_ms, "send_latency_ms_p95": p95_ms,
                "ws_msgs": len(ages),
                "ws_age_ms_p50": round(pct(ages, 50), 1) if ages else None,
                "ws_age_ms_p95": round(pct(ages, 95), 1) if ages else None,
                "worker_cpu_pct": round(100 * (cpu1[0] - cpu0[0]) / (t1 - t0), 1),
                "daphne_cpu_pct": (round(100 * (cpu1[1] - cpu0[1]) / (t1 - t0), 1)
                                   if site_pid else None),
                "client_cpu_pct": round(w["client_cpu_pct"], 1),
                "load": loadavg(),
            }

        opened = 0
        for n in steps:
            new = pool.connect(n - opened)
            opened = n
            errors += [c["error"] for c in new if c["error"]]
            sockets.grow(args.ws_clients or n)
            time.sleep(args.settle)
            for attempt in range(2):
                row = measure(n, worker_pid, site_pid)
                row["connect_errors"], row["ws_errors"] = len(errors), len(sockets.errors)
                print("  " + json.dumps(row), file=sys.stderr, flush=True)
                why = degraded([*rows, row], args)
                if why and attempt == 0:
                    # One noisy window on a shared machine is not a knee: measure again.
                    rechecked.append({**row, "why": why})
                    continue
                break
            rows.append(row)
            if why:
                break
    finally:
        if sockets is not None:
            sockets.close()
        if pool is not None:
            pool.shutdown()
        stack.close()
    knee = None
    for i, row in enumerate(rows):
        if degraded(rows[: i + 1], args):
            break
        knee = row["viewers"]
    return {"benchmark": "load",
            "config": {"resolution": f"{args.width}x{args.height}", "fps": args.fps,
                       "bitrate_kbps": args.bitrate, "detect_fps": args.detect_fps,
                       "window_s": args.window, "worker_mode": stack.mode,
                       "ws_clients": args.ws_clients or "as many as viewers",
                       "client_procs": args.client_procs},
            "knee_viewers_and_sockets": knee,
            "first_degraded": next((r for i, r in enumerate(rows)
                                    if degraded(rows[: i + 1], args)), None),
            "rows": rows, "rechecked": rechecked}


def degraded(rows: list[dict], args) -> str | None:
    """Why the last row is past the knee, or None."""
    row, first = rows[-1], rows[0]
    if row["connect_errors"] or row["connected"] < row["viewers"]:
        return "viewers failed to connect or were dropped"
    if row["viewer_share_min"] is not None and row["viewer_share_min"] < args.min_share:
        return f"a viewer got {row['viewer_share_min']:.0%} of the camera's frames"
    if (row["ws_age_ms_p95"] and first["ws_age_ms_p95"]
            and row["ws_age_ms_p95"] > max(100.0, args.ws_p95_factor * first["ws_age_ms_p95"])):
        return f"WebSocket p95 {row['ws_age_ms_p95']} ms"
    return None


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.load",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--steps", default="2,4,8,12,16,20,25,30")
    ap.add_argument("--settle", type=float, default=4)
    ap.add_argument("--window", type=float, default=8)
    ap.add_argument("--min-share", type=float, default=0.9)
    ap.add_argument("--ws-p95-factor", type=float, default=3.0)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--bitrate", type=int, default=3000, help="kbit/s")
    ap.add_argument("--detect-fps", type=float, default=10)
    ap.add_argument("--ws-clients", type=int, default=0,
                    help="WebSocket clients at every step (0: as many as viewers), e.g. "
                         "--steps 10 --ws-clients 50: 50 sockets with the fan-out running")
    ap.add_argument("--mode", choices=["auto", "external", "inprocess"], default="auto")
    ap.add_argument("--client-procs", type=int, default=3)
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--json", help="also write the JSON here")
    args = ap.parse_args()
    result = run(args)
    print_table(result["rows"], ["viewers", "ws_clients", "connected", "camera_fps",
                                 "viewer_fps_min", "viewer_share_min", "send_latency_ms_mean",
                                 "send_latency_ms_p95", "ws_age_ms_p50", "ws_age_ms_p95",
                                 "worker_cpu_pct", "daphne_cpu_pct", "client_cpu_pct", "load"])
    first = result["first_degraded"]
    reason = degraded(result["rows"][: result["rows"].index(first) + 1], args) if first else None
    print(f"\nknee: {result['knee_viewers_and_sockets']} viewers + as many WebSocket clients"
          + (f"; at {first['viewers']}: {reason}" if first else "; no degradation seen"))
    emit(result, args.json)


if __name__ == "__main__":
    main()
