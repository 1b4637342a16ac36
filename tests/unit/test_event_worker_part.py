"""The events part of the media worker, in-process with a real hub and x264 units:
rules from the database become trackers; detections published with the frames make an
Event row at the start with the start frame's snapshot (before the start hooks run) and,
at the end, the peak's snapshot (decoded only if it is another frame) and the end; a
start snapshot slower than the hooks' wait is stored after them; a worker that joined
mid-GOP starts the event without a snapshot and makes it at the end;
a rule switched off ends its open event; the live still for the zone editor."""

from __future__ import annotations

import asyncio
import base64
import io
import time

import av
import pytest

from events import dispatch
from events.models import Event, EventRule
from events.worker_part import EventPart
from streaming.media.hub import Hub
from streaming.media.shm.layout import Detection, DetectionResult
from streaming.media.types import CameraConfig
from streaming.worker.registry import CameraContext
from tests.support.processes import until
from tests.support.recordings import camera_units

hooked: list[tuple[str, dict, bytes | None]] = []  # (kind, event, snapshot file then)


async def record_hook(kind: str, event: dict) -> None:
    """A start/end hook: what it is handed, and the snapshot file as it is at that moment."""
    jpeg = None
    if event["snapshot_url"]:
        jpeg = await asyncio.to_thread(lambda: Event.objects.get(pk=event["id"]).snapshot.read())
    hooked.append((kind, event, jpeg))


@pytest.fixture
def hooks():
    hooked.clear()
    dispatch.register_handler("test-record", f"{__name__}:record_hook")
    yield hooked
    dispatch.unregister_handler("test-record")


def width_of(jpeg: bytes) -> int:
    with av.open(io.BytesIO(jpeg)) as container:
        return next(container.decode(video=0)).width


@pytest.fixture
def part(transactional_db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PETCAM_EVENT_END_SECONDS = 0.3
    settings.PETCAM_EVENT_RULES_REFRESH_SECONDS = 0.1
    hub = Hub("default")
    context = CameraContext(CameraConfig("default", "/nowhere", "/nowhere_det"), hub,
                            lambda: (320, 240), "camera.default")
    made = EventPart(context)
    assert context.detection_listeners == [made.on_detection]
    return made


def result(au, conf: float) -> DetectionResult:
    sec = int(au.timestamp)
    return DetectionResult(au.frame_number, sec, round((au.timestamp - sec) * 1e9),
                           (Detection("cat", conf, 80, 60, 64, 48),))


async def play(part: EventPart, units, confidences) -> None:
    for au, conf in zip(units, confidences, strict=True):
        wait = au.timestamp - time.clock_gettime(time.CLOCK_MONOTONIC)
        if wait > 0:
            await asyncio.sleep(wait)
        part.hub.publish(au)
        if conf:
            part.on_detection(result(au, conf))


def play_to_the_end(part: EventPart, units, confidences, before_stop=None):
    """Start the part, play the units with these detections, wait for the event's end,
    await before_stop() if given, stop; (the ended Event, what before_stop returned)."""
    async def main():
        part.start(asyncio.get_running_loop())
        await until(lambda: part.trackers)
        await play(part, units, confidences)
        ev = await until(lambda: Event.objects.filter(ended_at__isnull=False).first())
        extra = await before_stop() if before_stop else None
        await part.stop()
        return ev, extra

    return asyncio.run(main())


def test_detections_become_an_event_with_snapshot(part, hooks):
    rule = EventRule.objects.create(camera="default", classes=["cat"], min_confidence=0.6)
    units = camera_units(n=30, gop=15, t0=time.clock_gettime(time.CLOCK_MONOTONIC) + 0.05)
    confidences = [0.0] * 3 + [0.7, 0.9, 0.8] + [0.5] * 6 + [0.0] * 18  # peak: frame 5

    ev, still = play_to_the_end(part, units, confidences,
                                before_stop=lambda: part.ops["events.still"]({}))
    assert (ev.rule_id, ev.class_name, ev.peak_confidence) == (rule.pk, "cat",
                                                               pytest.approx(0.9))
    assert ev.frame_number == units[4].frame_number
    assert ev.box == pytest.approx([0.25, 0.25, 0.2, 0.2])
    assert ev.snapshot.name == f"events/default/{ev.started_at:%Y-%m-%d}/default-event-{ev.pk}.jpg"
    with av.open(ev.snapshot.path) as container:
        assert next(container.decode(video=0)).width == 320
    with av.open(io.BytesIO(base64.b64decode(still["jpeg"]))) as container:
        assert next(container.decode(video=0)).height == 240
    status = part.status()["event_rules"]
    assert status.pop("start_decode_ms") > 0
    assert status == {"rules": 1, "started": 1, "ended": 1, "failed": 0, "open": 0,
                      "snapshot_decodes": 2, "late_start_snapshots": 0}
    # The start hook already had the event's own picture: the triggering frame's.
    (start_kind, start, start_jpeg), (end_kind, end, end_jpeg) = hooks
    assert (start_kind, end_kind) == ("started", "ended")
    assert start["snapshot_url"] == f"/api/events/{ev.pk}/snapshot/"
    assert start["frame_number"] == units[3].frame_number and start["ended_at"] is None
    assert width_of(start_jpeg) == 320
    assert end["frame_number"] == units[4].frame_number and end_jpeg != start_jpeg


def test_a_peak_on_the_start_frame_is_decoded_once(part, hooks):
    EventRule.objects.create(camera="default", classes=["cat"], min_confidence=0.6)
    units = camera_units(n=20, gop=15, t0=time.clock_gettime(time.CLOCK_MONOTONIC) + 0.05)
    confidences = [0.0] * 2 + [0.95, 0.7, 0.8] + [0.0] * 15  # peak: the start, frame 2
    ev, _ = play_to_the_end(part, units, confidences)
    assert ev.frame_number == units[2].frame_number
    assert part.status()["event_rules"]["snapshot_decodes"] == 1
    (_, start, start_jpeg), (_, end, end_jpeg) = hooks
    assert start_jpeg == end_jpeg == ev.snapshot.read()


def test_a_slow_start_snapshot_does_not_hold_the_start_hooks(part, hooks, caplog):
    part.start_wait = 0.0  # every decode is late
    EventRule.objects.create(camera="default", classes=["cat"], min_confidence=0.6)
    units = camera_units(n=20, gop=15, t0=time.clock_gettime(time.CLOCK_MONOTONIC) + 0.05)
    confidences = [0.0] * 2 + [0.95, 0.7, 0.8] + [0.0] * 15  # peak: the start, frame 2

    async def main():
        part.start(asyncio.get_running_loop())
        await until(lambda: part.trackers)
        await play(part, units, confidences)
        opened = await until(lambda: Event.objects.exclude(snapshot="").first())
        ev = await until(lambda: Event.objects.filter(ended_at__isnull=False).first())
        await part.stop()
        return opened, ev

    with caplog.at_level("INFO", logger="petcam.events"):
        opened, ev = asyncio.run(main())
    (_, start, start_jpeg), (_, end, end_jpeg) = hooks
    assert start["snapshot_url"] is None and start_jpeg is None  # the hooks did not wait
    assert "its snapshot is not decoded after 0 ms" in caplog.text
    assert "start snapshot stored after" in caplog.text
    assert opened.frame_number == units[2].frame_number  # stored on the row after the start
    assert end_jpeg == ev.snapshot.read() and width_of(end_jpeg) == 320
    status = part.status()["event_rules"]
    assert status["late_start_snapshots"] == 1 and status["snapshot_decodes"] == 1


def test_joined_mid_gop_the_start_has_no_snapshot_the_end_has(part, hooks, caplog):
    EventRule.objects.create(camera="default", classes=["cat"], min_confidence=0.6)
    units = camera_units(n=30, gop=15, t0=time.clock_gettime(time.CLOCK_MONOTONIC) + 0.05)
    units = units[5:]  # the worker came up in the middle of the first GOP
    confidences = [0.9] * 15 + [0.0] * 10  # seen before and after the next IDR

    with caplog.at_level("INFO", logger="petcam.events"):
        ev, _ = play_to_the_end(part, units, confidences)
    (_, start, start_jpeg), (_, end, end_jpeg) = hooks
    assert start["snapshot_url"] is None and start_jpeg is None
    assert "without a snapshot: no decodable GOP kept" in caplog.text
    assert end["snapshot_url"] and width_of(end_jpeg) == 320
    assert ev.frame_number >= units[10].frame_number  # a frame of the decodable GOP
    assert part.status()["event_rules"]["snapshot_decodes"] == 1


def test_a_rule_switched_off_ends_its_open_event(part):
    rule = EventRule.objects.create(camera="default", classes=["cat"])
    units = camera_units(n=8, gop=15, t0=time.clock_gettime(time.CLOCK_MONOTONIC) + 0.05)

    async def main():
        part.start(asyncio.get_running_loop())
        await until(lambda: part.trackers)
        await play(part, units, [0.9] * 8)
        await until(lambda: Event.objects.exists())
        assert part.status()["event_rules"]["open"] == 1
        await asyncio.to_thread(EventRule.objects.filter(pk=rule.pk).update, enabled=False)
        ev = await until(lambda: Event.objects.filter(ended_at__isnull=False).first())
        await part.stop()
        return ev

    ev = asyncio.run(main())
    assert ev.snapshot and part.trackers == {}


def test_still_without_a_picture(part):
    from streaming.media.types import MediaError

    with pytest.raises(MediaError) as caught:
        asyncio.run(part.ops["events.still"]({}))
    assert caught.value.code == "no_picture"


def test_detections_during_the_stop_start_no_new_event(part, hooks):
    """The stop ends the open event; a detection that still arrives while the worker stops
    (the camera goes on) must not open a second one that nobody ends."""
    EventRule.objects.create(camera="default", classes=["cat"], min_confidence=0.6)
    units = camera_units(n=20, gop=15, t0=time.clock_gettime(time.CLOCK_MONOTONIC) + 0.05)

    async def main():
        part.start(asyncio.get_running_loop())
        await until(lambda: part.trackers)
        await play(part, units[:6], [0.0, 0.0, 0.9, 0.9, 0.9, 0.9])
        await until(lambda: Event.objects.exists())
        stopping = asyncio.ensure_future(part.stop())
        await asyncio.sleep(0)  # the stop has begun: the open event is ending
        for au in units[6:]:
            part.hub.publish(au)
            part.on_detection(result(au, 0.9))
            await asyncio.sleep(0.01)
        await stopping

    asyncio.run(main())
    events = list(Event.objects.all())
    assert len(events) == 1 and events[0].ended_at is not None, events
    assert [kind for kind, _, _ in hooks] == ["started", "ended"]
