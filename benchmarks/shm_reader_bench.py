"""Shared-memory reader benchmark: cost per frame and write->yield latency at 1080p30 8 Mbit/s.

A writer process behaves like the camera daemon (bump write_index, then copy
the whole 3.1 MB slot) at 30 fps with frame sizes of an 8 Mbit/s stream
(IDR ~150 KB every 60 frames, P ~30 KB). Four readers run side by side in the
same run, each in its own process:

- petcam's FrameReader: yields a slot only once write_index proves it complete
  (the writer probe proves the newest one early), sleeping until the next
  frame is due (FramePacer);
- the same with the old fixed 1 ms poll, to show what the pacing saves;
- the same without the writer probe (waits for the next index);
- a naive reader that copies the newest slot as soon as write_index changes
  (what a straightforward port of the seeds would do).

Every frame carries a CRC, so torn frames are counted, not guessed; 'torn'
also counts stale frames (an intact slot from the ring's previous lap).
Latency is measured from the writer's CLOCK_MONOTONIC stamp taken right
before it bumps write_index. Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import mmap
import multiprocessing as mp
import os
import time
import uuid
import zlib

from benchmarks._harness import pct
from streaming.media.shm import layout as L
from streaming.media.shm import segment as shm_segment
from streaming.media.shm.stream_reader import FrameReader
from streaming.media.shm.writer import FrameWriter, monotonic_ns
from tests.support.poll_counter import PollCounter


def frame_payload(n: int, fps: int, bitrate: int, gop: int) -> bytes:
    avg = bitrate // 8 // fps
    size = avg * 4 if n % gop == 1 else int(avg * 0.95)
    body = b"\0\0\0\1" + (b"\x65" if n % gop == 1 else b"\x41") + os.urandom(16) * (size // 16)
    return body + zlib.crc32(body).to_bytes(4, "little")


def crc_ok(data: bytes) -> bool:
    return len(data) > 4 and zlib.crc32(data[:-4]).to_bytes(4, "little") == data[-4:]


def writer_proc(name, seconds, fps, bitrate, gop, ready, go, copy_ms):
    writer = FrameWriter(name, frame_interval_ms=round(1000 / fps))
    payloads = [frame_payload(n, fps, bitrate, gop) for n in range(1, gop + 1)]
    ready.set()
    go.wait()
    start = time.monotonic()
    frames = int(seconds * fps)
    for i in range(1, frames + 1):
        t0 = time.perf_counter()
        writer.write(payloads[(i - 1) % gop], width=1920, height=1080, timestamp_ns=monotonic_ns())
        copy_ms.append((time.perf_counter() - t0) * 1000)
        delay = start + i / fps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    time.sleep(0.3)
    writer.close(unlink=False)


def petcam_reader_proc(name, seconds, out, probe=True, pace=True):
    reader = FrameReader(name, probe_writer=probe)
    polls = PollCounter(reader)
    lat, torn, n = [], 0, 0
    cpu0 = time.process_time()
    deadline = time.monotonic() + seconds
    for frame in reader.frames(lambda: time.monotonic() > deadline, pace=pace):
        if crc_ok(frame.data):
            lat.append((frame.read_ns - frame.header.tv_sec * 10**9 - frame.header.tv_nsec) / 1e6)
        else:
            torn += 1
        n += 1
    label = "petcam (writer probe)" if probe else "petcam (next-index only)"
    if not pace:
        label = "petcam 1 ms poll"  # the writer probe, without FramePacer
    out.put({"reader": label, "frames": n, "torn": torn, "polls": polls.count,
             "cpu_s": time.process_time() - cpu0, "latency_ms": lat,
             "gaps": reader.stats.gaps, "early_commits": reader.stats.early_commits})


def naive_reader_proc(name, seconds, out):
    # Maps the segment, as a straightforward port would (petcam's reader copies with
    # pread: a mapping dies of SIGBUS when the file is shrunk under it).
    mm = None
    while mm is None:
        try:
            with open(shm_segment.shm_path(name), "rb") as f:
                mm = mmap.mmap(f.fileno(), L.SHARED_FRAME_BUFFER_SIZE, prot=mmap.PROT_READ)
        except (FileNotFoundError, ValueError):
            time.sleep(0.01)
    last = L.WRITE_INDEX.unpack_from(mm, 0)[0]
    lat, torn, n, newest = [], 0, 0, 0
    cpu0 = time.process_time()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        w = L.WRITE_INDEX.unpack_from(mm, 0)[0]
        if w == last:
            time.sleep(0.001)
            continue
        last = w
        off = L.slot_offset(L.slot_for_index(w))
        h = L.FrameHeader.unpack_from(mm, off)
        size = min(h.data_size, L.FRAME_DATA_CAPACITY)
        data = mm[off + 48:off + 48 + size]
        if crc_ok(data) and h.frame_number > newest:
            newest = h.frame_number
            lat.append((monotonic_ns() - h.tv_sec * 10**9 - h.tv_nsec) / 1e6)
        else:  # torn, or a whole stale frame from the previous lap of the ring
            torn += 1
        n += 1
    out.put({"reader": "naive newest-slot", "frames": n, "torn": torn, "polls": None,
             "cpu_s": time.process_time() - cpu0, "latency_ms": lat, "gaps": None,
             "early_commits": None})


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.shm_reader_bench",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--bitrate", type=int, default=8_000_000)
    ap.add_argument("--json", help="also write the JSON here")
    args = ap.parse_args()
    name = f"/petcam_bench_{uuid.uuid4().hex[:8]}"
    ctx = mp.get_context("fork")
    ready, go = ctx.Event(), ctx.Event()
    manager = ctx.Manager()
    copy_ms = manager.list()
    out = ctx.Queue()
    gop = args.fps * 2
    writer = ctx.Process(target=writer_proc, args=(name, args.seconds, args.fps, args.bitrate,
                                                   gop, ready, go, copy_ms))
    writer.start()
    ready.wait(30)
    readers = [ctx.Process(target=petcam_reader_proc, args=(name, args.seconds + 0.2, out)),
               ctx.Process(target=petcam_reader_proc,
                           args=(name, args.seconds + 0.2, out, True, False)),
               ctx.Process(target=petcam_reader_proc,
                           args=(name, args.seconds + 0.2, out, False)),
               ctx.Process(target=naive_reader_proc, args=(name, args.seconds + 0.2, out))]
    for r in readers:
        r.start()
    time.sleep(0.3)
    go.set()
    results = [out.get(timeout=args.seconds + 30) for _ in readers]
    for r in readers:
        r.join(10)
    writer.join(10)
    shm_segment.unlink(name)

    rows = []
    order = ["petcam (writer probe)", "petcam 1 ms poll",
             "petcam (next-index only)", "naive newest-slot"]
    for r in sorted(results, key=lambda r: order.index(r["reader"])):
        lat = r.pop("latency_ms")
        n = max(r["frames"], 1)
        rows.append({
            **r,
            "torn_pct": round(100 * r["torn"] / n, 2),
            "cpu_us_per_frame": round(r["cpu_s"] / n * 1e6, 1),
            "polls_per_frame": round(r["polls"] / n, 1) if r["polls"] is not None else None,
            "cpu_pct_of_core": round(100 * r["cpu_s"] / args.seconds, 2),
            "latency_p50_ms": round(pct(lat, 50), 3),
            "latency_p99_ms": round(pct(lat, 99), 3),
        })
    report = {
        "benchmark": "shm_reader",
        "config": {"seconds": args.seconds, "fps": args.fps, "bitrate": args.bitrate,
                   "resolution": "1920x1080", "gop": gop},
        "writer_slot_copy_ms": {"p50": round(pct(list(copy_ms), 50), 3),
                                "p99": round(pct(list(copy_ms), 99), 3)},
        "readers": rows,
    }
    petcam, unpaced, next_index, naive = rows
    report["ratios"] = {
        "cpu_per_frame_petcam_over_naive": round(
            petcam["cpu_us_per_frame"] / max(naive["cpu_us_per_frame"], 1e-9), 2),
        "cpu_per_frame_paced_over_1ms_poll": round(
            petcam["cpu_us_per_frame"] / max(unpaced["cpu_us_per_frame"], 1e-9), 2),
        "latency_p99_next_index_over_probe": round(
            next_index["latency_p99_ms"] / max(petcam["latency_p99_ms"], 1e-9), 1),
    }
    cols = ["reader", "early_commits", "frames", "torn", "torn_pct", "gaps", "polls_per_frame",
            "cpu_us_per_frame",
            "cpu_pct_of_core", "latency_p50_ms", "latency_p99_ms"]
    print(" | ".join(f"{c:>16}" for c in cols))
    for row in rows:
        print(" | ".join(f"{row[c]!s:>16}"[-24:] for c in cols))
    print(f"writer slot copy (bump -> copy done): p50 {report['writer_slot_copy_ms']['p50']} ms, "
          f"p99 {report['writer_slot_copy_ms']['p99']} ms")
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
