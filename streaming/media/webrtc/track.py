"""A video track that hands the camera's H.264 access units to aiortc untouched."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from streaming.media.hub import SinkClosed, SinkQueue
from streaming.media.types import AccessUnit
from streaming.media.webrtc.frame_timer import FrameTimer

VIDEO_CLOCK_RATE = 90_000
TIME_BASE = Fraction(1, VIDEO_CLOCK_RATE)
FRAME_TICKS = 3000  # one 30 fps frame: the step after a re-anchor


class PtsClock:
    """90 kHz timestamps from camera timestamps; monotonic across catch-up and restarts.

    Live frames keep the camera's spacing (exact durations). Frames replayed
    from the GOP cache get one tick each: the browser decodes them at once and
    shows the newest, instead of replaying the past at real speed. Time that
    really passed between two sends (a camera restart, a pause) always shows
    in the timestamps, or the browser's playout clock drifts and it stutters.
    """

    def __init__(self) -> None:
        self.last: int | None = None
        self._base: float | None = None
        self._last_ts = 0.0
        self._last_sent = 0.0  # time.monotonic() of the last timestamp handed out
        self._anchor_next = True
        # (first pts, camera_ts at pts 0) of each anchoring: live pts = (ts - base) * 90 kHz.
        self.anchors: list[tuple[int, float]] = []

    def pts(self, camera_ts: float, catch_up: bool) -> int:
        now = time.monotonic()
        elapsed = round((now - self._last_sent) * VIDEO_CLOCK_RATE)
        self._last_sent = now
        if catch_up:
            pts = 0 if self.last is None else self.last + max(1, elapsed)
            self._anchor_next = True
        else:
            if self._anchor_next or camera_ts < self._last_ts or camera_ts - self._last_ts > 2.0:
                # First frame, end of a catch-up, or the camera clock jumped (restart).
                start = 0 if self.last is None else self.last + max(FRAME_TICKS, elapsed)
                self._base = camera_ts - start / VIDEO_CLOCK_RATE
                self._anchor_next = False
                self.anchors = [*self.anchors[-7:], (start, self._base)]
            pts = round((camera_ts - self._base) * VIDEO_CLOCK_RATE)
            if self.last is not None and pts <= self.last:
                pts = self.last + 1
            self._last_ts = camera_ts
        self.last = pts
        return pts


class PassthroughTrack(MediaStreamTrack):
    """recv() returns av.Packets of Annex-B access units: aiortc packetizes, never encodes."""

    kind = "video"

    def __init__(self, sink: SinkQueue, catch_up_bytes_per_s: float = 10e6,
                 timer: FrameTimer | None = None) -> None:
        super().__init__()
        self.sink = sink
        self.timer = timer  # /metrics: send latency and time to first frame
        # A replayed GOP is megabytes at once: pace it so the receiver's socket
        # buffer does not overflow (a lost P-frame spoils the rest of the GOP).
        self.catch_up_rate = catch_up_bytes_per_s
        self._paced_until = 0.0
        self.clock = PtsClock()
        self.frames_sent = 0
        self.bytes_sent = 0
        self.first_frame_at: float | None = None
        self.last_unit = None  # the AccessUnit behind the last packet (shared packetizer)
        self.last_was_live = False  # False: catching up (already paced by catch_up_rate)
        self.last_was_replay = False  # from a replayed GOP: the viewer waits to start on it

    async def recv(self) -> av.Packet:
        """For aiortc's own sender loop: the next access unit as an av.Packet."""
        au, pts = await self.next_unit()
        packet = av.Packet(au.data)
        packet.pts = pts
        packet.time_base = TIME_BASE  # the default 0/1 would make every RTP timestamp 0
        return packet

    async def next_unit(self) -> tuple[AccessUnit, int]:
        """The next access unit and its 90 kHz timestamp (the lean sender's recv())."""
        try:
            item = await self.sink.get()
        except SinkClosed:
            self.stop()
            raise MediaStreamError from None
        # Frames with newer ones already queued behind them (a replayed GOP, or a
        # backlog after a stall) are history: pace them and give them one tick
        # each, so the browser decodes through them and shows the newest.
        behind = item.catch_up or len(self.sink) > 0
        if behind:
            now = time.monotonic()
            if self._paced_until > now:
                await asyncio.sleep(self._paced_until - now)
            self._paced_until = max(now, self._paced_until) + len(item.au.data) / self.catch_up_rate
        self.last_unit = item.au
        self.last_was_live = not behind
        self.last_was_replay = item.catch_up
        pts = self.clock.pts(item.au.timestamp, behind)
        self.frames_sent += 1
        self.bytes_sent += len(item.au.data)
        if self.first_frame_at is None:
            self.first_frame_at = time.monotonic()
        if self.timer is not None:
            self.timer.sent(item.au.timestamp, not item.catch_up)
        return item.au, pts
