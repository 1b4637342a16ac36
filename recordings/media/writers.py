"""Record access units to disk without re-encoding: fragmented MP4 (PyAV remux) or raw Annex-B.

Both writers take the hub's `AccessUnit`s in decode order, start at an IDR that
carries SPS+PPS, and count frames, bytes and camera time. They run in the
recorder's writer thread, never on the event loop. A write error (disk full...)
is raised as the `OSError` it is; what was written before stays playable
(`repair()` trims an MP4's torn last fragment; the .h264 writer truncates a
half-written access unit itself).

A change of resolution or profile in the stream raises `StreamChanged` before
anything of the new stream is written: the recorder then ends this file and
continues in a new one (see recordings/recorder.py).
"""

from __future__ import annotations

import logging
import os
import struct
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from streaming.media.h264.nal import NalType, annexb_join, nal_unit_spans
from streaming.media.h264.sps import SpsError, parse_sps
from streaming.media.types import AccessUnit

log = logging.getLogger("petcam.recorder")

TICKS = 90_000  # MP4 track time base: 90 kHz, like RTP
TIME_BASE = Fraction(1, TICKS)
DEFAULT_FRAME_TICKS = TICKS // 30  # the last frame's duration when only one frame is known
FSYNC_INTERVAL = 1.0  # s: fsync at an IDR at most this often (power loss keeps the last fragments)
MP4_OPTIONS = {
    # fragment at each keyframe, moov up front (no seek back at close), moof-relative offsets
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    # write every finished fragment to the file at once: without it the whole recording sat
    # in FFmpeg's I/O buffer until close (found while testing), and a crash lost it all
    "flush_packets": "1",
}


class StreamError(Exception):
    """The access units cannot start or continue a file (no IDR / no parameter sets)."""


@dataclass(frozen=True)
class StreamInfo:
    """What an IDR's SPS says about the stream; a file holds one of these."""

    width: int
    height: int
    profile_level_id: str
    sps: bytes  # NAL unit, no start code
    pps: bytes

    def describe(self) -> str:
        return f"{self.width}x{self.height} ({self.profile_level_id})"

    def same_stream(self, other: StreamInfo) -> bool:
        return (self.width, self.height, self.profile_level_id) == (
            other.width, other.height, other.profile_level_id)


class StreamChanged(Exception):  # noqa: N818 - a signal, not a failure
    """The next IDR belongs to a different stream (resolution or profile): end the file."""

    def __init__(self, old: StreamInfo, new: StreamInfo) -> None:
        super().__init__(f"the stream changed from {old.describe()} to {new.describe()}")
        self.old = old
        self.new = new


def parameter_sets(data: bytes) -> tuple[bytes | None, bytes | None, bool]:
    """(SPS, PPS, both in front of the first IDR slice) of an access unit's Annex-B bytes."""
    sps = pps = None
    for start, end in nal_unit_spans(data):
        kind = data[start] & 0x1F
        if kind == NalType.SPS and sps is None:
            sps = data[start:end]
        elif kind == NalType.PPS and pps is None:
            pps = data[start:end]
        elif kind == NalType.IDR:
            return sps, pps, sps is not None and pps is not None
    return sps, pps, False


def stream_info(sps: bytes, pps: bytes) -> StreamInfo:
    try:
        info = parse_sps(sps)
    except SpsError as exc:
        raise StreamError(f"unreadable SPS: {exc}") from exc
    return StreamInfo(info.width, info.height, info.profile_level_id, sps, pps)


class _Clock:
    """90 kHz timestamps from camera seconds, relative to the first frame, strictly rising.

    A camera clock that goes backwards (or repeats) is rebased so the file's timeline
    continues one frame later; real gaps (camera paused) are kept as they are.
    """

    def __init__(self) -> None:
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.first_pts = 0
        self.last_pts = 0
        self.last_interval = 0  # ticks between the two latest frames
        self._offset = 0  # ticks added after a rebase

    def pts(self, ts: float) -> int:
        if self.first_ts is None:
            self.first_ts = self.last_ts = ts
            return 0
        pts = round((ts - self.first_ts) * TICKS) + self._offset
        if pts <= self.last_pts:
            wanted = self.last_pts + (self.last_interval or DEFAULT_FRAME_TICKS)
            self._offset += wanted - pts
            pts = wanted
        self.last_interval = pts - self.last_pts
        self.last_pts, self.last_ts = pts, ts
        return pts

    @property
    def frame_ticks(self) -> int:
        """Duration given to the newest frame: the interval before it (unknown until the next)."""
        return self.last_interval or DEFAULT_FRAME_TICKS

    @property
    def duration(self) -> float:
        """Seconds the file plays: first frame to last, plus the last frame's duration."""
        if self.first_ts is None:
            return 0.0
        return (self.last_pts + self.frame_ticks) / TICKS


class FileWriter:
    """Common part: stream checks, frame/time counters, fsync pacing."""

    format = ""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.info: StreamInfo | None = None
        self.frames = 0
        self.payload_bytes = 0  # access-unit bytes handed to the file
        self.first_wall: float | None = None  # wall-clock time of the first frame
        self.first_frame_number: int | None = None
        self.last_frame_number: int | None = None
        self.gaps = 0  # frame-number discontinuities
        self.skipped_before_idr = 0
        self.parameter_sets_added = 0
        self.closed = False
        self._clock = _Clock()
        self._last_fsync = 0.0

    # --- to implement --------------------------------------------------------------------

    def create(self) -> None:
        """Create the (empty) file now, so a bad directory or full disk fails the start."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "xb"):  # never overwrite
            pass

    def _begin(self, info: StreamInfo) -> None:
        raise NotImplementedError

    def _write(self, data: bytes, pts: int, is_idr: bool) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def _fsync(self) -> None:
        raise NotImplementedError

    # --- shared ----------------------------------------------------------------------------

    @property
    def duration(self) -> float:
        return self._clock.duration

    @property
    def first_timestamp(self) -> float | None:
        """Camera time of the first frame written: the file's time zero."""
        return self._clock.first_ts

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def write(self, au: AccessUnit) -> None:
        """Append one access unit. Raises StreamChanged (nothing written), OSError, StreamError."""
        data = au.data
        if au.is_idr:
            sps, pps, in_front = parameter_sets(data)
            if not in_front:
                # The processor guarantees SPS+PPS before every IDR; repair rather than trust.
                if self.info is None:
                    raise StreamError("the first IDR carries no SPS/PPS")
                data = annexb_join((self.info.sps, self.info.pps)) + data
                sps, pps = self.info.sps, self.info.pps
                self.parameter_sets_added += 1
            if self.info is None or sps != self.info.sps or pps != self.info.pps:
                info = stream_info(sps, pps)
                if self.info is None:
                    self._begin(info)
                elif not info.same_stream(self.info):
                    raise StreamChanged(self.info, info)
                self.info = info  # same picture, new parameter set bytes: in-band is fine
        elif self.info is None:
            self.skipped_before_idr += 1  # not decodable without its IDR
            return
        pts = self._clock.pts(au.timestamp)
        self._write(data, pts, au.is_idr)
        if self.frames == 0:
            self.first_wall = time.time() - (time.clock_gettime(time.CLOCK_MONOTONIC)
                                             - au.timestamp)
            self.first_frame_number = au.frame_number
        elif au.frame_number != (self.last_frame_number or 0) + 1:
            self.gaps += 1
        self.last_frame_number = au.frame_number
        self.frames += 1
        self.payload_bytes += len(data)
        if au.is_idr:
            now = time.monotonic()
            if now - self._last_fsync >= FSYNC_INTERVAL:
                self._last_fsync = now
                self._fsync()

    def close(self) -> None:
        """Finish the file. Idempotent; on error the file is left as repairable as it is."""
        if self.closed:
            return
        self.closed = True
        self._close()


class H264FileWriter(FileWriter):
    """Raw Annex-B: the access units exactly as the camera sent them (SPS+PPS before IDRs)."""

    format = "h264"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._fd: int | None = None
        self._good = 0  # bytes of whole access units in the file

    def _begin(self, info: StreamInfo) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)

    def _write(self, data: bytes, pts: int, is_idr: bool) -> None:
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            # A torn access unit would be a decode error at the end: keep whole ones only.
            try:
                os.ftruncate(self._fd, self._good)
            except OSError:
                log.warning("could not trim %s after a write error", self.path, exc_info=True)
            raise
        self._good += len(data)

    def _fsync(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


class Mp4FileWriter(FileWriter):
    """Fragmented MP4 by remuxing: one fragment per GOP, written to the file as it completes.

    The stream's SPS+PPS go in as Annex-B extradata (FFmpeg's mp4 muxer turns them into
    the avcC box and converts each packet to length-prefixed NAL units; the in-band
    parameter sets stay in the samples). Timestamps: 90 kHz from the camera clock;
    FFmpeg gives each sample the exact time to the next one, so only the very last
    frame's duration is an estimate (the interval before it).
    """

    format = "mp4"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._container = None
        self._stream = None
        self._sync_fd: int | None = None  # read-only fd on the same file, for fsync

    def _begin(self, info: StreamInfo) -> None:
        container = av.open(str(self.path), "w", format="mp4", options=dict(MP4_OPTIONS))
        try:
            stream = container.add_stream("h264")
            stream.width, stream.height = info.width, info.height
            stream.time_base = TIME_BASE
            stream.codec_context.extradata = annexb_join((info.sps, info.pps))
        except Exception:
            container.close()
            raise
        self._container, self._stream = container, stream
        self._sync_fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)

    def _write(self, data: bytes, pts: int, is_idr: bool) -> None:
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.time_base = TIME_BASE
        packet.pts = packet.dts = pts
        packet.duration = self._clock.frame_ticks
        packet.is_keyframe = is_idr
        self._container.mux(packet)

    def _fsync(self) -> None:
        if self._sync_fd is not None:
            os.fsync(self._sync_fd)

    def _close(self) -> None:
        container, self._container = self._container, None
        try:
            if container is not None:
                container.close()  # writes the last fragment (+ mfra index)
            self._fsync()
        finally:
            if self._sync_fd is not None:
                os.close(self._sync_fd)
                self._sync_fd = None


WRITERS: dict[str, type[FileWriter]] = {"mp4": Mp4FileWriter, "h264": H264FileWriter}


def make_writer(fmt: str, path: Path) -> FileWriter:
    try:
        return WRITERS[fmt](path)
    except KeyError:
        raise ValueError(f"unknown recording format {fmt!r}") from None


# --- after a crash or a write error: make the file clean, then read what it holds -------------


def repair_mp4(path: Path) -> int:
    """Trim a fragmented MP4 to its last complete fragment; returns the bytes removed.

    Walks the top-level boxes: a box that runs past the end of the file, or a moof
    without its mdat, is the torn tail of an interrupted write.
    """
    size = path.stat().st_size
    keep = pos = 0
    with open(path, "rb") as f:
        while pos + 8 <= size:
            f.seek(pos)
            header = f.read(16)
            box_size, kind = struct.unpack(">I4s", header[:8])
            if box_size == 1 and len(header) >= 16:
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:
                box_size = size - pos  # "to the end of the file"
            if box_size < 8 or pos + box_size > size:
                break
            pos += box_size
            if kind != b"moof":  # a moof is only whole together with the mdat after it
                keep = pos
    if keep < size:
        with open(path, "r+b") as f:
            f.truncate(keep)
    return size - keep


@dataclass(frozen=True)
class ProbeResult:
    frame_count: int
    duration: float | None  # None when the file has no timestamps (raw .h264)
    size: int
    width: int | None
    height: int | None


def probe_file(path: Path, fmt: str) -> ProbeResult:
    """Count what a file holds by demuxing it (no decoding)."""
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        return ProbeResult(0, 0.0 if fmt == "mp4" else None, 0, None, None)
    frames = 0
    first = end = None
    width = height = None
    try:
        with av.open(str(path), format="mp4" if fmt == "mp4" else "h264") as container:
            stream = container.streams.video[0]
            width, height = stream.codec_context.width or None, stream.codec_context.height or None
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                frames += 1
                if packet.pts is not None and fmt == "mp4":
                    start = packet.pts * packet.time_base
                    first = start if first is None else min(first, start)
                    stop = start + (packet.duration or 0) * packet.time_base
                    end = stop if end is None else max(end, stop)
    except (av.error.FFmpegError, IndexError) as exc:
        log.warning("%s: read %d frames, then: %s", path, frames, exc)
    duration = float(end - first) if first is not None and end is not None else None
    if fmt == "mp4" and duration is None:
        duration = 0.0
    return ProbeResult(frames, duration, size, width, height)
