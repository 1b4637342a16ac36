"""Sightings (issue 17, item 2): the activity counts what people mean. A class in view
continuously is one sighting, breaks up to the gap joined, counted in the bucket where it
starts; the API gives them next to the raw sample counts. Counted by the database (a
window over each class's samples), checked against a plain Python count on SQLite and on
PostgreSQL."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from detections.history import bucket_counts, samples, sighting_counts
from detections.models import DetectionSample
from tests.support.processes import manage, site_env
from tests.support.roles import make_user

URL = "/api/cameras/default/detections/"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)  # a whole minute and hour
GAP = 5.0


def add(offsets: list[float], class_name: str = "cat", camera: str = "default") -> None:
    DetectionSample.objects.bulk_create(
        DetectionSample(camera=camera, time=T0 + timedelta(seconds=s), frame_number=i,
                        class_name=class_name, confidence=0.9, x=0, y=0, w=1, h=1)
        for i, s in enumerate(offsets))


def count(start_s: float = 0, end_s: float = 3600, bucket: int = 60, gap: float = GAP,
          class_name: str | None = None) -> list[dict[str, int]]:
    start, end = T0 + timedelta(seconds=start_s), T0 + timedelta(seconds=end_s)
    return sighting_counts(samples("default", start, end, class_name), start, end, bucket, gap)


def nonzero(series: list[dict[str, int]]) -> dict[int, dict[str, int]]:
    return {i: c for i, c in enumerate(series) if c}


def python_sightings(rows: list[tuple[str, datetime]], start: datetime, end: datetime,
                     bucket: int, gap: float) -> list[dict[str, int]]:
    """The definition, written plainly: per class in time order, a sample more than `gap`
    after the class's previous one in the range starts a sighting."""
    origin = start.timestamp() // bucket * bucket
    n = max(1, int(-(-(end.timestamp() - origin) // bucket)))
    counts: list[dict[str, int]] = [defaultdict(int) for _ in range(n)]
    last: dict[str, float] = {}
    for class_name, when in sorted(r for r in rows if start <= r[1] < end):
        t = when.timestamp()
        if class_name not in last or t - last[class_name] > gap:
            counts[int((int(t) - origin) // bucket)][class_name] += 1
        last[class_name] = t
    return [dict(c) for c in counts]


@pytest.mark.django_db
def test_a_cat_in_view_for_ten_minutes_is_one_sighting_not_600():
    add([i * 1.0 for i in range(600)])  # a sample a second, 12:00:00 to 12:09:59
    series = count()
    assert nonzero(series) == {0: {"cat": 1}}
    samples_per_bucket = bucket_counts(samples("default", T0, T0 + timedelta(hours=1)),
                                       T0, T0 + timedelta(hours=1), 60)
    assert sum(b["counts"].get("cat", 0) for b in samples_per_bucket) == 600


@pytest.mark.django_db
def test_short_breaks_join_and_longer_ones_start_a_new_sighting():
    # 0-3 s; a 4 s break (joins); a break of exactly GAP (joins); 5.25 s (new); 61 s (new)
    add([0, 1, 2, 3, 7, 12, 17.25, 78.25])
    assert nonzero(count()) == {0: {"cat": 2}, 1: {"cat": 1}}
    # a longer gap setting joins them all but the last
    assert nonzero(count(gap=60)) == {0: {"cat": 1}, 1: {"cat": 1}}
    # a shorter one splits every break over 1 s
    assert sum(c.get("cat", 0) for c in count(gap=1.0)) == 5


@pytest.mark.django_db
def test_two_cats_in_one_frame_are_one_sighting_and_classes_count_apart():
    add([0, 0, 1, 1, 2])  # two cat boxes per sample
    add([1, 2, 30], class_name="dog")  # a dog meanwhile, then again after 28 s
    assert nonzero(count()) == {0: {"cat": 1, "dog": 2}}
    assert nonzero(count(class_name="dog")) == {0: {"dog": 2}}


@pytest.mark.django_db
def test_a_sighting_counts_where_it_starts_and_one_going_on_at_the_range_start_counts_first():
    add([50 + i for i in range(30)])  # 12:00:50 .. 12:01:19, across a minute edge
    assert nonzero(count()) == {0: {"cat": 1}}
    # the range starts mid-sighting: it counts once, in the first bucket
    assert nonzero(count(start_s=65, end_s=600)) == {0: {"cat": 1}}
    # ... and a range that ends before it starts has none
    assert nonzero(count(start_s=0, end_s=50)) == {}


@pytest.mark.django_db
def test_other_cameras_and_empty_ranges():
    add([0, 1, 2], camera="garden")
    empty = count()
    assert empty == [{}] * 60 and len(empty) == len(
        bucket_counts(samples("default", T0, T0 + timedelta(hours=1)), T0,
                      T0 + timedelta(hours=1), 60))


@pytest.mark.django_db
def test_fractional_range_ends_give_the_same_buckets_as_the_sample_counts():
    add([10.5, 11.5, 200.75, 3599.5])
    start, end = T0 + timedelta(seconds=10.25), T0 + timedelta(seconds=3599.75)
    qs = samples("default", start, end)
    sightings = sighting_counts(qs, start, end, 60, GAP)
    counts = bucket_counts(qs, start, end, 60)
    assert len(sightings) == len(counts) == 60
    # every bucket with a sighting start also has samples
    assert all(set(s) <= set(c["counts"]) for s, c in zip(sightings, counts, strict=True))
    assert nonzero(sightings) == {0: {"cat": 1}, 3: {"cat": 1}, 59: {"cat": 1}}


def random_rows() -> list[tuple[str, datetime]]:
    """Visits of random length with random breaks, a sample a second (some missed, some
    doubled), four classes, over two hours."""
    rnd = random.Random(17)
    rows = []
    for class_name in ("cat", "dog", "person", "=cmd"):
        t = rnd.uniform(-600, 600)
        while t < 2 * 3600:
            for _ in range(rnd.randint(1, 120)):
                if rnd.random() > 0.1:
                    rows.append((class_name, T0 + timedelta(seconds=t)))
                if rnd.random() < 0.05:
                    rows.append((class_name, T0 + timedelta(seconds=t)))
                t += rnd.choice((1.0, 1.0, 1.0, 2.5, 4.9))
            t += rnd.choice((3.0, 6.0, 30.0, 400.0))
    return rows


def compare_with_python() -> list[str]:
    rows = random_rows()
    DetectionSample.objects.bulk_create(
        DetectionSample(camera="default", time=when, frame_number=i, class_name=c,
                        confidence=0.5, x=0, y=0, w=1, h=1) for i, (c, when) in enumerate(rows))
    problems = []
    for start_s, end_s, bucket, gap in [(0, 2 * 3600, 60, 5.0), (-900, 3600, 300, 5.0),
                                        (1234, 7000, 7, 2.0), (0, 2 * 3600, 3600, 60.0)]:
        start, end = T0 + timedelta(seconds=start_s), T0 + timedelta(seconds=end_s)
        got = sighting_counts(samples("default", start, end), start, end, bucket, gap)
        want = python_sightings(rows, start, end, bucket, gap)
        if got != want:
            first = next(i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
            problems.append(f"{(start_s, end_s, bucket, gap)}: bucket {first}: "
                            f"{got[first]} != {want[first]}")
    return problems


@pytest.mark.django_db
def test_database_sightings_equal_the_python_count_on_sqlite():
    assert compare_with_python() == []


@pytest.mark.production
def test_database_sightings_equal_the_python_count_on_postgresql(tmp_path, postgres_url):
    env = site_env(tmp_path, DATABASE_URL=postgres_url)
    manage(env, "migrate", "--noinput")
    out = manage(env, "shell", "-c",
                 "import json; from django.db import connection;"
                 "from tests.unit.test_sightings import compare_with_python;"
                 "print(json.dumps([connection.vendor, compare_with_python()]))")
    vendor, problems = json.loads(out.strip().splitlines()[-1])
    assert vendor == "postgresql"
    assert problems == []


@pytest.fixture
def viewer(db) -> APIClient:
    client = APIClient()
    client.force_authenticate(make_user("cat", "viewers"))
    return client


def test_the_api_gives_sightings_next_to_the_sample_counts(viewer, settings):
    add([i * 1.0 for i in range(423)])  # the "cat 423": 7 minutes of one cat
    add([1000, 1001], class_name="dog")
    body = viewer.get(URL, {"from": T0.isoformat(), "to": (T0 + timedelta(hours=1)).isoformat(),
                            "bucket": 300}).json()
    assert body["sighting_gap_seconds"] == 5.0
    assert len(body["series"]) == 12
    first, fourth = body["series"][0], body["series"][3]
    assert first["counts"] == {"cat": 300} and first["sightings"] == {"cat": 1}
    assert body["series"][1]["counts"] == {"cat": 123} and body["series"][1]["sightings"] == {}
    assert fourth["counts"] == {"dog": 2} and fourth["sightings"] == {"dog": 1}
    # the gap never falls under 1.5 sample periods
    settings.PETCAM_DETECTION_SAMPLE_SECONDS = 10.0
    body = viewer.get(URL, {"from": T0.isoformat(), "bucket": 300,
                            "to": (T0 + timedelta(hours=1)).isoformat()}).json()
    assert body["sighting_gap_seconds"] == 15.0
