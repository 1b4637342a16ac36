"""What counting sightings costs next to the sample counts it is answered with.

GET /api/cameras/{camera}/detections/?bucket= answers both: `counts` (samples per class
per bucket, GROUP BY in the database) and `sightings` (a window over each class's samples
in time order, then GROUP BY; detections/history.py). This fills a scratch database with
--days of history for one camera (a cat in view ten minutes in every twenty with a few
missed samples, a dog two minutes in thirty, a sample a second as the worker stores them)
and times both counts over the ranges a user asks for: the live page's hour in 5-minute
steps, a day, a week, and the whole history at the largest bucket count allowed.
Ratio = sightings / samples time for the same range, same run.

    .venv/bin/python -m benchmarks.sightings_bench [--days 7] [--postgres] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks._harness import emit, loadavg, print_table

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
REPEAT = 5


def fill(days: float, end: datetime) -> int:
    from detections.models import DetectionSample

    rng = random.Random(17)
    begin = end - timedelta(days=days)
    batch, total = [], 0
    for s in range(int(days * 86400)):
        when = begin + timedelta(seconds=s + rng.random() * 0.05)
        minute = s // 60
        for name, period, length in (("cat", 20, 10), ("dog", 30, 2)):
            if minute % period < length and rng.random() > 0.05:
                batch.append(DetectionSample(camera="default", time=when, frame_number=s * 30,
                                             class_name=name, confidence=0.9,
                                             x=10, y=20, w=50, h=40))
        if len(batch) >= 5000:
            DetectionSample.objects.bulk_create(batch)
            total += len(batch)
            batch = []
    DetectionSample.objects.bulk_create(batch)
    return total + len(batch)


def timed(fn) -> tuple[float, object]:
    times, result = [], None
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def measure(days: float, end: datetime) -> tuple[list[dict], dict]:
    from detections.history import MAX_BUCKETS, bucket_counts, samples, sighting_counts

    whole = timedelta(days=days)
    whole_bucket = max(60, int(whole.total_seconds() // (MAX_BUCKETS - 1)) + 1)
    ranges = [("live page: 1 h / 300 s", timedelta(hours=1), 300),
              ("1 day / 300 s", timedelta(days=1), 300),
              ("7 days / 3600 s", timedelta(days=min(7, days)), 3600),
              (f"{days:g} days / {whole_bucket} s", whole, whole_bucket)]
    rows, raw = [], []
    for label, span, bucket in ranges:
        start = end - span
        qs = samples("default", start, end)
        sample_ms, counts = timed(lambda qs=qs, s=start, b=bucket: bucket_counts(qs, s, end, b))
        sight_ms, sightings = timed(
            lambda qs=qs, s=start, b=bucket: sighting_counts(qs, s, end, b, 5.0))
        n_samples = sum(sum(c["counts"].values()) for c in counts)
        n_sightings = sum(sum(c.values()) for c in sightings)
        row = {"range": label, "rows": n_samples, "sightings": n_sightings,
               "samples_ms": round(sample_ms, 1), "sightings_ms": round(sight_ms, 1),
               "x_sightings_over_samples": round(sight_ms / sample_ms, 2) if sample_ms else None}
        rows.append(row)
        raw.append(row)
    return rows, {"ranges": raw}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sightings_bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=float, default=7, help="history to fill")
    parser.add_argument("--postgres", action="store_true",
                        help="PostgreSQL (the local server) instead of SQLite")
    parser.add_argument("--json", help="also write the JSON here")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="petcam-sightings-bench-"))
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
    from django.core.management import call_command
    from django.db import connection, connections

    try:
        call_command("migrate", verbosity=0)
        end = datetime.now(UTC).replace(microsecond=0)
        t0 = time.perf_counter()
        total = fill(args.days, end)
        fill_s = time.perf_counter() - t0
        vendor = connection.vendor
        rows, raw = measure(args.days, end)
    finally:
        connections.close_all()
        if pg_name:
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        for p in sorted(tmp.rglob("*"), reverse=True):
            p.unlink() if p.is_file() or p.is_symlink() else p.rmdir()
        tmp.rmdir()

    print(f"\n{total} samples over {args.days:g} days ({vendor}, filled in {fill_s:.0f} s), "
          f"median of {REPEAT}; load {loadavg()}")
    print_table(rows, ["range", "rows", "sightings", "samples_ms", "sightings_ms",
                       "x_sightings_over_samples"])
    emit({"benchmark": "sightings", "vendor": vendor, "days": args.days, "samples": total,
          "load": loadavg(), "date": datetime.now(UTC).isoformat(timespec="seconds"), **raw},
         args.json)


if __name__ == "__main__":
    main()
