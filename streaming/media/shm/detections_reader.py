"""Reads the detector daemon's LatestDetectionResult segment; drops torn or impossible records.

The detector writes the record, then bumps `version`. A new version means a
complete record; we copy the whole record (version included) twice and keep it
only if both copies agree (a 552-byte write is over in well under a
microsecond, so a write overlapping our copies shows up as a difference; so
does a version torn by the copy, since pread is not one 4-byte load).
Copies are pread(2)s on the fd, never a mapping: a segment shrunk under us is
a short read, dropped as "truncated" and re-attached, not a SIGBUS.
We do not wait on the /proc writer probe here: a result skipped while the
daemon is busy would be lost, since only the latest result is kept.
Then the record must make sense: 0..10 detections, finite confidences in
[0, 1], non-empty boxes inside the video frame, readable class names.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from streaming.media.burst_log import BurstLog
from streaming.media.shm import segment as shm_segment
from streaming.media.shm.layout import (
    DETECTION_SIZE,
    DETECTIONS_HEADER,
    DETECTIONS_OFFSET,
    LATEST_DETECTION_RESULT_SIZE,
    MAX_DETECTIONS,
    VERSION,
    VERSION_OFFSET,
    Detection,
    DetectionResult,
)
from streaming.media.shm.segment import SegmentTruncated

log = logging.getLogger("petcam.detections")


@dataclass
class DetectionReaderStats:
    state: str = "waiting"
    results: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # by reason
    attaches: int = 0
    last_result_ns: int = 0
    last_error: str = ""  # why the segment is unusable right now

    def as_dict(self) -> dict:
        return {"state": self.state, "results": self.results, "dropped": dict(self.dropped),
                "attaches": self.attaches, "last_error": self.last_error}


def check_result(result: DetectionResult, frame_width: int | None,
                 frame_height: int | None) -> str | None:
    """Why this record is impossible, or None when it is plausible."""
    for det in result.detections:
        if not det.class_name or not det.class_name.isprintable():
            return "bad_class_name"
        if not math.isfinite(det.confidence) or not 0.0 <= det.confidence <= 1.0:
            return "bad_confidence"
        if det.w <= 0 or det.h <= 0 or det.x < 0 or det.y < 0:
            return "box_outside_frame"
        if frame_width and frame_height and (det.x + det.w > frame_width
                                             or det.y + det.h > frame_height):
            return "box_outside_frame"
    return None


class DetectionReader:
    """Polls one detections segment; attaches and re-attaches by itself."""

    def __init__(self, name: str, *, backoff_max: float = 2.0,
                 identity_check_interval: float = 0.5) -> None:
        self.name = name
        self.stats = DetectionReaderStats()
        self._seg: shm_segment.SegmentFile | None = None
        self._version: int | None = None
        self._backoff = 0.05
        self._backoff_max = backoff_max
        self._next_attempt = 0.0
        self._check_interval = identity_check_interval
        self._next_check = 0.0
        self._faults = BurstLog(log)

    @property
    def attached(self) -> bool:
        return self._seg is not None

    def _attach(self, now: float) -> bool:
        if now < self._next_attempt:
            return False
        try:
            self._seg = shm_segment.open_readonly(self.name, LATEST_DETECTION_RESULT_SIZE)
            record = self._seg.read(0, LATEST_DETECTION_RESULT_SIZE)
        except (OSError, ValueError) as exc:
            self.close()
            self._retry_later(now)
            if isinstance(exc, FileNotFoundError):
                self.stats.last_error = ""
            else:
                self.stats.last_error = f"detections segment unusable: {exc}"
                self._faults.warning("attach", "detections segment %s unusable: %s",
                                     self.name, exc)
            return False
        self._backoff = 0.05
        self.stats.last_error = ""
        self._version = VERSION.unpack_from(record, VERSION_OFFSET)[0]  # only newer ones
        self._next_check = now + self._check_interval
        self.stats.attaches += 1
        self.stats.state = "attached"
        log.info("attached to detections segment %s", self._seg.path)
        return True

    def _retry_later(self, now: float) -> None:
        self._next_attempt = now + self._backoff
        self._backoff = min(self._backoff * 2, self._backoff_max)

    def close(self) -> None:
        if self._seg is not None:
            self._seg.close()
            self._seg = None
        self.stats.state = "waiting"

    def _truncated(self, now: float, exc: SegmentTruncated) -> None:
        """The segment shrank under us: counted like other garbage; wait for a whole one."""
        self.stats.dropped["truncated"] = self.stats.dropped.get("truncated", 0) + 1
        self.stats.last_error = f"detections segment truncated: {exc}"
        self._faults.warning("truncated", "detections %s: segment shrank under the reader "
                             "(%s); waiting for the detector to recreate it", self.name, exc)
        self.close()
        self._retry_later(now)

    def poll(self, frame_width: int | None = None,
             frame_height: int | None = None) -> DetectionResult | None:
        """The newest result if there is a new, intact and plausible one."""
        now = time.monotonic()
        if self._seg is None and not self._attach(now):
            return None
        if now >= self._next_check:
            self._next_check = now + self._check_interval
            change = self._seg.change()
            if change == "truncated":
                self._truncated(now, SegmentTruncated(
                    f"{self._seg.path} is smaller than {LATEST_DETECTION_RESULT_SIZE} bytes"))
                return None
            if change is not None:
                log.warning("detections segment %s %s", self.name, change)
                self.close()
                self._next_attempt = now
                return None
        try:
            record = self._seg.read(0, LATEST_DETECTION_RESULT_SIZE)
            version = VERSION.unpack_from(record, VERSION_OFFSET)[0]
            if version == self._version:
                return None
            again = self._seg.read(0, LATEST_DETECTION_RESULT_SIZE)
        except SegmentTruncated as exc:
            self._truncated(now, exc)
            return None
        if again != record:
            self.stats.dropped["torn_retry"] = self.stats.dropped.get("torn_retry", 0) + 1
            return None  # overwritten while we copied: read it again on the next poll
        body = record[:VERSION_OFFSET]
        skipped = (version - self._version - 1) & 0xFFFFFFFF
        if 0 < skipped < 1_000_000:  # results the detector wrote while we were away
            self.stats.dropped["overwritten"] = self.stats.dropped.get("overwritten", 0) + skipped
        self._version = version
        result = self._decode(body, version)
        if result is None:
            return None
        reason = check_result(result, frame_width, frame_height)
        if reason:
            return self._drop(reason, result.frame_number)
        self.stats.results += 1
        self.stats.last_result_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        return result

    def _decode(self, body: bytes, version: int) -> DetectionResult | None:
        frame_number, tv_sec, tv_nsec, count = DETECTIONS_HEADER.unpack_from(body, 0)
        if not 0 <= count <= MAX_DETECTIONS:
            return self._drop("bad_count", frame_number)
        if tv_nsec < 0 or tv_nsec >= 1_000_000_000 or tv_sec < 0:
            return self._drop("bad_timestamp", frame_number)
        detections = tuple(Detection.unpack_from(body, DETECTIONS_OFFSET + i * DETECTION_SIZE)
                           for i in range(count))
        return DetectionResult(frame_number, tv_sec, tv_nsec, detections, version)

    def _drop(self, reason: str, frame_number: int) -> None:
        self.stats.dropped[reason] = self.stats.dropped.get(reason, 0) + 1
        self._faults.warning(reason, "detections %s: dropped result for frame %d (%s)",
                             self.name, frame_number, reason)
        return None
