"""Event recording with the real hub, recorder, pre-roll ring and x264 access units.

Units are published at their camera timestamps (CLOCK_MONOTONIC, real time) and
detection results are handed to the trigger as DetectionFeed does, on the loop.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from recordings.event_trigger import EventSettings, EventTrigger
from recordings.media.preroll import PrerollBuffer
from recordings.models import Recording
from recordings.recorder import CameraRecorder
from streaming.media.hub import Hub
from streaming.media.shm.layout import Detection, DetectionResult
from tests.support.h264_samples import decode
from tests.support.recordings import FPS, camera_units, decode_file, same_pictures

PREROLL, POSTROLL = 1.0, 1.0


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def result(au, *dets: tuple[str, float]) -> DetectionResult:
    sec = int(au.timestamp)
    return DetectionResult(au.frame_number, sec, round((au.timestamp - sec) * 1e9),
                           tuple(Detection(name, conf, 10, 10, 50, 50) for name, conf in dets))


async def play(hub: Hub, units, trigger: EventTrigger, detections: dict) -> None:
    """Publish each unit at its camera time; after unit i, the detection result for it."""
    for i, au in enumerate(units):
        wait = au.timestamp - time.clock_gettime(time.CLOCK_MONOTONIC)
        if wait > 0:
            await asyncio.sleep(wait)
        hub.publish(au)
        if i in detections:
            trigger.on_detection(result(au, *detections[i]))


def setup(classes=("cat",)):
    hub = Hub("default")
    recorder = CameraRecorder("default", hub)
    preroll = PrerollBuffer(PREROLL)
    preroll.attach(hub)
    trigger = EventTrigger(recorder, preroll,
                           EventSettings(frozenset(classes), 0.5, PREROLL, POSTROLL))
    return hub, recorder, trigger


def realtime_units(n: int, gop: int = 15):
    return camera_units(n=n, gop=gop, t0=time.clock_gettime(time.CLOCK_MONOTONIC) + 0.05)


@pytest.mark.django_db(transaction=True)
def test_a_chosen_class_starts_an_event_recording_with_preroll_that_stops_after_postroll(
        media_root):
    units = realtime_units(115)
    event, last = 50, 60  # cat at frames 50 and 60; a dog between; a weak cat after
    detections = {event: [("cat", 0.9)], 55: [("dog", 0.8), ("cat", 0.2)], last: [("cat", 0.7)],
                  75: [("cat", 0.3)]}

    async def run():
        hub, recorder, trigger = setup()
        await play(hub, units, trigger, detections)
        for _ in range(100):
            if recorder.active is None and recorder.last:
                break
            await asyncio.sleep(0.05)
        await trigger.stop()
        return recorder.last, trigger

    row_json, trigger = asyncio.run(run())
    assert trigger.events == 1
    rec = Recording.objects.get()
    assert rec.pk == row_json["id"]
    assert (rec.trigger, rec.status) == ("event", "complete")
    assert rec.detection_classes == ["cat", "dog"]  # the weak cats added nothing
    assert "event ended" in rec.failure_reason

    frames, errors, packets = decode_file(media_root / rec.file.name)
    assert errors == [] and packets[0].is_keyframe and frames[0].key_frame
    reference, _ = decode([u.data for u in units])
    first = next(i for i, ref in enumerate(reference) if same_pictures([frames[0]], [ref]))
    assert units[first].is_idr
    recorded = units[first:first + len(packets)]
    assert same_pictures(frames, reference[first:first + len(packets)])
    # Camera timestamps kept to the 90 kHz tick, pre-roll included.
    t0 = units[first].timestamp
    assert [round(p.pts * p.time_base * 90_000) for p in packets] == \
        [round((u.timestamp - t0) * 90_000) for u in recorded]
    # At least the pre-roll before the event's frame, and not more than one GOP extra.
    before = units[event].timestamp - t0
    assert PREROLL <= before < PREROLL + 15 / FPS + 1e-6
    # Ends POSTROLL s after the last matching detection (frame 60), not after the weak one.
    after = recorded[-1].timestamp - units[last].timestamp
    assert POSTROLL - 1 / FPS - 1e-6 <= after <= POSTROLL + 0.3, after
    assert rec.frame_count == len(packets)


@pytest.mark.django_db(transaction=True)
def test_weak_or_unchosen_classes_do_not_trigger(media_root):
    units = realtime_units(30)
    detections = {5: [("cat", 0.49)], 10: [("dog", 0.99)], 20: [("person", 0.9)]}

    async def run():
        hub, recorder, trigger = setup()
        await play(hub, units, trigger, detections)
        await asyncio.sleep(0.1)
        assert recorder.active is None
        await trigger.stop()
        return trigger

    assert asyncio.run(run()).events == 0
    assert not Recording.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_manual_recording_is_not_interrupted_and_gets_the_classes(media_root):
    units = realtime_units(75)
    detections = {10: [("cat", 0.9)], 12: [("dog", 0.6), ("bird", 0.1)]}

    async def run():
        hub, recorder, trigger = setup()
        await play(hub, units[:5], trigger, {})
        manual = await recorder.start(name="manual nap")
        await play(hub, units[5:], trigger, {i - 5: d for i, d in detections.items()})
        # More than POSTROLL after the cat: still the same manual recording.
        assert recorder.active is not None and recorder.active.recording_id == manual["id"]
        assert recorder.active.trigger == "manual"
        stopped = await recorder.stop()
        await trigger.stop()
        return stopped, trigger

    stopped, trigger = asyncio.run(run())
    assert trigger.events == 0
    rec = Recording.objects.get()
    assert (rec.trigger, rec.status, rec.name) == ("manual", "complete", "manual nap")
    assert rec.detection_classes == ["cat", "dog"] == stopped["detection_classes"]


def test_preroll_buffer_is_bounded_and_starts_at_an_idr():
    units = camera_units(n=120, gop=15)
    buf = PrerollBuffer(1.0, max_bytes=10**9)
    for au in units[:7]:  # no IDR yet is not an issue: the first unit is one
        buf.offer(au)
    for au in units[7:]:
        buf.offer(au)
    snap = buf.snapshot()
    assert snap[0].is_idr and snap[-1] is units[-1]
    assert 1.0 <= snap[-1].timestamp - snap[0].timestamp < 1.0 + 15 / FPS
    assert buf.span < 1.0 + 2 * 15 / FPS
    small = PrerollBuffer(10.0, max_bytes=sum(len(u.data) for u in units[:40]))
    for au in units:
        small.offer(au)
    assert small.nbytes <= small.max_bytes and small.snapshot()[0].is_idr
    tiny = PrerollBuffer(10.0, max_bytes=100)  # one GOP alone is above the bound
    for au in units[:20]:
        tiny.offer(au)
    assert tiny.snapshot() == [] and tiny.overflows >= 1
