"""The recorder with real H.264 (libx264), a real hub, real files, ffprobe and PyAV decoding.

In-process: access units from `tests.support.h264_samples.encode_frames` go through the
H.264 processor and the hub exactly as the camera's do; the recorder writes
them in its writer thread; ffprobe counts the frames and PyAV decodes them
(with FFmpeg's own error log captured). Disk full is a real size-capped tmpfs.
"""

from __future__ import annotations

import asyncio
import errno
import shutil
import time
import uuid

import pytest
from django.core.exceptions import ValidationError

from recordings.media.sink import RecorderSink
from recordings.media.writers import (
    H264FileWriter,
    Mp4FileWriter,
    make_writer,
    probe_file,
    repair_mp4,
)
from recordings.models import Recording, clean_recording_name, recording_relpath
from recordings.recorder import CameraRecorder
from streaming.media.h264.nal import NalType, nal_unit_spans
from streaming.media.hub import Hub
from streaming.media.types import AccessUnit, MediaError
from tests.support.h264_samples import decode
from tests.support.recordings import (
    FPS,
    camera_units,
    decode_file,
    ffprobe,
    idrs_lack_parameter_sets,
    same_pictures,
    small_disk,
)

# --- helpers ----------------------------------------------------------------------------------


async def feed(hub: Hub, units: list[AccessUnit], pause: float = 0.0) -> float:
    """Publish like the camera pipeline does; returns the slowest publish() call (s)."""
    slowest = 0.0
    for au in units:
        started = time.perf_counter()
        hub.publish(au)
        slowest = max(slowest, time.perf_counter() - started)
        await asyncio.sleep(pause)
    return slowest


async def run_sink(hub: Hub, writer, before: list[AccessUnit], after: list[AccessUnit], *,
                   maxsize: int = 300, pause: float = 0.001) -> RecorderSink:
    """Publish `before`, start recording (from the GOP), publish `after`, stop."""
    await feed(hub, before)
    await asyncio.to_thread(writer.create)
    sink = RecorderSink(hub, writer, name="t", maxsize=maxsize)
    sink.start(from_gop=True)
    await feed(hub, after, pause)
    sink.request_stop()
    await sink.wait()
    return sink


# --- names and paths --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", "..", "x\x00y", "line\nbreak", "\x7f",
                                  "x" * 101, "evil\u202etxt.exe"])
def test_names_with_path_tricks_or_control_characters_are_refused(name):
    with pytest.raises(ValidationError):
        clean_recording_name(name)


@pytest.mark.parametrize(("name", "clean"), [
    (None, ""), ("", ""), ("  cat nap  ", "cat nap"),
    ("Mimi's 1st nap: 12.5 min", "Mimi's 1st nap: 12.5 min"),
    ("猫のお昼寝 🐈", "猫のお昼寝 🐈"), ("x" * 100, "x" * 100)])
def test_ordinary_names_are_kept(name, clean):
    assert clean_recording_name(name) == clean


def test_file_names_are_chosen_by_the_server():
    from datetime import UTC, datetime
    rel = recording_relpath("default", datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC), "mp4", "ab12")
    assert rel == "recordings/default/2025-03-04/default-20250304T050607Z-ab12.mp4"


# --- writers through the hub ------------------------------------------------------------------


def test_h264_recording_started_mid_gop_begins_at_the_cached_idr_and_decodes_like_the_source(
        tmp_path):
    units = camera_units(n=100, gop=30)
    reference, ref_errors = decode([u.data for u in units])
    assert not ref_errors and len(reference) == 100
    path = tmp_path / "rec.h264"

    async def run():
        return await run_sink(Hub("t"), H264FileWriter(path), units[:40], units[40:])

    sink = asyncio.run(run())
    # Clicked at frame 41, mid-GOP: the file starts at the IDR of frame 31 (cached GOP).
    assert sink.result.reason == "stopped"
    assert sink.writer.frames == 70 and sink.writer.first_frame_number == 31
    assert sink.dropped == 0 and sink.writer.gaps == 0
    data = path.read_bytes()
    assert sink.writer.size == len(data) == sum(len(u.data) for u in units[30:])
    first_types = [data[s] & 0x1F for s, _ in nal_unit_spans(data)][:4]
    assert first_types[:2] == [NalType.SPS, NalType.PPS] and NalType.IDR in first_types
    assert idrs_lack_parameter_sets(data) == 0
    assert ffprobe(path)["nb_read_frames"] == "70"
    frames, errors, packets = decode_file(path)
    assert errors == []
    assert packets[0].is_keyframe and frames[0].key_frame
    assert same_pictures(frames, reference[30:])  # byte-exact passthrough, nothing re-encoded


def test_mp4_keeps_the_camera_timestamps_exactly_and_starts_with_a_keyframe(tmp_path):
    units = camera_units(n=95, gop=30, jitter=True)
    reference, _ = decode([u.data for u in units])
    path = tmp_path / "rec.mp4"

    async def run():
        return await run_sink(Hub("t"), Mp4FileWriter(path), units[:5], units[5:])

    sink = asyncio.run(run())
    assert sink.result.reason == "stopped" and sink.writer.frames == 95
    probe = ffprobe(path)
    assert (probe["codec_name"], probe["width"], probe["height"]) == ("h264", 320, 240)
    assert probe["nb_read_frames"] == "95"
    frames, errors, packets = decode_file(path)
    assert errors == []
    assert packets[0].is_keyframe and frames[0].key_frame
    assert [p.is_keyframe for p in packets] == [u.is_idr for u in units]
    t0 = units[0].timestamp
    want = [round((u.timestamp - t0) * 90_000) for u in units]
    got = [round(p.pts * p.time_base * 90_000) for p in packets]
    assert got == want  # uneven camera intervals kept to the tick
    camera_time = units[-1].timestamp - t0 + (units[-1].timestamp - units[-2].timestamp)
    assert abs(float(probe["duration"]) - camera_time) < 1 / FPS
    assert abs(sink.writer.duration - camera_time) < 1 / FPS
    assert same_pictures(frames, reference)


def test_a_slow_disk_drops_to_the_next_idr_and_never_holds_up_the_hub_or_a_viewer(tmp_path):
    units = camera_units(n=150, gop=15)
    path = tmp_path / "slow.h264"
    writer = H264FileWriter(path)
    real_write = writer.write

    def slow_write(au):  # a disk that stalls 50 ms on every write for a while
        if 20 <= au.frame_number <= 70:
            time.sleep(0.05)
        real_write(au)

    writer.write = slow_write

    async def run():
        hub = Hub("t")
        viewer = hub.subscribe("viewer", maxsize=1000, from_gop=False)
        await asyncio.to_thread(writer.create)
        sink = RecorderSink(hub, writer, name="slow", maxsize=10)
        sink.start()
        slowest = await feed(hub, units, pause=0.002)
        sink.request_stop()
        await sink.wait()
        return sink, viewer, slowest

    sink, viewer, slowest = asyncio.run(run())
    assert slowest < 0.005, f"publish() took {slowest * 1000:.1f} ms"
    assert viewer.stats.delivered + len(viewer) == 150 and viewer.stats.dropped == 0
    assert sink.queue.stats.overflows >= 1 and sink.dropped > 0
    assert sink.writer.frames + sink.dropped == 150  # every frame: written or counted
    assert sink.writer.gaps >= 1
    data = path.read_bytes()
    assert idrs_lack_parameter_sets(data) == 0
    frames, errors, _ = decode_file(path)
    assert errors == [] and len(frames) == sink.writer.frames  # the gap is a clean cut at an IDR


@pytest.mark.parametrize("fmt", ["mp4", "h264"])
def test_a_full_disk_stops_the_writer_and_keeps_a_playable_file(tmp_path, fmt):
    units = camera_units(n=150, gop=10, x264_params="qp=4")  # ~4 KB frames, 600 KB in all
    with small_disk(tmp_path / "disk", 256) as disk:
        path = disk / f"rec.{fmt}"

        async def run():
            hub = Hub("t")
            viewer = hub.subscribe("viewer", maxsize=1000, from_gop=False)
            writer = make_writer(fmt, path)
            await asyncio.to_thread(writer.create)
            sink = RecorderSink(hub, writer, name="full", maxsize=300)
            sink.start()
            await feed(hub, units, pause=0.001)
            result = await asyncio.wait_for(sink.wait(), 10)
            return sink, viewer, result

        sink, viewer, result = asyncio.run(run())
        assert result.reason == "write_error" and result.error.errno == errno.ENOSPC
        assert viewer.stats.delivered + len(viewer) == 150  # live view untouched
        probe = probe_file(path, fmt)
        assert probe.frame_count >= 20, probe
        frames, errors, packets = decode_file(path)
        assert errors == [], errors[:5]
        assert len(frames) == probe.frame_count and packets[0].is_keyframe
        assert ffprobe(path)["nb_read_frames"] == str(probe.frame_count)


# --- the camera's recorder: rows, segments, recovery ------------------------------------------


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.mark.django_db(transaction=True)
def test_start_stop_rows_and_refusals(media_root, django_user_model):
    user = django_user_model.objects.create_user("rec", password="x" * 12)
    units = camera_units(n=60, gop=15)

    async def run():
        hub = Hub("default")
        recorder = CameraRecorder("default", hub)
        await feed(hub, units[:20])
        with pytest.raises(MediaError) as idle:
            await recorder.stop()
        assert idle.value.code == "not_recording"
        for bad, code in [({"format": "avi"}, "invalid_format"), ({"name": "../x"}, "invalid_name"),
                          ({"trigger": "magic"}, "invalid_trigger")]:
            with pytest.raises(MediaError) as refused:
                await recorder.start(**bad)
            assert refused.value.code == code
        started = await recorder.start(name="nap", format="mp4", user_id=user.pk)
        with pytest.raises(MediaError) as twice:
            await recorder.start()
        assert twice.value.code == "already_recording"
        await feed(hub, units[20:], pause=0.002)
        live = recorder.status()
        stopped = await recorder.stop()
        return started, live, stopped, recorder.status()

    started, live, stopped, idle = asyncio.run(run())
    assert started["status"] == "recording" and started["created_by"] == user.pk
    assert live["recording"] and live["id"] == started["id"] and live["frame_count"] > 0
    row = Recording.objects.get(pk=started["id"])
    assert row.status == "complete" and stopped["status"] == "complete"
    assert row.frame_count == 45 and row.width == 320 and row.profile  # GOP from frame 16
    assert row.size_bytes == (media_root / row.file.name).stat().st_size
    assert abs(row.duration - 45 / FPS) < 1 / FPS and row.ended_at > row.started_at
    assert not idle["recording"] and idle["last"]["id"] == row.pk
    assert row.file.name.startswith("recordings/default/") and row.name == "nap"
    assert list((media_root / "recordings").rglob("*.*")) == [media_root / row.file.name]
    assert decode_file(media_root / row.file.name)[1] == []


@pytest.mark.django_db(transaction=True)
def test_an_unwritable_media_root_refuses_the_start(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "not-a-dir"
    settings.MEDIA_ROOT.write_text("a file where the media directory should be")

    async def run():
        with pytest.raises(MediaError) as refused:
            await CameraRecorder("default", Hub("default")).start()
        return refused.value

    assert asyncio.run(run()).code == "storage_error"
    assert Recording.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_resolution_change_ends_the_file_and_continues_in_a_new_segment(media_root):
    small = camera_units(320, 240, n=45, gop=15)
    big = camera_units(640, 480, n=45, gop=45, first_number=46,
                       t0=small[-1].timestamp + 1 / FPS)
    reference_big, _ = decode([u.data for u in big])

    async def run():
        hub = Hub("default")
        recorder = CameraRecorder("default", hub)
        await feed(hub, small[:15])
        await recorder.start(format="mp4")
        await feed(hub, small[15:] + big, pause=0.003)
        await asyncio.sleep(0.2)
        return await recorder.stop()

    last = asyncio.run(run())
    first, second = Recording.objects.order_by("id")
    assert second.pk == last["id"] and second.previous_segment_id == first.pk
    assert first.status == second.status == "complete"
    assert "320x240" in first.failure_reason and "640x480" in first.failure_reason
    assert str(second.pk) in first.failure_reason
    assert (first.width, first.height, second.width, second.height) == (320, 240, 640, 480)
    assert first.frame_count == 45 and second.frame_count == 45
    for row in (first, second):
        frames, errors, packets = decode_file(media_root / row.file.name)
        assert errors == [] and packets[0].is_keyframe and len(frames) == row.frame_count
        assert {(f.width, f.height) for f in frames} == {(row.width, row.height)}
    frames, _, _ = decode_file(media_root / second.file.name)
    assert same_pictures(frames, reference_big)


@pytest.mark.django_db(transaction=True)
def test_recovery_marks_rows_interrupted_and_trims_the_torn_fragment(media_root, tmp_path):
    from datetime import UTC, datetime

    units = camera_units(n=75, gop=15)
    now = datetime.now(UTC)
    rows, writers = {}, []
    for fmt in ("mp4", "h264"):
        rel = recording_relpath("default", now, fmt, uuid.uuid4().hex[:6])
        scratch = tmp_path / f"scratch.{fmt}"
        writer = make_writer(fmt, scratch)
        writer.create()
        for au in units:
            writer.write(au)
        # The process dies here, nothing closed: the file is what reached the disk so far.
        (media_root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(scratch, media_root / rel)
        writers.append(writer)
        if fmt == "mp4":  # and a fragment torn mid-write
            with open(media_root / rel, "ab") as f:
                f.write(b"\x00\x00\x10\x00moof" + b"\x00" * 100)
        rows[fmt] = Recording.objects.create(
            camera="default", file=rel, format=fmt, started_at=now, status="recording",
            frame_count=30, duration=1.0)  # the last checkpoint
    other = Recording.objects.create(camera="other", file="recordings/other/x.mp4",
                                     started_at=now, status="recording")

    recovered = asyncio.run(CameraRecorder("default", Hub("default")).recover())
    assert {r["id"] for r in recovered} == {rows["mp4"].pk, rows["h264"].pk}
    mp4, h264 = (Recording.objects.get(pk=rows[f].pk) for f in ("mp4", "h264"))
    assert Recording.objects.get(pk=other.pk).status == "recording"  # not this worker's camera
    assert mp4.status == h264.status == "interrupted"
    assert "trimmed" in mp4.failure_reason
    # MP4: fragments end at IDRs; the last GOP (frames 61-75) was still in the muxer.
    assert mp4.frame_count == 60 and abs(mp4.duration - 60 / FPS) < 1 / FPS
    assert h264.frame_count == 75 and abs(h264.duration - 75 / FPS) < 1e-6
    for row in (mp4, h264):
        path = media_root / row.file.name
        assert row.size_bytes == path.stat().st_size
        frames, errors, packets = decode_file(path)
        assert errors == [] and len(frames) == row.frame_count and packets[0].is_keyframe
    assert repair_mp4(media_root / mp4.file.name) == 0  # already clean
    for writer in writers:
        writer.close()


def test_writer_cost_per_frame(tmp_path, record_property):
    """A figure, not a bar: writer-thread time per frame for each format."""
    units = camera_units(n=300, gop=30)
    for fmt in ("mp4", "h264"):
        writer = make_writer(fmt, tmp_path / f"cost.{fmt}")
        writer.create()
        started = time.process_time()
        for au in units:
            writer.write(au)
        writer.close()
        per_frame = (time.process_time() - started) / len(units)
        record_property(f"{fmt}_cpu_us_per_frame", round(per_frame * 1e6, 1))
        assert writer.frames == 300


@pytest.mark.django_db(transaction=True)
def test_a_failed_recording_counts_in_petcam_recordings_failed(media_root):
    """A recording that never got a frame ends "failed"; the worker's metric counts it
    (the PetcamRecordingFailed alert in deploy/prometheus watches that counter)."""
    from types import SimpleNamespace

    from recordings.worker_part import RecordingPart

    units = camera_units(n=30, gop=15)

    async def run():
        hub = Hub("default")
        part = RecordingPart(SimpleNamespace(config=SimpleNamespace(slug="default"), hub=hub,
                                             detection_listeners=[]))
        await part.recorder.start(format="mp4")  # nothing published yet: no video
        empty = await part.recorder.stop()
        await feed(hub, units[:15])
        await part.recorder.start(format="mp4")
        await feed(hub, units[15:], pause=0.002)
        fine = await part.recorder.stop()
        return empty, fine, {f.name: f.samples for f in part.metrics()}

    empty, fine, families = asyncio.run(run())
    assert empty["status"] == "failed" and "no video" in empty["failure_reason"]
    assert fine["status"] == "complete"
    (sample,) = families["petcam_recordings_failed"]
    assert sample.name == "petcam_recordings_failed_total" and sample.value == 1
    assert sample.labels == {"camera": "default"}


@pytest.mark.django_db(transaction=True)
def test_day_night_switches_are_listed_in_the_recording_and_it_goes_on(media_root):
    """Day -> night at the same size: one file, the switch at its time. Night -> day with a
    new size: a new segment (same as any resolution change) that lists the switch at t 0.
    Every file decodes from its first frame."""
    day = camera_units(320, 240, n=30, gop=15, camera_id=0)
    night = camera_units(320, 240, n=30, gop=15, camera_id=1, first_number=31,
                         t0=day[-1].timestamp + 1 / FPS)
    day_big = camera_units(480, 360, n=30, gop=30, camera_id=0, first_number=61,
                           t0=night[-1].timestamp + 1 / FPS)

    async def run():
        hub = Hub("default")
        recorder = CameraRecorder("default", hub)
        await feed(hub, day[:15])
        await recorder.start(format="mp4")
        await feed(hub, day[15:] + night, pause=0.003)
        await asyncio.sleep(0.1)
        live = recorder.status()
        await feed(hub, day_big, pause=0.003)
        await asyncio.sleep(0.2)
        return live, await recorder.stop()

    live, last = asyncio.run(run())
    assert [s["camera_id"] for s in live["camera_switches"]] == [1]
    first, second = Recording.objects.order_by("id")
    assert second.pk == last["id"] and second.previous_segment_id == first.pk
    (to_night,) = first.camera_switches
    # The file starts at the cached GOP's IDR (frame 1): night from frame 31 on.
    assert to_night == {"t": pytest.approx(30 / FPS, abs=0.002), "camera_id": 1,
                        "active_camera": "night", "from_camera_id": 0}
    assert second.camera_switches == [{"t": 0.0, "camera_id": 0, "active_camera": "day",
                                       "from_camera_id": 1}]
    assert last["camera_switches"] == second.camera_switches  # the API's JSON
    assert (first.frame_count, second.frame_count) == (60, 30)
    assert (second.width, second.height) == (480, 360)
    for row in (first, second):
        frames, errors, packets = decode_file(media_root / row.file.name)
        assert errors == [] and packets[0].is_keyframe and len(frames) == row.frame_count
