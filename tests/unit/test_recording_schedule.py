"""Recording schedules: the weekly window logic, and the runner with a real recorder.

The runner test uses real H.264 (libx264) through a real hub into real MP4 files: a
window open now, segments of a fraction of a second (PETCAM_SCHEDULE_SEGMENT_SECONDS),
then the schedule disabled. The segments must be linked, each decodable from its first
frame, and together hold every frame exactly once with no gap in camera time.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, time

import pytest
from django.core.exceptions import ValidationError

from recordings.models import Recording, RecordingSchedule
from recordings.recorder import CameraRecorder
from recordings.scheduler import ScheduleRunner, Window, open_window
from streaming.media.hub import Hub
from tests.support.h264_samples import decode
from tests.support.recordings import FPS, camera_units, decode_file, ffprobe, same_pictures

# --- the window -------------------------------------------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(("when", "is_open"), [
    ("2026-12-07T08:00:00+00:00", True),   # Monday, opening minute
    ("2026-12-07T07:59:59+00:00", False),
    ("2026-12-07T17:59:00+00:00", True),
    ("2026-12-07T18:00:00+00:00", False),  # end is exclusive
    ("2026-12-05T12:00:00+00:00", False),  # Saturday
])
def test_weekday_window(when, is_open):
    w = Window(WEEKDAYS, "08:00", "18:00", "UTC", 10)
    assert w.is_open(at(when)) is is_open


@pytest.mark.parametrize(("when", "is_open"), [
    ("2026-12-04T22:30:00+00:00", True),   # Friday night
    ("2026-12-05T05:59:00+00:00", True),   # Saturday morning: Friday's window
    ("2026-12-05T06:00:00+00:00", False),
    ("2026-12-05T22:30:00+00:00", False),  # Saturday night: not listed
    ("2026-12-06T03:00:00+00:00", False),  # Sunday morning: Saturday's, not listed
])
def test_overnight_window_belongs_to_the_day_it_starts(when, is_open):
    w = Window(("fri",), "22:00", "06:00", "UTC", 10)
    assert w.is_open(at(when)) is is_open


def test_window_is_read_in_its_time_zone():
    w = Window(WEEKDAYS, "08:00", "18:00", "Asia/Tokyo", 10)
    # 23:30 UTC Sunday is 08:30 Monday in Tokyo; 10:00 UTC Monday is 19:00 there.
    assert w.is_open(at("2026-12-06T23:30:00+00:00"))
    assert not w.is_open(at("2026-12-07T10:00:00+00:00"))
    assert open_window([Window(("sat",), "00:00", "01:00", "UTC", 1), w],
                       at("2026-12-06T23:30:00+00:00")) is w


def test_start_equal_to_end_is_whole_days_without_a_break_at_midnight():
    every_day = Window((*WEEKDAYS, "sat", "sun"), "00:00", "00:00", "UTC", 10)
    for moment in ("2026-12-06T23:59:59+00:00", "2026-12-07T00:00:00+00:00",
                   "2026-12-07T12:00:00+00:00"):
        assert every_day.is_open(at(moment)), moment
    weekdays = Window(WEEKDAYS, "00:00", "00:00", "UTC", 10)
    assert weekdays.is_open(at("2026-12-04T23:59:00+00:00"))  # Friday night
    assert not weekdays.is_open(at("2026-12-05T00:00:00+00:00"))  # Saturday


@pytest.mark.django_db
@pytest.mark.parametrize(("fields", "bad"), [
    ({"days": ["funday"]}, "days"), ({"days": []}, "days"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"segment_minutes": 61}, "segment_minutes"),
])
def test_bad_schedules_are_refused_with_a_reason(fields, bad):
    row = RecordingSchedule(camera="default", **{
        "days": list(WEEKDAYS), "start": time(8), "end": time(18), **fields})
    with pytest.raises(ValidationError) as refused:
        row.full_clean()
    assert bad in refused.value.message_dict


# --- the runner ---------------------------------------------------------------------------------


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PETCAM_RECORDING_CHECKPOINT_SECONDS = 0.2
    settings.PETCAM_SCHEDULE_SEGMENT_SECONDS = 0.3
    return settings.MEDIA_ROOT


@pytest.mark.django_db(transaction=True)
def test_an_open_window_records_in_linked_segments_without_a_gap_and_stops_when_disabled(
        media_root):
    units = camera_units(n=150, gop=10)
    reference, _ = decode([u.data for u in units])
    schedule = RecordingSchedule.objects.create(
        camera="default", days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        start=time(0, 0), end=time(23, 59), timezone="UTC", segment_minutes=1)
    always = at("2026-12-07T12:00:00+00:00")

    async def run():
        hub = Hub("default")
        recorder = CameraRecorder("default", hub)
        runner = ScheduleRunner(recorder)
        hub.publish(units[0])  # the cached GOP starts the first file
        await runner.tick(always)
        assert runner.status() == {"window_open": True, "recording": True}
        # Bursts of 2.5 GOPs: when a cut comes, the writer still has later IDRs queued,
        # so the next file must continue from the queue, not from the hub's latest GOP.
        for start in range(1, len(units), 25):
            for au in units[start:start + 25]:
                hub.publish(au)
            await asyncio.sleep(0.35)
            await runner.tick(always)  # cut when the segment length is reached
        await asyncio.sleep(0.3)  # the writer catches up
        await asyncio.to_thread(RecordingSchedule.objects.filter(pk=schedule.pk).update,
                                enabled=False)
        await runner.tick(always)
        assert recorder.active is None and not runner.status()["recording"]
        assert not hub.sinks  # no handed-over queue left subscribed

    asyncio.run(run())
    rows = list(Recording.objects.order_by("id"))
    assert len(rows) >= 2, "no segment was cut"
    assert all(r.trigger == "schedule" and r.status == "complete" for r in rows)
    assert [r.previous_segment_id for r in rows] == [None, *[r.pk for r in rows[:-1]]]
    assert "window closed" in rows[-1].failure_reason
    assert sum(r.frame_count for r in rows) == len(units)  # no frame lost or doubled
    pictures = []
    for row in rows:
        frames, errors, packets = decode_file(media_root / row.file.name)
        assert errors == [] and packets[0].is_keyframe and len(frames) == row.frame_count
        assert ffprobe(media_root / row.file.name)["nb_read_frames"] == str(row.frame_count)
        pictures += frames
        row.span = float(max(p.pts * p.time_base for p in packets)) + 1 / FPS
    assert same_pictures(pictures, reference)
    # Camera time: each file begins where the previous one's last frame ends.
    for first, second in zip(rows, rows[1:], strict=False):
        gap = (second.started_at - first.started_at).total_seconds() - first.span
        assert abs(gap) < 0.002, gap


@pytest.mark.django_db
def test_the_playback_page_names_the_segment_that_continues_a_recording(admin_client):
    started = at("2026-12-07T12:00:00+00:00")
    first = Recording.objects.create(camera="default", file="recordings/default/a.mp4",
                                     trigger="schedule", started_at=started)
    second = Recording.objects.create(camera="default", file="recordings/default/b.mp4",
                                      trigger="schedule", started_at=started,
                                      previous_segment=first)
    assert b'data-next="%d"' % second.pk in admin_client.get(f"/recordings/{first.pk}/").content
    assert b'data-next=""' in admin_client.get(f"/recordings/{second.pk}/").content
