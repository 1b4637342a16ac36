"""Media-worker footprint over time: RSS, open fds and asyncio tasks with 10 viewers at 1080p30.

One run, side by side:

- reference: the same worker with no viewer, sampled for `--idle-seconds`
  right before the viewers join (what the process costs with the camera only);
- loaded: `--viewers` (10) receive-only aiortc viewers (own processes, see
  _rtc_clients.py) for `--seconds` (120; `--minutes 10` for the issue's
  10 minutes), sampled every `--interval` s from the worker's own status
  (GET /api/cameras/default/ -> process) plus its /proc RSS;
- after: all viewers closed; fds and tasks must come back to the idle values
  (a leak of sockets or tasks shows here even when RSS hides it).

Reported: start/end/max, drift (end - first loaded sample) and the slope of a
least-squares line per minute for RSS, fds and tasks (whole run, and its second half,
which leaves out the warm-up); each viewer's fps over the
whole run. Target: RSS under 150 MB and flat. Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmarks._harness import (
    Stack,
    cpu_seconds,
    emit,
    fd_kinds,
    loadavg,
    print_table,
    rss_mb,
    slope_per_min,
)
from benchmarks._rtc_clients import ClientPool, window

TARGET_RSS_MB = 150.0
FLAT_MB_PER_MIN = 0.5


def sample(stack: Stack, pid: int, t0: float, phase: str, viewers: int) -> dict:
    status = stack.status()
    proc = status["process"]
    return {"phase": phase, "t": round(time.monotonic() - t0, 1), "viewers": viewers,
            "connected": status["viewers"]["count"], "rss_mb": proc["rss_mb"],
            "proc_rss_mb": round(rss_mb(pid), 1), "open_fds": proc["open_fds"],
            "asyncio_tasks": proc["asyncio_tasks"],
            "dropped": sum(s["dropped"] for s in status["viewers"]["sessions"]),
            "fd_kinds": fd_kinds(pid),
            "cpu_s": round(cpu_seconds(pid), 2), "load": loadavg()}


def summary(samples: list[dict], key: str) -> dict:
    values = [s[key] for s in samples]
    if not values:
        return {}
    late = samples[len(samples) // 2:]
    return {"start": values[0], "end": values[-1], "max": max(values), "min": min(values),
            "drift": round(values[-1] - values[0], 2),
            "slope_per_min": slope_per_min([(s["t"], s[key]) for s in samples]),
            # The first samples include warm-up (buffers, caches filling): flat means flat late.
            "slope_2nd_half_per_min": slope_per_min([(s["t"], s[key]) for s in late])}


def run(args) -> dict:
    duration = args.minutes * 60 if args.minutes else args.seconds
    stack = Stack(width=args.width, height=args.height, fps=args.fps, bitrate=args.bitrate,
                  mode=args.mode, max_viewers=max(10, args.viewers), keep_logs=args.keep_logs)
    pool = None
    samples: list[dict] = []
    try:
        stack.prepare()
        stack.start_simulator()
        stack.start_server()
        stack.wait_live()
        pid = stack.worker_pid()
        t0 = time.monotonic()
        # Reference: the idle worker (camera only), sampled the same way.
        end = time.monotonic() + args.idle_seconds
        while True:
            samples.append(sample(stack, pid, t0, "idle", 0))
            if time.monotonic() >= end:
                break
            time.sleep(min(args.interval, max(0.0, end - time.monotonic())))
        # With --vanish, those viewers live in one extra client process that is
        # SIGKILLed half-way: the server must notice (RTCP silence) and free everything.
        signaling = {"kind": "http", "base": stack.base, "token": stack.token}
        if args.lean_receivers:
            # RTP counted off the socket, not reassembled by aiortc: cheap enough that on a
            # loaded machine they still answer the server's ICE consent checks in time.
            signaling["count_rtp"] = True
        pool = ClientPool(signaling, args.client_procs + (1 if args.vanish else 0))
        results = pool.connect_in(len(pool.procs) - 1, args.vanish) if args.vanish else []
        for i in range(args.viewers - args.vanish):
            results += pool.connect_in(i % args.client_procs, 1)
        errors = [r["error"] for r in results if r["error"]]
        time.sleep(args.warmup)
        vanish_at = time.monotonic() + duration / 2 if args.vanish else None
        end = time.monotonic() + duration
        first = None
        while True:
            if vanish_at is not None and time.monotonic() >= vanish_at:
                pool.kill(len(pool.procs) - 1)
                vanish_at = None
                print(f"  {args.vanish} viewers vanished (client process killed)",
                      file=sys.stderr, flush=True)
            if first is None and vanish_at is None:
                first = pool.snapshot()
            samples.append(sample(stack, pid, t0, "loaded", args.viewers))
            print(f"  t={samples[-1]['t']:>6}s rss {samples[-1]['rss_mb']} MB "
                  f"fds {samples[-1]['open_fds']} tasks {samples[-1]['asyncio_tasks']} "
                  f"viewers {samples[-1]['connected']} load {samples[-1]['load']}",
                  file=sys.stderr, flush=True)
            if time.monotonic() >= end:
                break
            time.sleep(min(args.interval, max(0.0, end - time.monotonic())))
        last = pool.snapshot()
        w = window(first or last, last)
        pool.close_viewers()
        pool.shutdown()
        pool = None
        deadline = time.monotonic() + 20
        while stack.status()["viewers"]["count"] and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(args.interval / 2)
        samples.append(sample(stack, pid, t0, "after", 0))
    finally:
        if pool is not None:
            pool.shutdown()
        stack.close()

    idle = [s for s in samples if s["phase"] == "idle"]
    loaded = [s for s in samples if s["phase"] == "loaded"]
    after = [s for s in samples if s["phase"] == "after"]
    fps = [v["fps"] for v in w["viewers"]]
    loaded_cpu = ((loaded[-1]["cpu_s"] - loaded[0]["cpu_s"]) / (loaded[-1]["t"] - loaded[0]["t"])
                  if len(loaded) > 1 and loaded[-1]["t"] > loaded[0]["t"] else None)
    result = {
        "benchmark": "worker_rss",
        "config": {"resolution": f"{args.width}x{args.height}", "fps": args.fps,
                   "bitrate_kbps": args.bitrate, "viewers": args.viewers,
                   "loaded_seconds": duration, "idle_seconds": args.idle_seconds,
                   "interval_s": args.interval, "worker_mode": stack.mode},
        "connect_errors": errors,
        "idle": {k: summary(idle, k) for k in ("rss_mb", "open_fds", "asyncio_tasks")},
        "loaded": {k: summary(loaded, k) for k in ("rss_mb", "open_fds", "asyncio_tasks")},
        "after_close": after[-1] if after else None,
        "vanished_viewers": args.vanish,
        "viewer_fps": {"min": round(min(fps), 2) if fps else None,
                       "mean": round(sum(fps) / len(fps), 2) if fps else None,
                       "viewers_counted": len(fps)},
        "worker_cpu_pct_loaded": round(100 * loaded_cpu, 1) if loaded_cpu is not None else None,
        "sink_dropped_total": loaded[-1]["dropped"] if loaded else None,
        "samples": samples,
    }
    rss = result["loaded"]["rss_mb"]
    result["ratios"] = {
        "rss_loaded_max_over_idle": round(rss["max"] / max(result["idle"]["rss_mb"]["max"], 1),
                                          2),
    }
    result["targets_met"] = {
        f"RSS under {TARGET_RSS_MB:g} MB (max {rss['max']} MB)": rss["max"] < TARGET_RSS_MB,
        f"RSS flat (2nd-half slope {rss['slope_2nd_half_per_min']} MB/min, |slope| < "
        f"{FLAT_MB_PER_MIN:g})": (rss["slope_2nd_half_per_min"] is not None
                                  and abs(rss["slope_2nd_half_per_min"]) < FLAT_MB_PER_MIN),
        # Viewers hold UDP sockets (ICE); TCP is the channel layer's Redis pool, which
        # may open a connection more after a Redis read timeout: reported, not judged.
        "viewer sockets (UDP) back to idle after the viewers left": bool(after) and (
            after[-1]["fd_kinds"].get("udp", 0) <= samples[0]["fd_kinds"].get("udp", 0)),
        "tasks back to idle after the viewers left": bool(after) and (
            after[-1]["asyncio_tasks"] <= result["idle"]["asyncio_tasks"]["max"]),
    }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.worker_rss_bench",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120, help="loaded duration")
    ap.add_argument("--minutes", type=float, default=0, help="loaded duration (overrides)")
    ap.add_argument("--idle-seconds", type=float, default=20)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--viewers", type=int, default=10)
    ap.add_argument("--vanish", type=int, default=0,
                    help="of the viewers, this many vanish half-way (their client process "
                         "is SIGKILLed): the worker must drop them and free their fds/tasks")
    ap.add_argument("--lean-receivers", action="store_true",
                    help="receivers count RTP off the socket (janus_fanout_bench's) instead "
                         "of full aiortc viewers")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--bitrate", type=int, default=8000, help="kbit/s")
    ap.add_argument("--mode", choices=["auto", "external", "inprocess"], default="auto")
    ap.add_argument("--client-procs", type=int, default=2)
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--json", help="also write the JSON here")
    args = ap.parse_args()
    result = run(args)
    print_table(result["samples"], ["phase", "t", "connected", "rss_mb", "proc_rss_mb",
                                    "open_fds", "asyncio_tasks", "dropped", "load"])
    print(f"fds by kind: idle {result['samples'][0]['fd_kinds']}, after the viewers left "
          f"{(result['after_close'] or {}).get('fd_kinds')}")
    rows = [{"phase": phase, "metric": k, **v} for phase in ("idle", "loaded")
            for k, v in result[phase].items()]
    print()
    print_table(rows, ["phase", "metric", "start", "end", "min", "max", "drift",
                       "slope_per_min", "slope_2nd_half_per_min"])
    print(f"viewer fps over the loaded run: {result['viewer_fps']}; worker CPU "
          f"{result['worker_cpu_pct_loaded']}% of one core; sink drops "
          f"{result['sink_dropped_total']}")
    emit(result, args.json)


if __name__ == "__main__":
    main()
