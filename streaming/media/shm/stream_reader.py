"""Reads committed H.264 frames from the camera daemon's stream segment.

The daemon bumps write_index *before* it copies a slot, and nothing marks the
end of the copy. So the only proof that the slot of index i is complete is
that write_index has moved past i (the single writer finished i before it
started i+1); the slot stays intact until write_index reaches i+30. The reader
therefore yields index i once write_index > i, re-checks write_index after
copying, and discards the copy if the writer lapped it. It never guesses.

Waiting for the next index costs one frame interval. When the writer's
threads are visible in /proc, WriterProbe proves the newest slot complete as
soon as the writer is asleep again (see shm_writer_probe), so the newest
frame is yielded about one slot-copy time after the bump.

Nobody waits for a frame while the camera has no viewer and no recording
(`demand` says so): then the reader skips the probe and polls once a little
after the next index is due (FramePacer.relaxed_delay), a frame later but at
a fraction of the wake-ups and /proc reads; the GOP cache is still filled, a
frame behind at most, and the first poll after a sink appears is eager again.

Every byte is copied with pread on the segment's fd, never through a mapping:
a segment shrunk under us (ftruncate) then gives a short read, counted as a
"truncated" skip, and the reader re-attaches once the segment is whole again,
instead of a SIGBUS that kills the process (see segment.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from streaming.media.burst_log import BurstLog
from streaming.media.shm import segment as shm_segment
from streaming.media.shm.layout import (
    BUFFER_HEADER,
    FORMAT_H264,
    FRAME_DATA_CAPACITY,
    FRAME_DATA_OFFSET,
    FRAME_HEADER_SIZE,
    KNOWN_FORMATS,
    RING_SLOTS,
    SHARED_FRAME_BUFFER_SIZE,
    WRITE_INDEX_OFFSET,
    FrameHeader,
    slot_for_index,
    slot_offset,
)
from streaming.media.shm.pacer import FramePacer
from streaming.media.shm.segment import SegmentTruncated
from streaming.media.shm.writer_probe import WriterProbe

log = logging.getLogger("petcam.shm")

U32 = 1 << 32
# Reads of the buffer header that may disagree before we give up on this poll.
HEADER_READ_TRIES = 4

# Reader states, as shown on the live page and /health.
WAITING = "waiting"  # segment absent or unusable: camera daemon not running
STALLED = "stalled"  # segment present, but no new frame for a while
LIVE = "live"


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One complete access unit as the daemon wrote it."""

    header: FrameHeader
    data: bytes
    write_index: int
    read_ns: int  # CLOCK_MONOTONIC when the reader finished copying it


@dataclass
class ReaderStats:
    state: str = WAITING
    frames_read: int = 0
    gaps: int = 0  # times frame_number jumped
    frames_missed: int = 0  # frame numbers skipped over by those jumps
    overwritten: int = 0  # copies discarded because the writer lapped them
    skipped: dict[str, int] = field(default_factory=dict)  # bad slots by reason
    attaches: int = 0
    restarts: int = 0  # writer reset or segment recreated
    early_commits: int = 0  # newest slots proven complete by the writer probe
    frame_interval_ms: int = 0
    last_frame_ns: int = 0
    last_error: str = ""  # why the segment is unusable right now ("" when attached)

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state,
            "frames_read": self.frames_read,
            "gaps": self.gaps,
            "frames_missed": self.frames_missed,
            "overwritten": self.overwritten,
            "skipped": dict(self.skipped),
            "attaches": self.attaches,
            "restarts": self.restarts,
            "early_commits": self.early_commits,
            "frame_interval_ms": self.frame_interval_ms,
        }


def _ahead(a: int, b: int) -> int:
    """How far write_index `a` is ahead of `b`, modulo 2**32 (negative: behind)."""
    d = (a - b) % U32
    return d - U32 if d >= U32 // 2 else d


def _start_index(write_index: int) -> int:
    """Index of the newest committed slot (the writer is still on write_index)."""
    return write_index - 1 if write_index >= 2 else 1


def looks_like_annexb(data: bytes) -> bool:
    return data[:3] == b"\0\0\1" or data[:4] == b"\0\0\0\1"


class FrameReader:
    """Polls one stream segment; attaches, re-attaches and validates by itself."""

    def __init__(self, name: str, *, backoff_initial: float = 0.05, backoff_max: float = 2.0,
                 identity_check_interval: float = 0.25, stall_after: float = 2.0,
                 probe_writer: bool = True) -> None:
        self.name = name
        self.stats = ReaderStats()
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._backoff = backoff_initial
        self._next_attempt = 0.0
        self._check_interval = identity_check_interval
        self._next_check = 0.0
        self._stall_after = stall_after
        self._seg: shm_segment.SegmentFile | None = None
        self._header_word = b""  # last agreed (write_index, frame_interval_ms) bytes
        self._probe_writer = probe_writer
        self._probe: WriterProbe | None = None
        self.eager = True  # someone waits for frames: prove the newest slot early
        self._next_index: int | None = None  # next write_index whose slot we want
        self._early_index: int | None = None  # newest index yielded before its commit
        self._last_progress = 0.0
        self._prev_frame_number: int | None = None
        self._faults = BurstLog(log)

    # --- attachment ---------------------------------------------------------------

    @property
    def attached(self) -> bool:
        return self._seg is not None

    def _try_attach(self, now: float) -> bool:
        if now < self._next_attempt:
            return False
        try:
            self._seg = shm_segment.open_readonly(self.name, SHARED_FRAME_BUFFER_SIZE)
        except (OSError, ValueError) as exc:
            self._retry_later(now)
            if isinstance(exc, FileNotFoundError):
                self.stats.last_error = ""
                log.debug("stream segment %s absent, retry in %.2fs", self.name, self._backoff)
            else:
                self.stats.last_error = f"stream segment unusable: {exc}"
                self._faults.warning("attach", "stream segment %s unusable: %s", self.name, exc)
            return False
        self._backoff = self._backoff_initial
        self.stats.last_error = ""
        self._header_word = b""
        if self._probe_writer:
            self._probe = WriterProbe(self._seg.path, self._seg.inode)
        self._next_index = None
        self._early_index = None
        self._prev_frame_number = None
        self._last_progress = now
        self._next_check = now + self._check_interval
        self.stats.attaches += 1
        if self.stats.attaches > 1:
            self.stats.restarts += 1
        self.stats.state = STALLED
        log.info("attached to stream segment %s", self._seg.path)
        return True

    def _retry_later(self, now: float) -> None:
        self._next_attempt = now + self._backoff
        self._backoff = min(self._backoff * 2, self._backoff_max)

    def detach(self) -> None:
        if self._seg is not None:
            self._seg.close()
            self._seg = None
        self.stats.state = WAITING

    def _truncated(self, now: float, exc: SegmentTruncated) -> None:
        """The segment shrank under us: garbage like any other, counted; wait for a whole one."""
        self.stats.skipped["truncated"] = self.stats.skipped.get("truncated", 0) + 1
        self.stats.last_error = f"stream segment truncated: {exc}"
        self._faults.warning("truncated", "stream %s: segment shrank under the reader (%s); "
                             "waiting for the camera to recreate it", self.name, exc)
        self.detach()
        self._retry_later(now)

    def close(self) -> None:
        self.detach()

    # --- reading -----------------------------------------------------------------

    def poll(self) -> list[RawFrame]:
        """Every frame committed since the last call, oldest first (may be empty)."""
        now = time.monotonic()
        if self._seg is None and not self._try_attach(now):
            return []
        if now >= self._next_check:
            self._next_check = now + self._check_interval
            change = self._seg.change()
            if change == "truncated":
                self._truncated(now, SegmentTruncated(
                    f"{self._seg.path} is smaller than {SHARED_FRAME_BUFFER_SIZE} bytes"))
                return []
            if change is not None:
                log.warning("stream segment %s %s; waiting for camera", self.name, change)
                self.detach()
                self._next_attempt = now  # try at once: a restart recreates it quickly
                return []
        frames: list[RawFrame] = []
        try:
            self._poll_attached(now, frames)
        except SegmentTruncated as exc:
            self._truncated(now, exc)  # frames copied whole before it are still good
        return frames

    def _load_header(self) -> tuple[int, int] | None:
        """(write_index, frame_interval_ms), or None if the writer kept changing them.

        Read with pread, which copies with whatever loads the kernel picks (on x86-64
        `rep movsb`, or a byte loop below 8 bytes): not the single 4-byte load a torn
        write_index needs (see layout.WRITE_INDEX). So a value that differs from the last
        one is read again, and trusted once two reads in a row agree: the writer stores
        write_index with one store, so a torn copy cannot repeat.
        """
        word = self._seg.read(WRITE_INDEX_OFFSET, BUFFER_HEADER.size)
        if word != self._header_word:
            for _ in range(HEADER_READ_TRIES):
                again = self._seg.read(WRITE_INDEX_OFFSET, BUFFER_HEADER.size)
                if again == word:
                    break
                word = again
            else:
                return None
            self._header_word = word
        return BUFFER_HEADER.unpack(word)

    def _poll_attached(self, now: float, frames: list[RawFrame]) -> None:
        header = self._load_header()
        if header is None:
            return
        write_index, self.stats.frame_interval_ms = header

        if self._next_index is None:
            # Start from the newest committed frame, not the stale ring behind it.
            self._next_index = _start_index(write_index)
        behind = _ahead(write_index, self._next_index)
        if behind < 0:
            # The counter went back: the writer restarted in the same segment
            # (or has not written its first frame yet, write_index 0).
            if write_index != 0 or self._prev_frame_number is not None:
                log.warning("stream %s: write_index went back to %d; writer restarted",
                            self.name, write_index)
                self.stats.restarts += 1
            self._prev_frame_number = None
            self._early_index = None
            self._next_index = _start_index(write_index)
            behind = max(0, _ahead(write_index, self._next_index))
        if behind > RING_SLOTS - 1:
            # Fell more than a ring behind; the oldest still intact is write_index-29.
            self._next_index = (write_index - (RING_SLOTS - 1)) % U32
            behind = RING_SLOTS - 1

        for _ in range(behind):
            if self._next_index != self._early_index:  # not yielded early already
                frame = self._read_committed(self._next_index)
                if frame is not None:
                    frames.append(frame)
            self._next_index = (self._next_index + 1) % U32
        if (self._probe is not None and self.eager and write_index != 0
                and self._next_index == write_index and self._early_index != write_index
                and self._probe.writers_asleep()):
            # The newest slot, write_index itself: complete once the writer sleeps.
            self._early_index = write_index
            behind += 1
            frame = self._read_committed(write_index)
            if frame is not None:
                self.stats.early_commits += 1
                frames.append(frame)
        if behind > 0:
            self._last_progress = now
            self.stats.state = LIVE
        elif now - self._last_progress > self._stall_after and self.stats.state == LIVE:
            log.warning("stream %s: no frame for %.1fs; waiting for camera",
                        self.name, now - self._last_progress)
            self.stats.state = STALLED

    def _read_committed(self, index: int) -> RawFrame | None:
        seg = self._seg
        off = slot_offset(slot_for_index(index))
        header = FrameHeader.unpack_from(seg.read(off, FRAME_HEADER_SIZE))
        data = b""
        reason = self._reject_header(header)
        if reason is None:
            data = seg.read(off + FRAME_DATA_OFFSET, header.data_size)
        # The slot is valid only if the writer did not lap it while we copied.
        now_header = self._load_header()
        if now_header is None or _ahead(now_header[0], index) >= RING_SLOTS:
            self.stats.overwritten += 1
            self._faults.warning("overwritten", "stream %s: reader lapped by writer at index %d",
                                 self.name, index)
            return None
        self._track_frame_number(header.frame_number)
        if reason is None and not looks_like_annexb(data):
            reason = "not_annexb"
        if reason is not None:
            self.stats.skipped[reason] = self.stats.skipped.get(reason, 0) + 1
            self._faults.warning(reason, "stream %s: skipped frame %d (%s)",
                                 self.name, header.frame_number, reason)
            return None
        self.stats.frames_read += 1
        read_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        self.stats.last_frame_ns = read_ns
        return RawFrame(header, data, index, read_ns)

    @staticmethod
    def _reject_header(h: FrameHeader) -> str | None:
        if h.format != FORMAT_H264:
            return "other_format" if h.format in KNOWN_FORMATS else "unknown_format"
        if h.data_size > FRAME_DATA_CAPACITY:
            return "oversize"
        if h.data_size == 0:
            return "empty"
        return None

    def _track_frame_number(self, number: int) -> None:
        prev = self._prev_frame_number
        self._prev_frame_number = number
        if prev is None or number == prev + 1:
            return
        if number <= prev:
            log.info("stream %s: frame_number restarted at %d", self.name, number)
            return
        self.stats.gaps += 1
        self.stats.frames_missed += number - prev - 1

    def frames(self, should_stop, poll_interval: float = 0.001, pace: bool = True,
               demand: Callable[[], bool] | None = None) -> Iterator[RawFrame]:
        """Blocking generator for a reader thread; ends when should_stop() is true.

        pace: sleep until the next frame is due and poll every `poll_interval` only
        around that time (FramePacer); False polls every `poll_interval` throughout.
        demand: false while no one waits for frames (no viewer, no recording): then
        relaxed polling and no writer probe (see the module docstring).
        """
        pacer = FramePacer(fine_poll=poll_interval) if pace else None
        while not should_stop():
            self.eager = demand is None or demand()
            batch = self.poll()
            if batch:
                if pacer is not None:
                    newest = batch[-1]
                    h = newest.header
                    pacer.frame_seen(h.tv_sec * 1_000_000_000 + h.tv_nsec, newest.read_ns,
                                     h.frame_number)
                yield from batch
            if not self.attached:
                time.sleep(min(self._backoff, 0.1))
            elif pacer is not None:
                now_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                delay = (pacer.next_poll_delay if self.eager else pacer.relaxed_delay)
                time.sleep(delay(now_ns, self.stats.frame_interval_ms))
            elif not batch:
                time.sleep(poll_interval)
