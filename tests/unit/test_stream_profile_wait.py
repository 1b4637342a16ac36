"""An offer while the camera is live but before its first SPS waits for it (not forever).

The reader may join a running camera mid-GOP: frames flow (the camera is live)
but the SPS that states the profile only comes with the next IDR. The answer
must state the stream's real profile-level-id, so the worker waits for it, up
to a limit; with the camera off it does not wait at all.
Real shared memory, a real writer thread, PyAV/libx264 frames.
"""

from __future__ import annotations

import asyncio
import threading
import time

from streaming.media.h264.nal import split_nal_units
from streaming.media.pipeline import CameraPipeline
from streaming.media.shm.writer import FrameWriter
from streaming.media.types import CameraConfig
from tests.support.h264_samples import encode_frames

WIDTH, HEIGHT, GOP = 160, 96, 15


def pipeline_on(segment: str) -> CameraPipeline:
    config = CameraConfig(slug="mid-gop", stream_segment=segment,
                          detections_segment=segment + "_det")
    return CameraPipeline(config, stall_after=1.0)


def write_mid_gop(writer: FrameWriter, frames: list[bytes], stop: threading.Event) -> None:
    """From frame 1 (a P-frame) on, at 30 fps: the first IDR comes a GOP later."""
    for data in frames[1:]:
        if stop.is_set():
            return
        writer.write(data, width=WIDTH, height=HEIGHT)
        time.sleep(1 / 30)


def test_an_offer_mid_gop_waits_for_the_first_sps_and_gets_its_profile(shm_name):
    frames = encode_frames(WIDTH, HEIGHT, 3 * GOP, profile="main", gop=GOP)
    assert 5 not in {nal[0] & 0x1F for nal in split_nal_units(frames[1])}  # a P-frame
    writer = FrameWriter(shm_name)
    stop = threading.Event()
    pipeline = pipeline_on(shm_name)

    async def run() -> tuple[str | None, float, bool]:
        pipeline.start(asyncio.get_running_loop())
        thread = threading.Thread(target=write_mid_gop, args=(writer, frames, stop))
        thread.start()
        try:
            while pipeline.status()["state"] != "live":  # frames flow, no SPS yet
                await asyncio.sleep(0.01)
            unknown_while_live = pipeline.stream_profile() is None
            start = time.monotonic()
            profile = await pipeline.wait_stream_profile(3.0)
            return profile, time.monotonic() - start, unknown_while_live
        finally:
            stop.set()
            await asyncio.to_thread(thread.join)
            await asyncio.to_thread(pipeline.stop)

    try:
        profile, waited, unknown_while_live = asyncio.run(run())
    finally:
        writer.close()
    assert unknown_while_live  # the case this is about really happened
    assert profile is not None and profile.startswith("4d"), profile  # Main, from the SPS
    assert waited < 2.0, waited  # until the IDR (half a second here), not the limit


def test_with_the_camera_off_an_offer_does_not_wait(shm_name):
    pipeline = pipeline_on(shm_name)  # nothing writes this segment

    async def run() -> tuple[str | None, float]:
        pipeline.start(asyncio.get_running_loop())
        try:
            start = time.monotonic()
            profile = await pipeline.wait_stream_profile(3.0)
            return profile, time.monotonic() - start
        finally:
            await asyncio.to_thread(pipeline.stop)

    profile, waited = asyncio.run(run())
    assert profile is None
    assert waited < 0.5, waited
