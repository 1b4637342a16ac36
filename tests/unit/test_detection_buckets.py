"""Per-class counts per bucket (GET /api/cameras/{camera}/detections/?bucket=): bounded, and
counted by the database, with the same answer as the Python count it replaced, on SQLite
and on PostgreSQL (issue 14, item 2: a month at bucket=1 took 38 s, 134 MB of JSON and
1.5 GB of RAM)."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from detections.history import MAX_BUCKETS, bucket_counts, bucket_total, samples
from detections.models import DetectionSample
from tests.support.processes import manage, site_env
from tests.support.roles import make_user

URL = "/api/cameras/default/detections/"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CLASSES = ("cat", "dog", "person", "=cmd")


def python_bucket_counts(qs, start: datetime, end: datetime, bucket_seconds: int) -> list[dict]:
    """The count as it was before it moved into SQL (detections/history.py, May 2026): every
    sample through Python. The reference the database's answer must equal."""
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


def add_fixture() -> int:
    """~3,000 samples over two days: random times with microseconds, samples exactly on
    bucket edges (every whole minute and hour), several classes, another camera."""
    rnd = random.Random(14)
    rows = []
    for _ in range(2500):
        rows.append(T0 + timedelta(seconds=rnd.uniform(-3600, 2 * 86400)))
    rows += [T0 + timedelta(minutes=m) for m in range(0, 2 * 1440, 7)]  # on minute edges
    rows += [T0 - timedelta(microseconds=1), T0 + timedelta(days=1, microseconds=-1)]
    objects = [DetectionSample(camera="default", time=when, frame_number=i,
                               class_name=CLASSES[i % len(CLASSES)], confidence=0.5,
                               x=0, y=0, w=1, h=1) for i, when in enumerate(rows)]
    objects += [DetectionSample(camera="garden", time=when, frame_number=0, class_name="cat",
                                confidence=0.5, x=0, y=0, w=1, h=1) for when in rows[:300]]
    DetectionSample.objects.bulk_create(objects)
    return len(objects)


# (start offset s, end offset s, bucket s, class): whole-second ranges, where the old
# count's bucket arithmetic is exact.
CASES = [
    (0, 3600, 1, None), (0, 86400, 60, None), (-1800, 86400, 60, "dog"),
    (17, 2 * 86400, 3600, None), (0, 2 * 86400, 86400, None), (-3599, 7 * 3600 + 1, 7, None),
    (120, 180, 60, "=cmd"), (86399, 86401, 1, None), (0, 2 * 86400, 300, "nobody"),
]


def compare_with_python() -> list[str]:
    """The database's buckets vs the Python count for every case; the differences as text.
    Also run by the PostgreSQL test in a `manage.py shell` on that database."""
    add_fixture()
    problems = []
    for start_s, end_s, bucket, class_name in CASES:
        start, end = T0 + timedelta(seconds=start_s), T0 + timedelta(seconds=end_s)
        qs = samples("default", start, end, class_name)
        sql = bucket_counts(qs, start, end, bucket)
        reference = python_bucket_counts(qs, start, end, bucket)
        if sql != reference:
            first = next(i for i, (a, b) in enumerate(zip(sql, reference, strict=False))
                         if a != b) if len(sql) == len(reference) else "length"
            problems.append(f"{(start_s, end_s, bucket, class_name)}: first difference at "
                            f"bucket {first}")
        if sum(sum(b["counts"].values()) for b in sql) != qs.count():
            problems.append(f"{(start_s, end_s, bucket, class_name)}: a sample is not counted")
    return problems


@pytest.fixture
def viewer(db):
    client = APIClient()
    client.force_authenticate(make_user("viewer", "viewers"))
    return client


def test_a_month_in_one_second_buckets_is_refused_before_any_counting(viewer):
    now = datetime.now(UTC)
    start = now - timedelta(days=31)
    response = viewer.get(URL, {"from": start.timestamp(), "to": now.timestamp(), "bucket": 1})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "too_many_buckets"
    assert f"makes {bucket_total(start, now, 1)} buckets; at most {MAX_BUCKETS}" in body["detail"]
    # the detail names a bucket size that works for this range
    hint = int(body["detail"].split("use buckets of ")[1].split(" s")[0])
    again = viewer.get(URL, {"from": start.timestamp(), "to": now.timestamp(), "bucket": hint})
    assert again.status_code == 200 and len(again.json()["series"]) <= MAX_BUCKETS


def test_the_bucket_bound_is_exact(viewer):
    start = T0
    at_limit = viewer.get(URL, {"from": start.isoformat(), "bucket": 1,
                                "to": (start + timedelta(seconds=MAX_BUCKETS)).isoformat()})
    assert at_limit.status_code == 200 and len(at_limit.json()["series"]) == MAX_BUCKETS
    over = viewer.get(URL, {"from": start.isoformat(), "bucket": 1,
                            "to": (start + timedelta(seconds=MAX_BUCKETS + 1)).isoformat()})
    assert over.status_code == 400 and over.json()["error"] == "too_many_buckets"


def test_database_count_equals_the_python_count_on_sqlite(db):
    assert compare_with_python() == []


def test_a_range_with_fractional_ends_counts_every_sample(db):
    add_fixture()
    start = T0 + timedelta(seconds=10.25)
    end = T0 + timedelta(seconds=86400 + 0.75)  # the old count dropped this last 0.75 s
    qs = samples("default", start, end)
    series = bucket_counts(qs, start, end, 60)
    assert sum(sum(b["counts"].values()) for b in series) == qs.count() > 1000
    assert series[0]["start"] == "2026-05-01T12:00:00+00:00"
    assert series[-1]["start"] == "2026-05-02T12:00:00+00:00"


def test_buckets_over_the_api(viewer):
    add_fixture()
    body = viewer.get(URL, {"from": T0.isoformat(), "to": (T0 + timedelta(hours=1)).isoformat(),
                            "bucket": 600}).json()
    qs = samples("default", T0, T0 + timedelta(hours=1))
    # each bucket also has its sightings (tests/unit/test_sightings.py): the samples here
    assert [{"start": b["start"], "counts": b["counts"]} for b in body["series"]] == \
        python_bucket_counts(qs, T0, T0 + timedelta(hours=1), 600)
    assert all(set(b["sightings"]) <= set(b["counts"]) for b in body["series"])
    assert len(body["series"]) == 6


@pytest.mark.production
def test_database_count_equals_the_python_count_on_postgresql(tmp_path, postgres_url):
    env = site_env(tmp_path, DATABASE_URL=postgres_url)
    manage(env, "migrate", "--noinput")
    out = manage(env, "shell", "-c",
                 "import json; from django.db import connection;"
                 "from tests.unit.test_detection_buckets import compare_with_python;"
                 "print(json.dumps([connection.vendor, compare_with_python()]))")
    vendor, problems = json.loads(out.strip().splitlines()[-1])
    assert vendor == "postgresql"
    assert problems == []
