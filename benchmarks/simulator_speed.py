"""Camera simulator speed: can it encode 1080p30 at 8 Mbit/s live on this machine?

Rows, all in the same run:

- encode-only (unpaced): render + libx264 encode as fast as possible, for the
  default profile (high) and, as the reference, baseline (x264's cheapest
  tools); "max fps" is 1000 / mean ms and "budget" is the share of 1/fps used.
- paced live run: the real `CameraSimulator` in live mode writing real shared
  memory on its absolute schedule; achieved fps from the frames' own
  CLOCK_MONOTONIC stamps, late = frames it fell a whole interval behind.
- auto: what `--encode auto` decides here, and the figure it decided on.

`--load N` adds N busy-looping processes for the whole run, to see whether
live mode still keeps up when the board's other daemons compete for the CPU.
Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
import uuid

import numpy as np

from benchmarks._harness import emit, print_table
from streaming.media.shm import segment as shm_segment
from streaming.simulator import CameraSimulator, H264Encoder, Scene, SimulatorConfig


def burn(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


def encode_only(width: int, height: int, fps: int, bitrate: int, profile: str,
                frames: int) -> dict:
    scene = Scene(width, height)
    encoder = H264Encoder(width, height, fps=fps, bitrate_kbps=bitrate, profile=profile)
    ms, sizes = [], []
    for n in range(1, frames + 1):
        t0 = time.perf_counter()
        unit = encoder.encode(scene.render(n), n)
        ms.append((time.perf_counter() - t0) * 1000)
        sizes.append(len(unit.data))
    encoder.close()
    arr = np.asarray(ms)
    idr = [s for i, s in enumerate(sizes) if i % (2 * fps) == 0]
    return {
        "case": f"encode-only {profile}",
        "frames": frames,
        "mean_ms": round(float(arr.mean()), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "fps": round(1000 / float(arr.mean()), 1),
        "budget_pct": round(100 * float(arr.mean()) * fps / 1000, 1),
        "kbit_s": round(sum(sizes) * 8 / (frames / fps) / 1000),
        "idr_kb": round(float(np.mean(idr[1:] or idr)) / 1000, 1),
    }


def paced(width: int, height: int, fps: int, bitrate: int, seconds: float, encode: str) -> dict:
    tag = uuid.uuid4().hex[:8]
    cfg = SimulatorConfig(stream_segment=f"/petcam_bench_{tag}_s",
                          detections_segment=f"/petcam_bench_{tag}_d", width=width,
                          height=height, fps=fps, bitrate_kbps=bitrate, encode=encode,
                          duration=seconds)
    try:
        stats = CameraSimulator(cfg).run()
    finally:
        shm_segment.unlink(cfg.stream_segment)
        shm_segment.unlink(cfg.detections_segment)
    span = (stats.last_frame_ns - stats.first_frame_ns) / 1e9
    achieved = (stats.frames - 1) / span if span > 0 else 0.0
    mean, p95 = stats.encode_summary()
    return {
        "case": f"paced {encode} run" if encode == "live" else f"auto -> {stats.mode}",
        "frames": stats.frames,
        "mean_ms": round(mean or stats.calibration_ms, 2),
        "p95_ms": round(p95, 2),
        # A 0.5 s auto run is too short for a rate worth printing.
        "fps": round(achieved, 2) if encode == "live" else None,
        "budget_pct": round(100 * (mean or stats.calibration_ms) * fps / 1000, 1),
        "late": stats.late,
        "mode": stats.mode,
        "calibration_ms": round(stats.calibration_ms, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.simulator_speed",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--bitrate", type=int, default=8000, help="kbit/s")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--load", type=int, default=0, help="busy processes competing for CPU")
    ap.add_argument("--json", help="also write the JSON here")
    args = ap.parse_args()

    stop = mp.Event()
    burners = [mp.Process(target=burn, args=(stop,), daemon=True) for _ in range(args.load)]
    for b in burners:
        b.start()
    try:
        frames = int(args.seconds * args.fps)
        rows = [encode_only(args.width, args.height, args.fps, args.bitrate, p, frames)
                for p in ("high", "baseline")]
        live = paced(args.width, args.height, args.fps, args.bitrate, args.seconds, "live")
        auto = paced(args.width, args.height, args.fps, args.bitrate, 0.5, "auto")
    finally:
        stop.set()
        for b in burners:
            b.join(5)
    rows += [live, auto]
    ref = rows[1]["mean_ms"]
    for r in rows:
        r["vs_baseline"] = round(r["mean_ms"] / ref, 2) if ref else None
    keeps_up = (live["fps"] >= 0.98 * args.fps and live["late"] == 0
                and live["p95_ms"] < 1000 / args.fps)

    print(f"simulator speed: {args.width}x{args.height}@{args.fps} {args.bitrate} kbit/s, "
          f"{os.cpu_count()} CPUs, {args.load} competing busy processes")
    print_table(rows, ["case", "frames", "mean_ms", "p95_ms", "fps", "budget_pct",
                       "vs_baseline"])
    print(f"live keeps up: {'yes' if keeps_up else 'no'} (late {live['late']}); "
          f"auto picks {auto['mode']} ({auto['calibration_ms']} ms/frame measured)")
    result = {
        "width": args.width, "height": args.height, "fps": args.fps,
        "bitrate_kbps": args.bitrate, "seconds": args.seconds, "cpus": os.cpu_count(),
        "load_processes": args.load, "rows": rows, "live_keeps_up": keeps_up,
        "auto_mode": auto["mode"],
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
