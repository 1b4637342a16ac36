"""One camera's media path: source thread -> H.264 processor -> sinks, with live status.

The source is the daemon's shared memory, an RTSP camera or a looped file
(streaming/sources); everything after it is the same for all three.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict

from streaming.media.day_night import ActiveCamera, CameraSwitch, camera_name
from streaming.media.h264.processor import H264Processor
from streaming.media.hub import Hub
from streaming.media.live_rate import LiveRate
from streaming.media.shm.stream_reader import LIVE
from streaming.media.sources import open_source
from streaming.media.types import AccessUnit, CameraConfig

log = logging.getLogger("petcam.camera")

PROFILE_NAMES = {66: "Baseline", 77: "Main", 88: "Extended", 100: "High", 110: "High 10",
                 122: "High 4:2:2", 244: "High 4:4:4"}

def profile_name(profile_idc: int, constraint_flags: int) -> str:
    name = PROFILE_NAMES.get(profile_idc, f"profile {profile_idc}")
    if profile_idc == 66 and constraint_flags & 0x40:  # constraint_set1: Constrained Baseline
        return "Constrained Baseline"
    if profile_idc == 100 and constraint_flags & 0x0C == 0x0C:  # set4+set5
        return "Constrained High"
    return name


# A camera that has not sent a frame since the worker started is "starting" this long
# (the simulator or the daemon comes up a few seconds after the site), then "off".
START_GRACE_SECONDS = 30.0


class CameraPipeline:
    """Reads one camera's source in a thread and hands access units to the loop.

    The reader thread does the copying/demuxing and NAL parsing so the event
    loop only sees finished access units; sinks (viewers, recorder) run on the loop.
    """

    def __init__(self, config: CameraConfig, *, stall_after: float = 2.0,
                 relax_when_idle: bool = True) -> None:
        self.config = config
        self.source = open_source(config.slug, config.source, config.stream_segment,
                                  stall_after=stall_after)
        self.reader = self.source  # older name: .stats and .close() as before
        self.processor = H264Processor()
        self.hub = Hub(config.slug)
        if relax_when_idle and hasattr(self.source, "demand"):  # a polled source can relax
            self.source.demand = self.hub.has_sinks
        self._rate = LiveRate()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_au_at = 0.0
        self._started_at = time.monotonic()
        self._header_size: tuple[int | None, int | None] = (None, None)
        self.gop_frames = 0  # frames in the last complete GOP
        self._frames_since_idr = 0
        self.active_camera = ActiveCamera()  # day/night (the frame header's camera_id)
        # Called on the loop with each switch (the worker's WebSocket event).
        self.switch_listeners: list[Callable[[CameraSwitch], None]] = []

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._started_at = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"{self.source.kind}-reader-{self.config.slug}")
        self._thread.start()
        where = self.source.describe()
        log.info("camera %s: reading %s %s", self.config.slug, self.source.kind,
                 where.get("url") or where.get("path") or where.get("segment"))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # A network read blocked on a silent camera ends at its timeout.
            self._thread.join(timeout=self.source.stop_timeout)
            self._thread = None
        self.source.close()

    def _read_loop(self) -> None:
        restarts = self.source.stats.restarts
        for frame in self.source.frames(self._stop.is_set):
            if self.source.stats.restarts != restarts:
                # A restarted daemon or a reconnected camera, maybe another encoder
                # setup: its old SPS/PPS must not be put in front of its IDRs, nor its
                # old GOP replayed.
                restarts = self.source.stats.restarts
                self.processor.new_stream()
                if self._loop is not None and not self._loop.is_closed():
                    self._loop.call_soon_threadsafe(self.hub.gop.clear)
            self._header_size = (frame.width, frame.height)
            au = self.processor.process(frame.data, frame.frame_number, frame.timestamp,
                                        frame.camera_id)
            if au is not None and self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._deliver, au)

    def _deliver(self, au: AccessUnit) -> None:
        now = time.monotonic()
        self._last_au_at = now
        # The camera's own clock (CLOCK_MONOTONIC, as time.monotonic()): a burst
        # after the reader was held up must not read as a higher frame rate.
        self._rate.add(au.timestamp, len(au.data))
        if au.is_idr:
            if self._frames_since_idr:
                self.gop_frames = self._frames_since_idr
            self._frames_since_idr = 0
        self._frames_since_idr += 1
        switch = self.active_camera.observe(au.camera_id, au.timestamp, au.frame_number)
        if switch is not None:
            self._switched(switch)
        self.hub.publish(au)

    def _switched(self, switch: CameraSwitch) -> None:
        log.info("camera %s: switched from the %s camera (%d) to the %s camera (%d) at frame %d",
                 self.config.slug, camera_name(switch.from_camera_id), switch.from_camera_id,
                 camera_name(switch.camera_id), switch.camera_id, switch.frame_number)
        for listener in self.switch_listeners:
            try:
                listener(switch)
            except Exception:
                log.exception("camera %s: camera switch listener failed", self.config.slug)

    async def wait_stream_profile(self, timeout: float) -> str | None:
        """stream_profile(), waiting up to `timeout` s while the camera is live but its
        first SPS has not come yet (the reader joined mid-GOP): an answer must state
        the stream's real profile, and a generic one shows black in Safari."""
        deadline = time.monotonic() + timeout
        while (profile := self.stream_profile()) is None and time.monotonic() < deadline:
            if self.source.stats.state != LIVE:
                return None  # camera off: answer now, the page says "waiting for camera"
            await asyncio.sleep(0.02)
        return profile

    def phase(self, live: bool, now: float) -> str:
        """What the viewer is told: "live"; "starting" while no frame has come since the
        worker started (for START_GRACE_SECONDS); "off" once it was live, or never came."""
        if live:
            return "live"
        if not self._last_au_at and now - self._started_at < START_GRACE_SECONDS:
            return "starting"
        return "off"

    def frame_size(self) -> tuple[int | None, int | None]:
        """Picture size (detection boxes are in these pixels): the SPS's, else the
        daemon's frame header's until the first SPS arrives."""
        sps = self.processor.sps_info
        return (sps.width, sps.height) if sps else self._header_size

    def stream_profile(self) -> str | None:
        """profile-level-id of the current SPS (what the SDP answer must state)."""
        sps = self.processor.sps_info
        return sps.profile_level_id if sps else None

    def status(self) -> dict:
        """Everything the live page and /health show about this camera."""
        now = time.monotonic()
        fps, bps = self._rate.rates(now)
        state = self.source.state
        stats = self.source.stats
        sps = self.processor.sps_info
        live = state == LIVE
        return {
            "camera": self.config.slug,
            "state": state,
            "live": live,
            "phase": self.phase(live, now),
            "fps": round(fps, 2) if live else 0.0,
            "bitrate_kbps": round(bps / 1000, 1) if live else 0.0,
            "width": sps.width if sps else None,
            "height": sps.height if sps else None,
            "profile": profile_name(sps.profile_idc, sps.constraint_flags) if sps else None,
            "profile_level_id": sps.profile_level_id if sps else None,
            "level": sps.level_idc / 10 if sps else None,
            "gop_frames": self.gop_frames or None,
            "last_frame_age_s": round(now - self._last_au_at, 3) if self._last_au_at else None,
            "reader": stats.as_dict(),
            "source": self.source.describe(),
            "processor": asdict(self.processor.stats),
            "stream_segment": self.config.stream_segment,
            **self.active_camera.status(),
        }
