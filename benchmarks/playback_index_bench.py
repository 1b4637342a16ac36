"""Playback lookups on a one-hour recording: indexed vs naive, side by side in one run.

Builds, in a throw-away var dir:
- a real one-hour fragmented MP4 (Mp4FileWriter, the recorder's writer; one libx264
  GOP of small frames replayed with fresh camera timestamps, GOP 15 at 30 fps = the
  board's 0.5 s: 7,200 fragments, 108,000 frames);
- a detection history (DetectionSample) of `--history-hours` for two cameras at the
  detection feed's rate (1 sample/s, a cat always, a dog 30 % of the time), and a
  Recording row covering one hour of it.

Then it measures what the playback page and API ask for:
- keyframe lookup "time -> fragment byte offset": the stored index (bisect) vs a
  linear scan of the same list vs no index at all (walk the file's boxes up to t);
- the index itself: build from the file once, load from its JSON sidecar, memo hit;
- detections at a time point (the page's seek, GET .../detections/?at=), a 60 s
  window (what the page fetches while playing) and the whole hour's timeline:
  the same SQL with the (camera, time) index vs forced to scan the table
  (SQLite `NOT INDEXED`; PostgreSQL with index scans disabled for the query).

Prints a table and JSON. `--postgres` runs the database part on a scratch
PostgreSQL database (127.0.0.1:5432) too.
"""

from __future__ import annotations

import argparse
import bisect
import os
import random
import statistics
import struct
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks._harness import emit, loadavg, pct, print_table

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def timed(fn, repeat: int) -> list[float]:
    """Milliseconds per call."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def summary(values: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(values), 4), "p95_ms": round(pct(values, 95), 4),
            "n": len(values)}


# --- the recording -----------------------------------------------------------------------------


def write_hour(path: Path, seconds: float, fps: int, gop: int) -> dict:
    from recordings.media.writers import Mp4FileWriter
    from streaming.media.h264.processor import H264Processor
    from tests.support.h264_samples import encode_frames

    processor = H264Processor()
    gop_units = [processor.process(data, i + 1, 0.0)
                 for i, data in enumerate(encode_frames(96, 64, gop, gop=gop, fps=fps))]
    writer = Mp4FileWriter(path)
    writer.create()
    start = time.perf_counter()
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC) - seconds - 5
    for n in range(int(seconds * fps)):
        unit = gop_units[n % gop]
        writer.write(replace(unit, frame_number=n + 1, timestamp=t0 + n / fps))
    writer.close()
    return {"frames": writer.frames, "bytes": path.stat().st_size,
            "write_s": round(time.perf_counter() - start, 2)}


def naive_file_lookup(path: Path, t: float) -> int:
    """No index: walk the top-level boxes from the start, reading each moof's tfdt."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        pos, found = 0, 0
        while pos + 8 <= size:
            f.seek(pos)
            box_size, kind = struct.unpack(">I4s", f.read(8))
            if kind == b"moof":
                body = f.read(box_size - 8)
                at = body.find(b"tfdt")
                version = body[at + 4]
                ticks = struct.unpack_from(">Q" if version else ">I", body, at + 8)[0]
                if ticks / 90_000 > t:
                    return found
                found = pos
            pos += box_size
        return found


def keyframe_figures(path: Path, file_name: str, lookups: int) -> tuple[list[dict], dict]:
    from recordings import keyframe_index

    rows, raw = [], {}
    build = timed(lambda: keyframe_index.build(path), 3)
    index = keyframe_index.load(file_name, store=True)
    sidecar = path.with_name(path.stem + ".index.json")
    keyframe_index._memo.clear()
    from_sidecar = []
    for _ in range(5):
        keyframe_index._memo.clear()
        from_sidecar += timed(lambda: keyframe_index.load(file_name, store=True), 1)
    memo = timed(lambda: keyframe_index.load(file_name, store=True), 200)
    raw["index"] = {"fragments": len(index.fragments), "frames": index.frames,
                    "duration_s": round(index.duration, 3), "sidecar_bytes": sidecar.stat().st_size,
                    "build_from_file": summary(build), "load_from_sidecar": summary(from_sidecar),
                    "memo_hit": summary(memo)}
    rng = random.Random(1)
    times = [rng.uniform(0, index.duration) for _ in range(lookups)]
    frags = index.fragments
    starts = [f.start for f in frags]

    def indexed():
        for t in times:
            index.at(t)

    def linear():
        for t in times:
            next((f for f in frags if f.start <= t < f.end), frags[-1])

    per = lambda ms, n: [m / n for m in ms]  # noqa: E731 - per-lookup figures
    a = per(timed(indexed, 5), len(times))
    b = per(timed(linear, 3), len(times))
    few = times[:20]
    c = [x for t in few for x in timed(lambda t=t: naive_file_lookup(path, t), 1)]
    # every answer agrees (the fragment holding t)
    for t in few:
        assert frags[bisect.bisect_right(starts, t) - 1].offset == naive_file_lookup(path, t)
    raw["lookup"] = {"indexed_bisect": summary(a), "linear_scan_of_index": summary(b),
                     "no_index_walk_file": summary(c)}
    base = statistics.median(a)
    for name, values in (("keyframe: bisect on stored index", a),
                         ("keyframe: linear scan of index", b),
                         ("keyframe: walk file boxes (no index)", c)):
        rows.append({"lookup": name, "p50_ms": statistics.median(values),
                     "p95_ms": pct(values, 95), "x_indexed": statistics.median(values) / base})
    rows.append({"lookup": "index: build from file (once)", "p50_ms": statistics.median(build),
                 "p95_ms": pct(build, 95), "x_indexed": None})
    rows.append({"lookup": "index: load JSON sidecar", "p50_ms": statistics.median(from_sidecar),
                 "p95_ms": pct(from_sidecar, 95), "x_indexed": None})
    rows.append({"lookup": "index: in-process memo hit", "p50_ms": statistics.median(memo),
                 "p95_ms": pct(memo, 95), "x_indexed": None})
    return rows, raw


# --- detections ---------------------------------------------------------------------------------


def fill_history(hours: float, started: datetime) -> int:
    from detections.models import DetectionSample

    rng = random.Random(2)
    begin = started - timedelta(hours=hours / 2)
    batch, total = [], 0
    for camera in ("default", "garden"):
        for s in range(int(hours * 3600)):
            when = begin + timedelta(seconds=s + rng.random() * 0.05)
            batch.append(DetectionSample(camera=camera, time=when, frame_number=s * 30,
                                         class_name="cat", confidence=0.9,
                                         x=10, y=20, w=50, h=40))
            if (s // 60) % 10 < 3:  # a dog, three minutes in ten
                batch.append(DetectionSample(camera=camera, time=when, frame_number=s * 30,
                                             class_name="dog", confidence=0.8,
                                             x=100, y=50, w=60, h=50))
            if len(batch) >= 5000:
                DetectionSample.objects.bulk_create(batch)
                total += len(batch)
                batch = []
    DetectionSample.objects.bulk_create(batch)
    return total + len(batch)


def scan_sql(qs) -> tuple[str, list, list[str]]:
    """The queryset's SQL, and the same forced to scan the table (no index)."""
    from django.db import connection

    from detections.models import DetectionSample

    sql, params = qs.query.sql_with_params()
    table = connection.ops.quote_name(DetectionSample._meta.db_table)
    if connection.vendor == "sqlite":
        return sql, list(params), [sql.replace(f"FROM {table}", f"FROM {table} NOT INDEXED", 1)]
    return sql, list(params), ["SET LOCAL enable_indexscan = off",
                               "SET LOCAL enable_bitmapscan = off",
                               "SET LOCAL enable_indexonlyscan = off", sql]


def run_sql(statements: list[str], params: list) -> int:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements[:-1]:
            cursor.execute(statement)
        cursor.execute(statements[-1], params)
        return len(cursor.fetchall())


def detection_figures(rec, lookups: int) -> tuple[list[dict], dict]:
    from django.db import connection

    from detections.models import DetectionSample
    from recordings import recording_detections as rd

    rng = random.Random(3)
    times = [rng.uniform(0, rec.duration) for _ in range(lookups)]
    rows, raw = [], {}

    def at_query(t: float):
        return (DetectionSample.objects
                .filter(camera=rec.camera, time__gte=rec.started_at + timedelta(seconds=t - 1),
                        time__lt=rec.started_at + timedelta(seconds=t + 1))
                .order_by("time", "id")
                .values_list("time", "frame_number", "class_name", "confidence",
                             "x", "y", "w", "h"))

    def window_query(t: float):
        return (DetectionSample.objects
                .filter(camera=rec.camera, time__gte=rec.started_at + timedelta(seconds=t),
                        time__lt=rec.started_at + timedelta(seconds=t + 60))
                .order_by("time", "id").values_list("time", "class_name", "x", "y", "w", "h"))

    hour = (DetectionSample.objects
            .filter(camera=rec.camera, time__gte=rec.started_at,
                    time__lt=rec.started_at + timedelta(seconds=rec.duration))
            .order_by("time").values_list("time", "class_name"))
    cases = [("detections at a time point (?at=)", at_query, lookups),
             ("detections, 60 s window", window_query, max(10, lookups // 5))]
    for name, make, n in cases:
        idx_ms, scan_ms = [], []
        for t in times[:n]:
            sql, params, scan = scan_sql(make(t))
            idx_ms += timed(lambda s=sql, p=params: run_sql([s], p), 1)
        for t in times[:max(5, n // 20)]:  # a full scan is slow: fewer of them
            sql, params, scan = scan_sql(make(t))
            got = run_sql(scan, params)
            assert got == run_sql([sql], params)  # same answer with or without the index
            scan_ms += timed(lambda s=scan, p=params: run_sql(s, p), 1)
        raw[name] = {"indexed": summary(idx_ms), "table_scan": summary(scan_ms)}
        rows.append({"lookup": name, "indexed_p50_ms": statistics.median(idx_ms),
                     "indexed_p95_ms": pct(idx_ms, 95), "scan_p50_ms": statistics.median(scan_ms),
                     "x_slower_without_index": statistics.median(scan_ms)
                     / statistics.median(idx_ms)})
    sql, params, scan = scan_sql(hour)
    idx_ms = timed(lambda: run_sql([sql], params), 5)
    scan_ms = timed(lambda: run_sql(scan, params), 3)
    raw["whole hour (timeline rows)"] = {"indexed": summary(idx_ms),
                                         "table_scan": summary(scan_ms)}
    rows.append({"lookup": "whole hour (timeline rows)",
                 "indexed_p50_ms": statistics.median(idx_ms),
                 "indexed_p95_ms": pct(idx_ms, 95), "scan_p50_ms": statistics.median(scan_ms),
                 "x_slower_without_index": statistics.median(scan_ms) / statistics.median(idx_ms)})
    # what the endpoints themselves take (ORM, grouping, JSON-ready dicts)
    api_at = timed(lambda: rd.result_at(rec, rng.uniform(0, rec.duration), 1.0), lookups)
    api_window = timed(lambda: rd.results(rec, rng.uniform(0, rec.duration - 60),
                                          rng.uniform(0, rec.duration - 60) + 60), 20)
    api_timeline = timed(lambda: rd.timeline(rec), 3)
    raw["endpoint functions"] = {"result_at": summary(api_at), "results_60s": summary(api_window),
                                 "timeline_hour": summary(api_timeline)}
    for name, values in (("endpoint: result_at (?at=)", api_at),
                         ("endpoint: 60 s window", api_window),
                         ("endpoint: hour timeline", api_timeline)):
        rows.append({"lookup": name, "indexed_p50_ms": statistics.median(values),
                     "indexed_p95_ms": pct(values, 95), "scan_p50_ms": None,
                     "x_slower_without_index": None})
    raw["vendor"] = connection.vendor
    return rows, raw


def database_part(hours: float, lookups: int) -> tuple[list[dict], dict]:
    from django.core.management import call_command

    from detections.models import DetectionSample
    from recordings.models import Recording

    call_command("migrate", verbosity=0)
    started = datetime(2026, 1, 1, 12, tzinfo=UTC)
    start = time.perf_counter()
    n = fill_history(hours, started)
    fill_s = time.perf_counter() - start
    rec = Recording.objects.create(camera="default", file="recordings/bench.mp4", format="mp4",
                                   status="complete", started_at=started, duration=3600.0,
                                   frame_count=108_000, width=96, height=64)
    rows, raw = detection_figures(rec, lookups)
    raw["history_rows"] = DetectionSample.objects.count()
    raw["inserted"] = n
    raw["fill_s"] = round(fill_s, 1)
    return rows, raw


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.playback_index_bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3600, help="recording length")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--gop", type=int, default=15)
    parser.add_argument("--history-hours", type=float, default=24,
                        help="detection history per camera (two cameras)")
    parser.add_argument("--lookups", type=int, default=500)
    parser.add_argument("--postgres", action="store_true",
                        help="the database part on PostgreSQL instead of SQLite")
    parser.add_argument("--json", help="also write the JSON here")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="petcam-playback-bench-"))
    os.environ["PETCAM_VAR_DIR"] = str(tmp)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "petcam_site.settings")
    os.environ["PETCAM_LOG_QUIET"] = "1"
    pg_name = None
    if args.postgres:
        import psycopg

        pg_name = f"petcam_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{pg_name}"
    else:
        os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.db import connections

    try:
        file_name = "recordings/bench/one-hour.mp4"
        path = Path(settings.MEDIA_ROOT) / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        made = write_hour(path, args.seconds, args.fps, args.gop)
        kf_rows, kf_raw = keyframe_figures(path, file_name, args.lookups)
        db_rows, db_raw = database_part(args.history_hours, args.lookups)
    finally:
        connections.close_all()
        if pg_name:
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        for p in sorted(tmp.rglob("*"), reverse=True):
            p.unlink() if p.is_file() or p.is_symlink() else p.rmdir()
        tmp.rmdir()

    print(f"\nrecording: {made['frames']} frames, {made['bytes'] / 2**20:.1f} MB, "
          f"{kf_raw['index']['fragments']} fragments (written in {made['write_s']} s); "
          f"load {loadavg()}")
    print_table(kf_rows, ["lookup", "p50_ms", "p95_ms", "x_indexed"])
    print(f"\ndetection history: {db_raw['history_rows']} rows ({args.history_hours} h x 2 "
          f"cameras), {db_raw['vendor']}")
    print_table(db_rows, ["lookup", "indexed_p50_ms", "indexed_p95_ms", "scan_p50_ms",
                          "x_slower_without_index"])
    emit({"recording": made, "keyframes": kf_raw, "detections": db_raw, "args": vars(args),
          "loadavg": loadavg()}, args.json)


if __name__ == "__main__":
    main()
