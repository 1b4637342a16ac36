"""What RTSP and file sources share: PyAV demuxing, H.264 passthrough, timestamps, retries.

Nothing is decoded or re-encoded. PyAV hands over H.264 either as Annex-B
(RTSP, MPEG-TS, raw .h264) or as AVCC length-prefixed NAL units with the
SPS/PPS in the avcC extradata (MP4, MKV); FFmpeg's own h264_mp4toannexb
bitstream filter rewrites the latter into Annex-B, SPS/PPS in front of IDRs,
without touching the slice data.

A source that fails (cannot open, not H.264, read timeout, connection lost,
stream ended) records the error, waits (exponential backoff with jitter,
capped; reset once a connection has delivered frames for a while) and tries
again, for ever, until the pipeline stops it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import av.bitstream

from streaming.media.shm.stream_reader import LIVE, STALLED, WAITING
from streaming.media.sources.backoff import Backoff
from streaming.media.sources.base import SourceFrame
from streaming.media.sources.urls import SourceError, mask_credentials

log = logging.getLogger("petcam.source")

DEFAULT_INTERVAL = 1 / 30  # a frame's length when the stream does not say


class StreamEnded(Exception):
    """The source closed the stream without an error."""


@dataclass
class AvSourceStats:
    """Same shape as the shm reader's figures, where they mean the same thing."""

    state: str = WAITING
    frames_read: int = 0
    bytes_read: int = 0
    attaches: int = 0  # successful opens
    restarts: int = 0  # streams started after the first (reconnects)
    errors: int = 0  # failed opens and lost streams
    skipped: dict[str, int] = field(default_factory=dict)  # packets not passed on, by reason
    frame_interval_ms: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"state": self.state, "frames_read": self.frames_read,
                "bytes_read": self.bytes_read, "attaches": self.attaches,
                "restarts": self.restarts, "errors": self.errors, "skipped": dict(self.skipped),
                "frame_interval_ms": self.frame_interval_ms,
                # The shm ring's own figures: nothing like them here, but /health and
                # /metrics read every camera's figures alike.
                "gaps": 0, "frames_missed": 0, "overwritten": 0, "early_commits": 0}


class Timeline:
    """Stream time (seconds from the stream's own pts) -> time.monotonic() seconds.

    Anchored on the first frame of a stream. A frame is never stamped later
    than it arrived (a camera clock running fast, or frames FFmpeg buffered
    while probing, only pull the anchor back), and a stream that fell more
    than `max_lag` behind is re-anchored to now. Timestamps only ever go up,
    across reconnects and file loops too.
    """

    def __init__(self, max_lag: float = 2.0) -> None:
        self.max_lag = max_lag
        self.last: float | None = None
        self._base: float | None = None

    def reset(self) -> None:
        """A new stream: its pts start anywhere; the next frame anchors again."""
        self._base = None

    def due(self, rel: float, now: float) -> float:
        """When the frame at stream time `rel` is due (anchoring if needed)."""
        if self._base is None:
            start = now if self.last is None else max(now, self.last + 0.001)
            self._base = start - rel
        return self._base + rel

    def stamp(self, rel: float, now: float) -> float:
        ts = self.due(rel, now)
        if ts > now or now - ts > self.max_lag:
            ts = now
        if self.last is not None and ts <= self.last:
            ts = self.last + 1e-6
        self._base = ts - rel
        self.last = ts
        return ts


class AvSource:
    """Base of the PyAV sources; a subclass implements `_session()` (one open stream)."""

    kind = "av"

    def __init__(self, camera: str, *, stall_after: float = 2.0, open_timeout: float = 5.0,
                 read_timeout: float | None = None, backoff: Backoff | None = None,
                 healthy_after: float = 3.0) -> None:
        self.camera = camera
        self.stall_after = stall_after
        self.open_timeout = open_timeout
        # No data for this long and the stream counts as lost (then: reconnect).
        self.read_timeout = read_timeout if read_timeout is not None else max(3.0, 2 * stall_after)
        self.stop_timeout = self.open_timeout + self.read_timeout
        self.backoff = backoff or Backoff()
        self.healthy_after = healthy_after
        self.stats = AvSourceStats()
        self.timeline = Timeline()
        self.last_error: str | None = None
        self._last_error_at: float | None = None
        self._retry_at: float | None = None
        self._connected_at: float | None = None
        self._last_frame_at: float | None = None
        self._lock = threading.Lock()  # describe() runs on the event loop, reads on the thread

    # --- what the pipeline sees -----------------------------------------------------

    @property
    def label(self) -> str:
        """The source as logs show it (never with credentials)."""
        raise NotImplementedError

    @property
    def state(self) -> str:
        now = time.monotonic()
        if self._connected_at is None:
            state = WAITING
        elif self._last_frame_at is not None and now - self._last_frame_at <= self.stall_after:
            state = LIVE
        else:
            state = STALLED  # connected, but nothing (or nothing lately)
        self.stats.state = state
        return state

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            retry_at, error_at = self._retry_at, self._last_error_at
            connected_at = self._connected_at
            return {
                "kind": self.kind,
                "connected": connected_at is not None,
                "connected_for_s": round(now - connected_at, 1) if connected_at else None,
                "reconnects": self.stats.restarts,
                "errors": self.stats.errors,
                "last_error": self.last_error,
                "last_error_age_s": round(now - error_at, 1) if error_at else None,
                "retry_in_s": round(max(0.0, retry_at - now), 2) if retry_at else None,
                "read_timeout_s": self.read_timeout,
            }

    def close(self) -> None:
        """Nothing to do: the reader thread closes its container when frames() ends."""

    def frames(self, should_stop: Callable[[], bool]) -> Iterator[SourceFrame]:
        """Access units until should_stop(); opens, reads and retries by itself."""
        while not should_stop():
            if self._retry_at is not None and not self._sleep_until(self._retry_at, should_stop):
                break
            with self._lock:
                self._retry_at = None
            try:
                yield from self._session(should_stop)
                if should_stop():
                    break
                raise StreamEnded("the stream ended")
            except Exception as exc:  # every failure is retried, none may kill the reader
                if should_stop():
                    break
                self._lost(exc)
            finally:
                self._connected_at = None
        self.stats.state = WAITING

    # --- for subclasses -----------------------------------------------------------------

    def _session(self, should_stop: Callable[[], bool]) -> Iterator[SourceFrame]:
        raise NotImplementedError

    def _open(self, url: str, options: dict[str, str]) -> av.container.InputContainer:
        return av.open(url, "r", options=options, timeout=(self.open_timeout, self.read_timeout))

    @staticmethod
    def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
        if not container.streams.video:
            raise SourceError("no video stream")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if codec != "h264":
            raise SourceError(f"the video is {codec}, not H.264: petcam passes H.264 through "
                              "and never transcodes")
        return stream

    @staticmethod
    def _interval(stream: av.video.stream.VideoStream) -> float:
        rate = stream.average_rate  # guessed_rate may be the field rate (2x)
        return float(1 / rate) if rate and 1 <= rate <= 240 else DEFAULT_INTERVAL

    def _connected(self, stream: av.video.stream.VideoStream) -> None:
        """A stream is open: count it, and tell the pipeline if it is a new one."""
        self.stats.attaches += 1
        if self.stats.attaches > 1:
            self.stats.restarts += 1  # the pipeline clears SPS/PPS and the GOP on this
        self.stats.frame_interval_ms = round(self._interval(stream) * 1000)
        self._connected_at = time.monotonic()
        self._last_frame_at = None
        cc = stream.codec_context
        if cc.has_b_frames:
            log.warning("camera %s: %s has B-frames; browsers may show them out of order "
                        "(set the camera's encoder to no B-frames)", self.camera, self.label)
        rate = f", {float(stream.average_rate):.2f} fps" if stream.average_rate else ""
        log.info("camera %s: %s open (H.264 %dx%d%s)%s", self.camera, self.label,
                 cc.width, cc.height, rate,
                 f", reconnect {self.stats.restarts}" if self.stats.restarts else "")

    def _packets(self, container: av.container.InputContainer,
                 stream: av.video.stream.VideoStream) -> Iterator[tuple[bytes, float | None, bool]]:
        """(Annex-B access unit, pts in seconds or None, keyframe) for each video packet."""
        extradata = stream.codec_context.extradata or b""
        # avcC extradata starts with configurationVersion 1; Annex-B with a start code.
        bsf = (av.bitstream.BitStreamFilterContext("h264_mp4toannexb", stream)
               if extradata[:1] == b"\x01" else None)
        for packet in container.demux(stream):
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            # Decode order is the order we send in: dts keeps rising even with B-frames
            # (cameras send none; then dts == pts). RTSP gives pts only.
            pts = packet.dts if packet.dts is not None else packet.pts
            seconds = float(pts * packet.time_base) if pts is not None else None
            keyframe = packet.is_keyframe
            for out in (bsf.filter(packet) if bsf is not None else (packet,)):
                data = bytes(out)
                if data[:3] != b"\0\0\1" and data[:4] != b"\0\0\0\1":
                    self._skip("not_annexb")
                    continue
                yield data, seconds, keyframe

    def _frame(self, data: bytes, timestamp: float,
               stream: av.video.stream.VideoStream) -> SourceFrame:
        now = time.monotonic()
        self._last_frame_at = now
        if (self._connected_at is not None and self.backoff.failures
                and now - self._connected_at >= self.healthy_after):
            self.backoff.reset()  # a connection that works: next failure retries quickly
        self.stats.frames_read += 1
        self.stats.bytes_read += len(data)
        cc = stream.codec_context
        return SourceFrame(data, self.stats.frames_read, timestamp, cc.width or None,
                           cc.height or None)

    def _skip(self, reason: str) -> None:
        self.stats.skipped[reason] = self.stats.skipped.get(reason, 0) + 1

    @staticmethod
    def _sleep_until(deadline: float, should_stop: Callable[[], bool]) -> bool:
        """Sleep until `deadline` (time.monotonic()); False if told to stop first."""
        while not should_stop():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, 0.05))
        return False

    # --- failures -------------------------------------------------------------------------

    def _lost(self, exc: Exception) -> None:
        now = time.monotonic()
        message = mask_credentials(self._explain(exc))
        delay = self.backoff.next_delay()
        with self._lock:
            self.stats.errors += 1
            self.last_error = message
            self._last_error_at = now
            self._retry_at = now + delay
        was = "lost" if self._connected_at is not None else "unavailable"
        log.warning("camera %s: %s %s: %s; retry %d in %.1f s", self.camera, self.label, was,
                    message, self.backoff.failures, delay)

    def _explain(self, exc: Exception) -> str:
        if isinstance(exc, av.FFmpegError):
            text = exc.strerror or str(exc)
            text = f"{text} ({type(exc).__name__})" if text else type(exc).__name__
        else:
            text = str(exc) or type(exc).__name__
        # PyAV's timeouts interrupt FFmpeg, which may report that as EXIT or as EIO.
        if self._connected_at is None:
            if isinstance(exc, av.ExitError):
                return f"timed out: no answer within {self.open_timeout:g} s"
            return text
        since = self._last_frame_at or self._connected_at
        if isinstance(exc, av.ExitError) or time.monotonic() - since >= 0.9 * self.read_timeout:
            return f"timed out: no data for {self.read_timeout:g} s ({text})"
        return text
