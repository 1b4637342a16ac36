"""Queries over detection history: time ranges, per-class counts per bucket, retention."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta

from django.db import connections
from django.db.models import Count, F, Func, IntegerField, QuerySet

from .models import DetectionSample

log = logging.getLogger("petcam.detections")

MAX_RANGE = timedelta(days=31)
# One answer holds at most this many buckets (a day at 10 s, a week at ~61 s): a month at
# 1 s would be 2.7 million, hundreds of MB of JSON.
MAX_BUCKETS = 10_000
# Times outside these are refused: nothing is recorded before the Unix epoch, and staying
# clear of year 9999 keeps every range and bucket computation inside datetime's limits.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def parse_time(value: str | None, default: datetime, name: str = "time") -> datetime:
    """ISO 8601 (naive = UTC) or Unix seconds, EARLIEST..LATEST; ValueError with a
    readable message."""
    if value is None or value == "":
        return default
    try:
        seconds = float(value)  # a 4,301-digit number is inf here, "nan" is NaN
    except ValueError:
        seconds = None
    if seconds is not None:
        if not EARLIEST.timestamp() <= seconds < LATEST.timestamp():  # NaN fails too
            raise ValueError(_out_of_range(name))
        return datetime.fromtimestamp(seconds, UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"'{name}': {value[:40]!r} is neither ISO 8601 nor Unix seconds"
                         ) from exc
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    try:
        in_range = EARLIEST <= parsed < LATEST
    except OverflowError:  # an offset that moves year 1 or 9999 out of datetime's range
        in_range = False
    if not in_range:
        raise ValueError(_out_of_range(name))
    return parsed


def _out_of_range(name: str) -> str:
    return (f"'{name}' must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} "
            "(UTC).")


def samples(camera: str, start: datetime, end: datetime,
            class_name: str | None = None) -> QuerySet[DetectionSample]:
    qs = DetectionSample.objects.filter(camera=camera, time__gte=start, time__lt=end)
    return qs.filter(class_name=class_name) if class_name else qs


def bucket_origin(start: datetime, bucket_seconds: int) -> int:
    """Buckets are aligned to multiples of bucket_seconds (whole minutes for 60)."""
    return int(start.timestamp() // bucket_seconds) * bucket_seconds


def bucket_total(start: datetime, end: datetime, bucket_seconds: int) -> int:
    """How many buckets cover [start, end)."""
    origin = bucket_origin(start, bucket_seconds)
    return max(1, math.ceil((end.timestamp() - origin) / bucket_seconds))


class BucketIndex(Func):
    """floor((Unix seconds of a datetime column - origin) / width), in the database.

    SQLite: Django stores 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC); strftime('%s') of its first
    19 characters is the floor of the Unix seconds, exactly (of the whole text, SQLite
    would round .9995 s up to the next second); the integer division is a floor because
    every row is at or after start >= origin. PostgreSQL: EXTRACT(EPOCH) is an exact
    numeric.
    """

    output_field = IntegerField()

    def __init__(self, column: str, origin: int, width: int) -> None:
        super().__init__(F(column))
        self.origin, self.width = int(origin), int(width)

    def _column(self, compiler, connection):
        return compiler.compile(self.get_source_expressions()[0])

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = self._column(compiler, connection)
        return (f"((CAST(strftime('%%s', substr({sql}, 1, 19)) AS INTEGER) - %s) / %s)",
                (*params, self.origin, self.width))

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = self._column(compiler, connection)
        return (f"CAST(FLOOR((EXTRACT(EPOCH FROM {sql}) - %s) / %s) AS BIGINT)",
                (*params, self.origin, self.width))

    def as_sql(self, compiler, connection, **extra):
        raise NotImplementedError(f"detection buckets need SQLite or PostgreSQL, not "
                                  f"{connection.vendor}")


def bucket_counts(qs: QuerySet[DetectionSample], start: datetime, end: datetime,
                  bucket_seconds: int) -> list[dict]:
    """Counts per class per bucket, every bucket of the range present (zeros included).

    Counted by the database (GROUP BY bucket, class): the answer costs memory per bucket
    and class, not per sample. The caller bounds the buckets (MAX_BUCKETS).
    """
    origin = bucket_origin(start, bucket_seconds)
    n_buckets = bucket_total(start, end, bucket_seconds)
    counts: list[dict[str, int]] = [{} for _ in range(n_buckets)]
    rows = (qs.order_by()
            .annotate(bucket=BucketIndex("time", origin, bucket_seconds))
            .values("bucket", "class_name")
            .annotate(n=Count("id"))
            .order_by("bucket", "class_name"))
    # A cursor read in chunks: a month's rows held as a list cost ~10 MB per request, which
    # the server's allocator kept after each answer (benchmarks/hostile_probe.py).
    for row in rows.iterator(chunk_size=2000):
        if 0 <= row["bucket"] < n_buckets:
            counts[row["bucket"]][row["class_name"]] = row["n"]
    return [
        {"start": datetime.fromtimestamp(origin + i * bucket_seconds, UTC).isoformat(),
         "counts": c}
        for i, c in enumerate(counts)
    ]


class EpochMicroseconds(Func):
    """Unix microseconds of a datetime column as an exact integer, in the database: the
    gaps between one class's samples are compared with it (a float of Unix seconds made a
    break of exactly the gap 5.0000001 s).

    SQLite: Django stores 'YYYY-MM-DD HH:MM:SS[.ffffff]' (UTC): whole seconds from its
    first 19 characters, microseconds from the 6 digits after the dot, if any.
    PostgreSQL: EXTRACT(EPOCH) is an exact numeric.
    """

    output_field = IntegerField()

    def __init__(self, column: str) -> None:
        super().__init__(F(column))

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return (f"(CAST(strftime('%%s', substr({sql}, 1, 19)) AS INTEGER) * 1000000"
                f" + CAST(substr({sql} || '.000000', 21, 6) AS INTEGER))", (*params, *params))

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return f"CAST(EXTRACT(EPOCH FROM {sql}) * 1000000 AS BIGINT)", params

    def as_sql(self, compiler, connection, **extra):
        raise NotImplementedError(f"sightings need SQLite or PostgreSQL, not {connection.vendor}")


# Before a class's first sample in the range there is nothing: a gap longer than any.
_NO_PREVIOUS = -(2**62)


def sighting_counts(qs: QuerySet[DetectionSample], start: datetime, end: datetime,
                    bucket_seconds: int, gap_seconds: float) -> list[dict[str, int]]:
    """Sightings per class per bucket: what a person means by "the cat came by 3 times".

    The history holds one sample per class per PETCAM_DETECTION_SAMPLE_SECONDS while
    something is detected, so a cat sitting in view for 7 minutes is ~420 samples. Here
    a class's samples with no break longer than `gap_seconds` between them are one
    sighting (a detector missing a few frames, or two cats in one frame, do not make
    new ones), counted once, in the bucket where it starts. A sighting already going on
    when the range starts counts in the first bucket. Classes are counted apart: a cat
    and a dog in view together are two sightings.

    Counted by the database (a window over each class's samples in time order, then
    GROUP BY bucket, class), like bucket_counts(); same buckets, same length.
    """
    origin = bucket_origin(start, bucket_seconds)
    n_buckets = bucket_total(start, end, bucket_seconds)
    counts: list[dict[str, int]] = [{} for _ in range(n_buckets)]
    per_sample = (qs.order_by()
                  .annotate(t=EpochMicroseconds("time"),
                            bucket=BucketIndex("time", origin, bucket_seconds))
                  .values("bucket", "class_name", "t"))
    # The window in SQL of its own: the ORM cannot group rows filtered on a window
    # function (SQLite: "misuse of window function"), and over the subquery's `t` each
    # sample's time is converted once. Equal times (two cats in a frame) are a 0 s gap.
    inner, params = per_sample.query.sql_with_params()
    sql = ("SELECT w.bucket, w.class_name, COUNT(*) FROM ("
           "  SELECT s.bucket, s.class_name, s.t,"
           f"         LAG(s.t, 1, {_NO_PREVIOUS}) OVER (PARTITION BY s.class_name ORDER BY s.t)"
           "         AS previous"
           f"  FROM ({inner}) s"
           ") w WHERE w.t > w.previous + %s GROUP BY w.bucket, w.class_name")
    params = (*params, round(gap_seconds * 1_000_000))
    with connections[qs.db].cursor() as cursor:
        cursor.execute(sql, params)
        for bucket, class_name, n in cursor.fetchall():  # one row per bucket and class
            if 0 <= bucket < n_buckets:
                counts[bucket][class_name] = n
    return counts


def purge_older_than(days: float) -> int:
    cutoff = datetime.now(UTC) - timedelta(days=days)
    deleted, _ = DetectionSample.objects.filter(time__lt=cutoff).delete()
    if deleted:
        log.info("detection history: removed %d samples older than %s", deleted,
                 cutoff.isoformat(timespec="seconds"))
    return deleted
