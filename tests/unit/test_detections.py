"""Detections: the segment reader and the history API (live results over the WebSocket:
tests/integration/test_detections_live.py)."""

from __future__ import annotations

import asyncio
import json
import math
import struct
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from detections.feed import DetectionFeed
from detections.models import DetectionSample
from streaming.media.shm.detections_reader import DetectionReader, check_result
from streaming.media.shm.layout import DETECTIONS_HEADER, Detection, DetectionResult
from streaming.media.shm.writer import DetectionWriter
from tests.support.roles import make_user


def result(*dets: Detection, frame: int = 7) -> DetectionResult:
    return DetectionResult(frame, 100, 500_000_000, dets)


CAT = Detection("cat", 0.5, 10, 20, 100, 50)  # float32-exact confidence


# --- the segment reader ---------------------------------------------------------------

def test_reader_yields_each_new_version_once(shm_name):
    writer = DetectionWriter(shm_name)
    reader = DetectionReader(shm_name)
    writer.write(result(CAT, frame=1))  # before attach: not news
    assert reader.poll(640, 480) is None
    assert reader.poll(640, 480) is None
    writer.write(result(CAT, Detection("dog", 0.5, 0, 0, 640, 480), frame=2))
    got = reader.poll(640, 480)
    assert got.frame_number == 2 and got.timestamp == pytest.approx(100.5)
    assert [d.class_name for d in got.detections] == ["cat", "dog"]
    assert reader.poll(640, 480) is None  # same version
    writer.write(result(frame=3))  # nothing detected is a result too
    assert reader.poll(640, 480).detections == ()
    assert reader.stats.results == 2
    writer.close()
    reader.close()


@pytest.mark.parametrize(("det", "reason"), [
    (Detection("cat", math.nan, 0, 0, 1, 1), "bad_confidence"),
    (Detection("cat", 1.5, 0, 0, 1, 1), "bad_confidence"),
    (Detection("cat", -0.1, 0, 0, 1, 1), "bad_confidence"),
    (Detection("cat", 0.9, -5, 0, 10, 10), "box_outside_frame"),
    (Detection("cat", 0.9, 600, 0, 100, 10), "box_outside_frame"),
    (Detection("cat", 0.9, 0, 470, 10, 20), "box_outside_frame"),
    (Detection("cat", 0.9, 0, 0, 0, 10), "box_outside_frame"),
    (Detection("", 0.9, 0, 0, 10, 10), "bad_class_name"),
    (Detection("c\x01t", 0.9, 0, 0, 10, 10), "bad_class_name"),
])
def test_impossible_records_are_dropped_and_counted(shm_name, det, reason):
    assert check_result(result(det), 640, 480) == reason
    writer = DetectionWriter(shm_name)
    reader = DetectionReader(shm_name)
    reader.poll(640, 480)
    writer.write(result(CAT, det))
    assert reader.poll(640, 480) is None
    writer.write(result(CAT))
    assert reader.poll(640, 480).detections == (CAT,)
    assert reader.stats.dropped == {reason: 1}
    writer.close()
    reader.close()


@pytest.mark.parametrize(("count", "nsec", "reason"), [
    (11, 0, "bad_count"), (-1, 0, "bad_count"), (2**31 - 1, 0, "bad_count"),
    (0, 1_000_000_000, "bad_timestamp"), (0, -1, "bad_timestamp"),
])
def test_garbage_headers_are_dropped(shm_name, count, nsec, reason):
    writer = DetectionWriter(shm_name)
    reader = DetectionReader(shm_name)
    reader.poll()
    body = bytearray(548)
    DETECTIONS_HEADER.pack_into(body, 0, 5, 1, nsec, count)
    writer.write_raw(bytes(body))
    assert reader.poll() is None
    assert reader.stats.dropped == {reason: 1}
    writer.close()
    reader.close()


def test_without_a_frame_size_only_the_sign_of_boxes_is_checked():
    assert check_result(result(Detection("cat", 0.9, 5000, 5000, 10, 10)), None, None) is None


def test_missing_then_recreated_segment(shm_name):
    reader = DetectionReader(shm_name, identity_check_interval=0.0)
    assert reader.poll() is None and reader.stats.state == "waiting"
    writer = DetectionWriter(shm_name)
    reader._next_attempt = 0
    assert reader.poll() is None and reader.stats.state == "attached"
    writer.write(result(CAT))
    assert reader.poll() is not None
    writer.close()
    assert reader.poll() is None and reader.stats.state == "waiting"
    writer = DetectionWriter(shm_name)
    assert reader.poll() is None  # re-attached: only results written after this count
    writer.write(result(CAT, frame=9))
    assert reader.poll().frame_number == 9
    assert reader.stats.attaches == 2
    writer.close()
    reader.close()


def feed_polls_per_result(shm_name: str, *, pace: bool, results: int = 20,
                          rate: float = 10.0) -> tuple[list[int], float, dict]:
    """A real writer at `rate` results/s (camera stamps = now) and a feed's poll thread:
    the frame numbers the feed published, reader polls per result, the reader's drops."""
    writer = DetectionWriter(shm_name)
    feed = DetectionFeed("default", shm_name, "unused", lambda: (640, 480), pace=pace)
    loop = asyncio.new_event_loop()
    looper = threading.Thread(target=loop.run_forever, daemon=True)
    looper.start()
    got: list[int] = []
    feed._loop = loop
    feed._on_result = lambda res, w, h, *_: got.append(res.frame_number)  # no channel layer here
    polls = 0
    poll = feed.reader.poll

    def counting_poll(*args):
        nonlocal polls
        polls += 1
        return poll(*args)

    feed.reader.poll = counting_poll
    thread = threading.Thread(target=feed._poll_loop, daemon=True)
    thread.start()
    try:
        while not feed.reader.attached:
            time.sleep(0.01)
        start = polls
        for frame in range(1, results + 1):
            time.sleep(1 / rate)
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            writer.write(DetectionResult(frame, now // 1_000_000_000, now % 1_000_000_000,
                                         (CAT,)))
        time.sleep(2 / rate)
        per_result = (polls - start) / results
    finally:
        feed._stop.set()
        thread.join(2)
        feed.reader.close()
        writer.close()
        loop.call_soon_threadsafe(loop.stop)
        looper.join(2)
        loop.close()
    return got, per_result, dict(feed.reader.stats.dropped)


def test_paced_feed_polls_around_each_result_and_misses_none(shm_name):
    got, per_result, dropped = feed_polls_per_result(shm_name, pace=True)
    assert got == list(range(1, 21)), dropped
    assert dropped.get("overwritten", 0) == 0
    # a fixed 2 ms poll makes ~45 polls per result at 10/s (the test below); paced: a few
    assert per_result < 15


def test_the_poll_bound_catches_a_fixed_poll(shm_name):
    got, per_result, _ = feed_polls_per_result(shm_name, pace=False)
    assert got == list(range(1, 21))
    assert per_result >= 15


def test_with_no_detector_writing_the_feed_backs_off(shm_name):
    """A segment nobody writes (detector off): the poll thread backs off to
    quiet_poll_max; without it, it polls every idle_poll (10 ms) forever."""
    writer = DetectionWriter(shm_name)
    feed = DetectionFeed("default", shm_name, "unused", lambda: (640, 480))
    polls: list[int] = []
    poll = feed.reader.poll
    feed.reader.poll = lambda *a: polls.append(1) or poll(*a)
    sleeps: list[float] = []
    real_sleep = time.sleep

    def counting_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) >= 12:
            feed._stop.set()
        real_sleep(0)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("detections.feed.time.sleep", counting_sleep)
        feed._poll_loop()
    feed.reader.close()
    writer.close()
    assert sleeps[0] == feed.idle_poll  # a detector starting now is seen within 10 ms
    assert sleeps == sorted(sleeps) and sleeps[-1] == feed.quiet_poll_max
    assert len(polls) == len(sleeps)


# --- the history API ----------------------------------------------------------------

@pytest.fixture
def api(db):
    client = APIClient()
    client.force_authenticate(make_user("viewer", "viewers"))  # watch and see detections
    return client


def add_samples(start: datetime) -> None:
    rows = []
    for second in range(180):  # three minutes: a cat every second, a dog in the second one
        when = start + timedelta(seconds=second)
        rows.append(DetectionSample(camera="default", time=when, frame_number=second,
                                    class_name="cat", confidence=0.9, x=1, y=2, w=3, h=4))
        if 60 <= second < 120:
            rows.append(DetectionSample(camera="default", time=when, frame_number=second,
                                        class_name="dog", confidence=0.6, x=5, y=6, w=7, h=8))
    rows.append(DetectionSample(camera="other", time=start, frame_number=1, class_name="cat",
                                confidence=0.9, x=0, y=0, w=1, h=1))
    DetectionSample.objects.bulk_create(rows)


START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_history_range_paging_and_class_filter(api):
    add_samples(START)
    url = "/api/cameras/default/detections/"
    body = api.get(url, {"from": START.isoformat(), "to": (START + timedelta(minutes=3))
                         .isoformat(), "limit": 10}).json()
    assert body["count"] == 240 and len(body["results"]) == 10 and body["next"]
    first = body["results"][0]
    assert first == {"time": "2026-05-01T12:00:00+00:00", "frame_number": 0, "class_name": "cat",
                     "confidence": 0.9, "bbox": {"x": 1, "y": 2, "w": 3, "h": 4}}
    dogs = api.get(url, {"from": START.timestamp(), "to": START.timestamp() + 3600,
                         "class": "dog"}).json()
    assert dogs["count"] == 60


def test_history_counts_per_class_per_bucket(api):
    add_samples(START)
    body = api.get("/api/cameras/default/detections/", {
        "from": "2026-05-01T12:00:00Z", "to": "2026-05-01T12:04:00Z", "bucket": 60}).json()
    assert body["bucket_seconds"] == 60
    assert body["series"] == [
        {"start": "2026-05-01T12:00:00+00:00", "counts": {"cat": 60}, "sightings": {"cat": 1}},
        {"start": "2026-05-01T12:01:00+00:00", "counts": {"cat": 60, "dog": 60},
         "sightings": {"dog": 1}},  # the cat of 12:00 is still in view: the same sighting
        {"start": "2026-05-01T12:02:00+00:00", "counts": {"cat": 60}, "sightings": {}},
        {"start": "2026-05-01T12:03:00+00:00", "counts": {}, "sightings": {}},
    ]


def test_history_csv_export(api):
    add_samples(START)
    response = api.get("/api/cameras/default/detections/", {
        "from": "2026-05-01T12:01:00", "to": "2026-05-01T12:01:01", "format": "csv"})
    assert response["Content-Type"] == "text/csv"
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines == ["time,camera,frame_number,class_name,confidence,x,y,w,h",
                     "2026-05-01T12:01:00+00:00,default,60,cat,0.9000,1,2,3,4",
                     "2026-05-01T12:01:00+00:00,default,60,dog,0.6000,5,6,7,8"]


@pytest.mark.parametrize(("params", "status", "error"), [
    ({"from": "yesterday"}, 400, "invalid_time"),
    ({"from": "2026-05-02T00:00:00", "to": "2026-05-01T00:00:00"}, 400, "invalid_range"),
    ({"from": "2026-01-01T00:00:00", "to": "2026-05-01T00:00:00"}, 400, "range_too_long"),
    ({"bucket": "0"}, 400, "invalid_bucket"),
    ({"bucket": "sixty"}, 400, "invalid_bucket"),
    ({"bucket": "999999"}, 400, "invalid_bucket"),
])
def test_history_bad_parameters(api, params, status, error):
    response = api.get("/api/cameras/default/detections/", params)
    assert response.status_code == status and response.json()["error"] == error


def test_history_unknown_camera_and_anonymous(api):
    assert api.get("/api/cameras/attic/detections/").json()["error"] == "unknown_camera"
    response = APIClient().get("/api/cameras/default/detections/")
    assert response.status_code == 403 and response.json()["error"] == "not_authenticated"


def test_purge_keeps_recent_history(db):
    from detections.history import purge_older_than

    now = datetime.now(UTC)
    DetectionSample.objects.bulk_create([
        DetectionSample(camera="default", time=now - timedelta(days=d), frame_number=d,
                        class_name="cat", confidence=0.9, x=0, y=0, w=1, h=1)
        for d in (0, 1, 29, 31, 90)])
    assert purge_older_than(30) == 2
    assert sorted(DetectionSample.objects.values_list("frame_number", flat=True)) == [0, 1, 29]


def test_struct_layout_used_for_garbage_matches():
    assert struct.calcsize("<Qqqi") == DETECTIONS_HEADER.size == 28


def test_results_queued_while_the_loop_was_busy_go_to_the_group_in_one_message(shm_name):
    """On a busy loop one group_send per result fell behind; what queued up goes together,
    in order, each result encoded once."""
    from channels.layers import get_channel_layer

    async def run() -> list[dict]:
        layer = get_channel_layer()
        member = await layer.new_channel()
        await layer.group_add("petcam.camera.batch", member)
        feed = DetectionFeed("default", shm_name, "petcam.camera.batch", lambda: (640, 480))
        for frame in (1, 2, 3):  # before the sender first runs: all three are queued
            feed._on_result(result(CAT, frame=frame), 640, 480)
        sender = asyncio.create_task(feed._send_forever())
        try:
            first = await asyncio.wait_for(layer.receive(member), 10)
            feed._on_result(result(CAT, frame=4), 640, 480)
            second = await asyncio.wait_for(layer.receive(member), 10)
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            await layer.group_discard("petcam.camera.batch", member)
        return [first, second]

    first, second = asyncio.run(run())
    assert [json.loads(t)["frame_number"] for t in first["texts"]] == [1, 2, 3]
    assert [json.loads(t)["frame_number"] for t in second["texts"]] == [4]
    assert json.loads(first["texts"][0])["detections"][0]["class_name"] == "cat"
