"""A recording's detection track: every detector result inside it, on the file's own clock.

The track module alone (what it keeps, how it reads back), then the real recorder with
a real hub and real H.264: detector results fed the way the detection feed does, and
what the playback API serves from them (no detections, a detector that stops, a
recording started mid-GOP whose first frames predate the click).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from rest_framework.test import APIClient

from recordings.detection_track import DetectionTrack, detector_interval, read_track
from recordings.models import Recording
from recordings.recorder import CameraRecorder
from recordings.sidecars import DETECTIONS, sidecar_path
from streaming.media.hub import Hub
from streaming.media.shm.layout import Detection, DetectionResult
from tests.support.recordings import FPS, camera_units
from tests.support.roles import make_user


def result(frame: int, ts: float, boxes: int = 1) -> DetectionResult:
    sec = int(ts)
    return DetectionResult(frame, sec, int(round((ts - sec) * 1e9)), tuple(
        Detection("cat", 0.9, 10 + frame, 20, 30 + i, 40) for i in range(boxes)))


# --- the track alone --------------------------------------------------------------------------


def test_the_track_keeps_results_on_the_first_frames_clock_and_ends_sightings_once(tmp_path):
    first: list[float | None] = [None]
    track = DetectionTrack(tmp_path / "x.detections.jsonl", lambda: first[0])
    t0 = 1000.0
    track.add(result(1, t0 - 0.5))  # before the first frame: not inside the recording
    track.add(result(10, t0 + 0.1))
    track.add(result(10, t0 + 0.1))  # the same record read twice: one line
    track.add(result(13, t0 + 0.2, boxes=0))  # the pet left: one empty line says so
    track.add(result(16, t0 + 0.3, boxes=0))  # still nothing: no line
    track.add(result(19, t0 + 0.4, boxes=2))
    assert track.flush() == 0 and not track.path.exists()  # no first frame yet: waits
    first[0] = t0
    assert track.flush() == 3 and track.dropped == 1
    track.add(result(22, t0 + 0.5))
    assert track.flush() == 1
    with open(track.path, "a") as f:
        f.write('{"t": 0.6, "f": 25, "d": [["cat", 0.9, 1')  # a crash mid-line
    entries = read_track(track.path)
    assert [(e.time, e.frame_number, len(e.detections)) for e in entries] == [
        (0.1, 10, 1), (0.2, 13, 0), (0.4, 19, 2), (0.5, 22, 1)]
    assert entries[0].to_json()["detections"] == [
        {"class_name": "cat", "confidence": 0.9, "bbox": {"x": 20, "y": 20, "w": 30, "h": 40}}]
    assert detector_interval(entries) == pytest.approx(0.1)
    assert detector_interval([]) == 0.1  # nothing to measure: a default, not a crash


# --- the recorder writes it; the playback API reads it ----------------------------------------


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PETCAM_RECORDING_CHECKPOINT_SECONDS = 0.2
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings.MEDIA_ROOT


def record(units, detect_every: int, *, detector_stops_after: int | None = None,
           start_at: int = 20) -> dict:
    """Publish units[:start_at], start, publish the rest, stop; a detector result (the
    pet's box moving one pixel a frame) every `detect_every` frames, from the first unit
    on, as the detection feed calls the recorder."""

    async def run():
        hub = Hub("default")
        recorder = CameraRecorder("default", hub)

        async def publish(batch):
            for au in batch:
                hub.publish(au)
                n = au.frame_number
                stopped = detector_stops_after is not None and n > detector_stops_after
                if detect_every and n % detect_every == 0 and not stopped:
                    recorder.on_detection(result(n, au.timestamp))
                await asyncio.sleep(0.002)

        await publish(units[:start_at])
        await recorder.start(format="mp4")
        await publish(units[start_at:])
        return await recorder.stop()

    return asyncio.run(run())


def api_client() -> APIClient:
    client = APIClient()
    client.force_authenticate(make_user("viewer", "viewers"))
    return client


@pytest.mark.django_db(transaction=True)
def test_every_result_inside_the_recording_is_kept_and_served_at_its_frames_time(media_root):
    units = camera_units(n=90, gop=15)  # 3 s at 30 fps; the click at frame 21, GOP from 16
    row = record(units, detect_every=3)
    rec = Recording.objects.get(pk=row["id"])
    first = units[15]  # the cached GOP's IDR: the file's time zero
    entries = read_track(sidecar_path(rec.file.name, DETECTIONS))
    # Every result from the first frame on, including those from before the click.
    assert [e.frame_number for e in entries] == list(range(18, 91, 3))
    for e in entries:
        au = units[e.frame_number - 1]
        assert e.time == pytest.approx(au.timestamp - first.timestamp, abs=1e-4)
        assert e.detections[0][2] == 10 + e.frame_number  # its own box, not a neighbour's

    client = api_client()
    body = client.get(f"/api/recordings/{rec.pk}/detections/").json()
    assert body["source"] == "track" and body["interval"] == pytest.approx(3 / FPS, abs=1e-3)
    assert [r["frame_number"] for r in body["results"]] == list(range(18, 91, 3))
    t = entries[5].time + 0.01
    near = client.get(f"/api/recordings/{rec.pk}/detections/?at={t}").json()
    assert near["result"]["frame_number"] == entries[5].frame_number
    timeline = client.get(f"/api/recordings/{rec.pk}/timeline/").json()
    assert timeline["source"] == "track" and len(timeline["classes"]) == 1
    assert timeline["classes"][0]["segments"] == [
        [entries[0].time, pytest.approx(rec.duration, abs=1e-3)]]


@pytest.mark.django_db(transaction=True)
def test_a_recording_with_no_detections_has_no_track_and_no_boxes(media_root):
    row = record(camera_units(n=45, gop=15), detect_every=0)
    rec = Recording.objects.get(pk=row["id"])
    assert rec.status == "complete"
    assert not sidecar_path(rec.file.name, DETECTIONS).exists()
    client = api_client()
    body = client.get(f"/api/recordings/{rec.pk}/detections/").json()
    assert body["source"] == "history" and body["results"] == []
    assert client.get(f"/api/recordings/{rec.pk}/timeline/").json()["classes"] == []


@pytest.mark.django_db(transaction=True)
def test_a_detector_that_stops_leaves_no_boxes_after_its_last_result(media_root):
    units = camera_units(n=90, gop=15)
    row = record(units, detect_every=3, detector_stops_after=45)
    rec = Recording.objects.get(pk=row["id"])
    entries = read_track(sidecar_path(rec.file.name, DETECTIONS))
    assert entries[-1].frame_number == 45
    last = entries[-1].time
    client = api_client()
    body = client.get(f"/api/recordings/{rec.pk}/detections/").json()
    interval = body["interval"]
    assert interval == pytest.approx(3 / FPS, abs=1e-3)
    later = client.get(f"/api/recordings/{rec.pk}/detections/?at={last + 2 * interval}").json()
    assert later["result"] is None  # one interval after the last result: nothing to draw
    timeline = client.get(f"/api/recordings/{rec.pk}/timeline/").json()
    [segment] = timeline["classes"][0]["segments"]
    assert segment[1] == pytest.approx(last + interval, abs=1e-3)


@pytest.mark.django_db(transaction=True)
def test_the_track_is_deleted_with_its_recording(media_root):
    row = record(camera_units(n=45, gop=15), detect_every=3)
    rec = Recording.objects.get(pk=row["id"])
    track = sidecar_path(rec.file.name, DETECTIONS)
    assert track.exists() and json.loads(track.read_text().splitlines()[0])["f"] > 0
    client = APIClient()
    client.force_authenticate(make_user("operator", "operators"))
    assert client.delete(f"/api/recordings/{rec.pk}/").status_code == 204
    assert not track.exists()
