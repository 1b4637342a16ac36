"""A file camera: a real MP4 (AVCC, as ffmpeg muxes it) through the real camera pipeline.

The clip is the simulator's scene encoded by libx264 and muxed by the ffmpeg
CLI, so its H.264 sits in the file as length-prefixed NAL units with SPS/PPS
in the avcC box; the pipeline must hand out Annex-B byte for byte, paced at
the file's own rate and looped with timestamps that keep going up.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
from pathlib import Path

import av
import pytest

from petcam_site.health import reader_check
from streaming.media.pipeline import CameraPipeline
from streaming.media.sources.backoff import Backoff
from streaming.media.types import CameraConfig
from streaming.worker.metrics import source_families
from tests.support.rtsp_server import encode_clip
from tests.support.webrtc_client import MIN_SHARE, nal_units

FPS, FRAMES, GOP = 25, 30, 15  # a 1.2 s clip


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-y", "-v", "error", *args], check=True, timeout=60)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, list[bytes]]:
    tmp = tmp_path_factory.mktemp("file-source")
    units = encode_clip(320, 240, FPS, FRAMES, GOP)
    raw = tmp / "clip.h264"
    raw.write_bytes(b"".join(units))
    path = tmp / "clip.mp4"
    ffmpeg("-r", str(FPS), "-f", "h264", "-i", str(raw), "-c", "copy", str(path))
    with av.open(str(path)) as container:  # really AVCC: the conversion is exercised
        stream = container.streams.video[0]
        assert stream.codec_context.extradata[:1] == b"\x01"
        assert bytes(next(container.demux(stream)))[:4] != b"\0\0\0\1"
    return path, units


def pipeline_for(path: Path, **kwargs) -> CameraPipeline:
    config = CameraConfig(slug="demo", stream_segment="/petcam_unused",
                          detections_segment="/petcam_unused_det", source=f"file://{path}")
    return CameraPipeline(config, stall_after=1.0, **kwargs)


async def collect(pipeline: CameraPipeline, seconds: float) -> tuple[list, list[dict]]:
    """(time.monotonic() of arrival, access unit) for `seconds` after the first, and the
    status once a second meanwhile."""
    pipeline.start(asyncio.get_running_loop())
    sink = pipeline.hub.subscribe("test", maxsize=10_000, from_gop=False)
    got, statuses = [], []
    try:
        first = await asyncio.wait_for(sink.get(), 10)
        got.append((time.monotonic(), first.au))
        end = got[0][0] + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                item = await asyncio.wait_for(sink.get(), min(left, 1.0))
            except TimeoutError:
                continue
            got.append((time.monotonic(), item.au))
            if len(got) % FPS == 0:
                statuses.append(pipeline.status())
    finally:
        await asyncio.to_thread(pipeline.stop)
    return got, statuses


def test_file_camera_loops_at_the_files_rate_with_rising_timestamps(clip):
    path, units = clip
    with av.open(str(path)) as container:
        file_fps = float(container.streams.video[0].average_rate)
    assert file_fps == FPS
    window = 3.0  # two and a half loops
    got, statuses = asyncio.run(collect(pipeline_for(path), window))

    # The file's rate, over a window that crosses two loop boundaries.
    arrivals = [t for t, _ in got]
    rate = (len(got) - 1) / (arrivals[-1] - arrivals[0])
    print(f"file camera: {rate:.2f} fps delivered, file {file_fps:.2f} fps, {len(got)} frames")
    assert MIN_SHARE * file_fps <= rate <= 1.1 * file_fps, rate
    assert len(got) > 2 * FRAMES

    # Byte for byte the clip, in order, looping; Annex-B although the file holds AVCC.
    index = {tuple(nal_units(u)): i for i, u in enumerate(units)}
    found = [index.get(tuple(nal_units(au.data))) for _, au in got]
    assert found[0] == 0 and got[0][1].is_idr
    assert found == [i % FRAMES for i in range(len(found))], found
    assert all(au.data[:4] == b"\0\0\0\1" for _, au in got)

    # Timestamps: exactly the file's spacing (by pts), through every loop boundary.
    stamps = [au.timestamp for _, au in got]
    steps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert all(abs(step - 1 / FPS) < 1e-4 for step in steps), steps
    # On the monotonic clock, like the camera daemon's: a frame is never stamped later
    # than it arrived, nor (re-anchored after 2 s) long before.
    assert all(0 <= arrival - au.timestamp < 3 for arrival, au in got)

    last = statuses[-1]
    assert last["state"] == "live" and last["live"]
    assert (last["width"], last["height"]) == (320, 240)
    assert abs(last["fps"] - FPS) < 1.0, last["fps"]
    assert last["reader"]["frames_read"] >= len(got) - 1
    assert last["source"]["kind"] == "file" and last["source"]["path"] == str(path)
    assert last["source"]["loops"] >= 2 and last["source"]["last_error"] is None
    assert last["processor"]["dropped_before_idr"] == 0

    # /health's reader component and /metrics' source figures, from this status.
    reader = reader_check(last)
    assert (reader["source"], reader["file"], reader["connected"]) == ("file", "clip.mp4", True)
    assert "segment" not in reader and str(path.parent) not in str(reader)  # /health is public
    samples = {(s.name, s.labels["kind"]): s.value
               for family in source_families(last, "demo") for s in family.samples}
    assert samples[("petcam_source_connected", "file")] == 1.0
    assert samples[("petcam_source_errors_total", "file")] == last["source"]["errors"] == 0
    assert ("petcam_source_reconnects_total", "file") in samples


def wait_status(pipeline: CameraPipeline, predicate, what: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = pipeline.status()
        if predicate(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}: {pipeline.status()}")


def test_missing_garbage_and_wrong_codec_files_are_reported_and_retried(clip, tmp_path):
    good, _units = clip
    path = tmp_path / "camera.mp4"
    other = tmp_path / "mpeg4.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "0.5",
           "-c:v", "mpeg4", str(other))
    pipeline = pipeline_for(path)
    # Quick retries for the test; the delays' growth is checked in the next test.
    pipeline.source.backoff = Backoff(initial=0.1, maximum=0.3)
    loop = asyncio.new_event_loop()
    pipeline.start(loop)

    def replace_with(data: bytes) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # whole, at once: the reader never sees half a file

    try:
        missing = wait_status(pipeline, lambda s: s["source"]["errors"] >= 2,
                              "retries of a missing file")
        assert missing["state"] == "waiting" and not missing["live"]
        assert "No such file" in missing["source"]["last_error"]
        assert missing["source"]["retry_in_s"] is not None
        assert not missing["source"]["connected"]

        replace_with(random.Random(7).randbytes(64_000))
        garbage = wait_status(pipeline, lambda s: "Invalid data" in s["source"]["last_error"],
                              "the garbage file's error")
        assert garbage["state"] == "waiting"

        replace_with(other.read_bytes())
        wrong = wait_status(pipeline, lambda s: "not H.264" in s["source"]["last_error"],
                            "the MPEG-4 file's error")
        assert "mpeg4" in wrong["source"]["last_error"]
        assert wrong["source"]["errors"] > garbage["source"]["errors"]

        replace_with(good.read_bytes())
        live = wait_status(pipeline, lambda s: s["live"] and s["width"] == 320,
                           "the good file to play")
        assert live["source"]["connected"] and live["source"]["retry_in_s"] is None
    finally:
        pipeline.stop()
        loop.close()


def test_backoff_grows_with_jitter_up_to_its_cap_and_resets():
    backoff = Backoff(initial=0.5, maximum=15.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    expected = [0.5, 1, 2, 4, 8, 15, 15, 15]
    assert all(0.8 * e <= d <= min(15.0, 1.2 * e) for d, e in zip(delays, expected, strict=True))
    assert len({round(d, 6) for d in delays[:5]}) == 5  # jittered, not lockstep
    backoff.reset()
    assert backoff.next_delay() <= 0.6


def test_an_unusable_source_waits_with_the_reason_instead_of_stopping_the_worker():
    config = CameraConfig(slug="odd", stream_segment="/petcam_unused",
                          detections_segment="/petcam_unused_det",
                          source="http://user:pw@cam.local/stream")  # saved around validation
    pipeline = CameraPipeline(config, stall_after=1.0)
    loop = asyncio.new_event_loop()
    pipeline.start(loop)
    try:
        status = pipeline.status()
        assert status["state"] == "waiting" and not status["live"]
        assert status["source"]["kind"] == "invalid"
        assert "rtsp://" in status["source"]["last_error"]
        assert "pw" not in str(status)
        reader = reader_check(status)
        assert reader["source"] == "invalid" and "rtsp://" in reader["detail"]
        assert reader["status"] == "degraded" and "pw" not in str(reader)
    finally:
        pipeline.stop()
        loop.close()


def test_a_shm_camera_keeps_its_segment_in_health_and_is_labelled_shm_in_metrics():
    config = CameraConfig(slug="board", stream_segment="/petcam_absent_seg",
                          detections_segment="/petcam_absent_det", source="")
    pipeline = CameraPipeline(config, stall_after=1.0)  # not started: never attached
    try:
        status = pipeline.status()
        reader = reader_check(status)
        assert (reader["source"], reader["segment"]) == ("shm", "/petcam_absent_seg")
        assert "url" not in reader and reader["status"] == "degraded"
        samples = {(s.name, s.labels["kind"]): s.value
                   for family in source_families(status, "board") for s in family.samples}
        assert samples == {("petcam_source_connected", "shm"): 0.0,
                           ("petcam_source_reconnects_total", "shm"): 0.0,
                           ("petcam_source_errors_total", "shm"): 0.0}
    finally:
        pipeline.source.close()


@pytest.mark.django_db
def test_add_camera_validates_the_source_and_masks_credentials():
    from io import StringIO

    from django.core.management import CommandError, call_command

    from streaming.models import Camera

    out = StringIO()
    call_command("add_camera", "--slug", "gate", "--source",
                 "rtsp://admin:hunter2@10.0.0.5/h264#transport=udp", stdout=out)
    assert "rtsp://***@10.0.0.5/h264" in out.getvalue() and "hunter2" not in out.getvalue()
    assert Camera.objects.get(slug="gate").enabled
    with pytest.raises(CommandError, match="exists"):
        call_command("add_camera", "--slug", "gate", "--source", "file:///srv/a.mp4")
    for bad, why in [("rtsp://cam/x#transport=sctp", "tcp or udp"),
                     ("file:relative.mp4", "absolute"), ("http://cam/x", "rtsp://")]:
        with pytest.raises(CommandError, match=why):
            call_command("add_camera", "--slug", "gate", "--update", "--source", bad)
    assert Camera.objects.get(slug="gate").source.endswith("#transport=udp")  # unchanged
