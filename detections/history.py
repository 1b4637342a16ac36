"""Queries over detection history: time ranges, per-class counts per bucket, retention."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.db.models import QuerySet

from .models import DetectionSample

log = logging.getLogger("petcam.detections")

MAX_RANGE = timedelta(days=31)


def parse_time(value: str | None, default: datetime) -> datetime:
    """ISO 8601 (naive = UTC) or Unix seconds; ValueError with a readable message."""
    if value is None or value == "":
        return default
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{value!r} is neither ISO 8601 nor Unix seconds") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def samples(camera: str, start: datetime, end: datetime,
            class_name: str | None = None) -> QuerySet[DetectionSample]:
    qs = DetectionSample.objects.filter(camera=camera, time__gte=start, time__lt=end)
    return qs.filter(class_name=class_name) if class_name else qs


def bucket_counts(qs: QuerySet[DetectionSample], start: datetime, end: datetime,
                  bucket_seconds: int) -> list[dict]:
    """Counts per class per bucket, every bucket of the range present (zeros included).

    Buckets are aligned to multiples of bucket_seconds (whole minutes for 60).
    """
    origin = start.timestamp() // bucket_seconds * bucket_seconds
    n_buckets = max(1, int((end.timestamp() - origin + bucket_seconds - 1) // bucket_seconds))
    counts: list[dict[str, int]] = [defaultdict(int) for _ in range(n_buckets)]
    for when, class_name in qs.values_list("time", "class_name").iterator(chunk_size=5000):
        index = int((when.timestamp() - origin) // bucket_seconds)
        if 0 <= index < n_buckets:
            counts[index][class_name] += 1
    return [
        {"start": datetime.fromtimestamp(origin + i * bucket_seconds, UTC).isoformat(),
         "counts": dict(c)}
        for i, c in enumerate(counts)
    ]


def purge_older_than(days: float) -> int:
    cutoff = datetime.now(UTC) - timedelta(days=days)
    deleted, _ = DetectionSample.objects.filter(time__lt=cutoff).delete()
    if deleted:
        log.info("detection history: removed %d samples older than %s", deleted,
                 cutoff.isoformat(timespec="seconds"))
    return deleted
