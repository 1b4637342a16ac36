"""Soak: 10 viewers and a recording for --minutes (10; hours work too), sampled every 10 s.

A throw-away install (benchmarks/_harness.py: simulator, `media_worker` +
daphne over Redis when Redis runs, else the embedded `serve`), --viewers
receive-only aiortc viewers in client processes (_rtc_clients.py) and one MP4
recording for the whole run. Every --interval seconds it samples the worker's
RSS, open fds and asyncio tasks (its own status), the frames it read, and the
drops of every sink (viewers and recorder) from GET /metrics. The reference
is the same worker before the load: idle samples first.

Reported (table + JSON): per figure the first/last/max loaded sample, drift
(last - first) and the least-squares slope per minute over the second half
(warm-up left out), over the samples with every viewer connected (a viewer
the server dropped takes its fds and tasks along); each viewer's fps against
the camera's in the same window; the recording's frames and drops. Targets: RSS drift
under 10 MB, fds and tasks flat, zero drops on loopback.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from benchmarks._harness import Stack, emit, loadavg, print_table, rss_mb, slope_per_min
from benchmarks._rtc_clients import ClientPool, window

RSS_DRIFT_MB = 10.0


def scrape(base: str) -> dict[str, float]:
    """The default camera's petcam_ samples from /metrics (loopback: no token needed)."""
    with urllib.request.urlopen(base + "/metrics", timeout=15) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("camera") != "default":
                continue
            key = s.name + "".join(f"|{k}={v}" for k, v in sorted(s.labels.items())
                                   if k != "camera")
            out[key] = s.value
    return out


def sample(stack: Stack, t0: float, phase: str) -> dict:
    status = stack.status()
    proc = status["process"]
    m = scrape(stack.base)
    return {"phase": phase, "t": round(time.monotonic() - t0, 1),
            "viewers": status["viewers"]["count"],
            "rss_mb": round(rss_mb(proc["pid"]), 1), "open_fds": proc["open_fds"],
            "asyncio_tasks": proc["asyncio_tasks"],
            "frames_read": int(m.get("petcam_frames_read_total", 0)),
            "viewer_drops": int(m.get("petcam_sink_dropped_frames_total|sink=viewers", 0)),
            "recorder_drops": int(m.get("petcam_sink_dropped_frames_total|sink=recorder", 0)),
            "recording_frames": int(m.get("petcam_recording_frames", 0)),
            "latency_ms_mean": (round(1000 * m["petcam_frame_send_latency_seconds_sum"]
                                      / m["petcam_frame_send_latency_seconds_count"], 2)
                                if m.get("petcam_frame_send_latency_seconds_count") else None),
            "load": loadavg()}


def figures(samples: list[dict], key: str) -> dict:
    values = [s[key] for s in samples]
    late = samples[len(samples) // 2:]
    return {"first": values[0], "last": values[-1], "max": max(values),
            "drift": round(values[-1] - values[0], 2),
            "slope_2nd_half_per_min": slope_per_min([(s["t"], s[key]) for s in late])}


def run(args) -> dict:
    duration = args.minutes * 60
    # The viewers are Python processes on this machine: starved by other load, one can go
    # 10 s without RTCP and be dropped by design. The soak measures the server, so it
    # allows them longer (--silence-timeout).
    stack = Stack(width=args.width, height=args.height, fps=args.fps, bitrate=args.bitrate,
                  mode=args.mode, max_viewers=max(10, args.viewers), keep_logs=args.keep_logs,
                  extra_env={"PETCAM_PEER_SILENCE_TIMEOUT": str(args.silence_timeout)})
    pool = None
    samples: list[dict] = []
    try:
        stack.prepare()
        stack.start_simulator()
        stack.start_server()
        stack.wait_live()
        t0 = time.monotonic()
        for _ in range(args.idle_samples):
            samples.append(sample(stack, t0, "idle"))
            time.sleep(args.interval / 2)
        code, started = stack.request("POST", "/api/cameras/default/recording/start/",
                                      {"name": "soak"})
        if code != 201:
            raise RuntimeError(f"recording start: {code} {started}")
        pool = ClientPool({"kind": "http", "base": stack.base, "token": stack.token},
                          args.client_procs)
        connected = pool.connect(args.viewers)
        errors = [c["error"] for c in connected if c["error"]]
        time.sleep(args.warmup)
        first_snap = pool.snapshot()
        end = time.monotonic() + duration
        while True:
            samples.append(sample(stack, t0, "loaded"))
            s = samples[-1]
            print(f"  t={s['t']:>7}s rss {s['rss_mb']} MB fds {s['open_fds']} tasks "
                  f"{s['asyncio_tasks']} viewers {s['viewers']} drops {s['viewer_drops']}/"
                  f"{s['recorder_drops']} load {s['load']}", file=sys.stderr, flush=True)
            if time.monotonic() >= end:
                break
            time.sleep(min(args.interval, max(0.0, end - time.monotonic())))
        last_snap = pool.snapshot()
        code, stopped = stack.request("POST", "/api/cameras/default/recording/stop/", {})
        w = window(first_snap, last_snap)
        pool.close_viewers()
        pool.shutdown()
        pool = None
        deadline = time.monotonic() + 20
        while stack.status()["viewers"]["count"] and time.monotonic() < deadline:
            time.sleep(0.5)
        samples.append(sample(stack, t0, "after"))
    finally:
        if pool is not None:
            pool.shutdown()
        stack.close()

    loaded_all = [s for s in samples if s["phase"] == "loaded"]
    # fds and tasks follow the viewer count: judge their drift while all viewers were on.
    loaded = [s for s in loaded_all if s["viewers"] == args.viewers] or loaded_all
    idle = [s for s in samples if s["phase"] == "idle"]
    after = samples[-1]
    camera_fps = ((loaded_all[-1]["frames_read"] - loaded_all[0]["frames_read"])
                  / (loaded_all[-1]["t"] - loaded_all[0]["t"])) if len(loaded_all) > 1 else None
    lost = [{"t": s["t"], "viewers": s["viewers"]} for s in loaded_all
            if s["viewers"] != args.viewers]
    fps = [v["fps"] for v in w["viewers"]]
    result = {
        "benchmark": "soak",
        "config": {"resolution": f"{args.width}x{args.height}", "fps": args.fps,
                   "bitrate_kbps": args.bitrate, "viewers": args.viewers,
                   "minutes": args.minutes, "interval_s": args.interval,
                   "peer_silence_timeout_s": args.silence_timeout,
                   "worker_mode": stack.mode},
        "connect_errors": errors,
        "samples_with_viewers_missing": lost,
        "samples_judged": len(loaded),
        "loaded": {k: figures(loaded, k) for k in ("rss_mb", "open_fds", "asyncio_tasks",
                                                   "viewer_drops", "recorder_drops")},
        "idle": {k: idle[-1][k] for k in ("rss_mb", "open_fds", "asyncio_tasks")},
        "after": {k: after[k] for k in ("rss_mb", "open_fds", "asyncio_tasks", "viewers")},
        "camera_fps": round(camera_fps, 2) if camera_fps else None,
        "viewer_fps": {"min": round(min(fps), 2) if fps else None,
                       "mean": round(sum(fps) / len(fps), 2) if fps else None},
        "recording": {"status": stopped.get("status"), "frame_count": stopped.get("frame_count"),
                      "dropped_frames": stopped.get("dropped_frames"),
                      "bytes": stopped.get("size_bytes", stopped.get("bytes"))},
        "samples": samples,
    }
    lo = result["loaded"]
    result["targets_met"] = {
        f"RSS drift under {RSS_DRIFT_MB:g} MB ({lo['rss_mb']['drift']} MB)":
            abs(lo["rss_mb"]["drift"]) < RSS_DRIFT_MB,
        f"fds flat (first {lo['open_fds']['first']}, last {lo['open_fds']['last']})":
            lo["open_fds"]["last"] <= lo["open_fds"]["first"] + 2,
        f"tasks flat (first {lo['asyncio_tasks']['first']}, last "
        f"{lo['asyncio_tasks']['last']})":
            lo["asyncio_tasks"]["last"] <= lo["asyncio_tasks"]["first"] + 2,
        "zero sink drops (viewers and recorder)":
            lo["viewer_drops"]["last"] == 0 and lo["recorder_drops"]["last"] == 0,
        "every viewer connected": not errors,
        "every viewer stayed connected (the server drops one silent for "
        "PETCAM_PEER_SILENCE_TIMEOUT)": not lost,
    }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.soak",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--idle-samples", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--viewers", type=int, default=10)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--bitrate", type=int, default=8000, help="kbit/s")
    ap.add_argument("--mode", choices=["auto", "external", "inprocess"], default="auto")
    ap.add_argument("--client-procs", type=int, default=3)
    ap.add_argument("--silence-timeout", type=float, default=30,
                    help="PETCAM_PEER_SILENCE_TIMEOUT for the worker (seconds)")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--json", help="also write the JSON here")
    args = ap.parse_args()
    result = run(args)
    print_table(result["samples"], ["phase", "t", "viewers", "rss_mb", "open_fds",
                                    "asyncio_tasks", "frames_read", "viewer_drops",
                                    "recorder_drops", "recording_frames", "latency_ms_mean",
                                    "load"])
    print()
    rows = [{"metric": k, **v} for k, v in result["loaded"].items()]
    print_table(rows, ["metric", "first", "last", "max", "drift", "slope_2nd_half_per_min"])
    print(f"\ncamera {result['camera_fps']} fps; viewers {result['viewer_fps']}; recording "
          f"{result['recording']}; idle {result['idle']}; after the viewers left "
          f"{result['after']}")
    emit(result, args.json)


if __name__ == "__main__":
    main()
