"""A recording's detection track: every detector result inside it, in recording seconds.

The live page draws each frame's own detector result; playback should too, so the
recorder keeps every result that falls inside a recording (not the once-a-second
history samples) in a JSON Lines sidecar next to the file (`<stem>.detections.jsonl`):

    {"t": 1.234, "f": 1234, "d": [["cat", 0.91, x, y, w, h], ...]}

`t` is the result's camera timestamp minus the recording's first frame's camera
timestamp: the same clock as the file's presentation times, so a player finds the
result of the frame on screen by time alone. Results with nothing detected are kept
only when they end a sighting (the first empty one after boxes): enough to say "gone"
without a line per empty frame. A detector that stops simply adds no lines.

Lines are gathered on the worker's loop (`add`) and appended by `flush`, which the
recorder calls from a thread at each checkpoint and at the end. Readers skip a torn
last line (a crash mid-write). No Django and no media code here: the recorder writes
with it and the web tier's playback API reads with it.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the web tier reads tracks without loading the media core
    from streaming.media.shm.layout import DetectionResult

# A result may come a little before the first frame's stamp (the detector ran on the
# frame before): not inside the recording.
EARLY_TOLERANCE = 0.0005
MAX_PENDING = 20_000  # results waiting for the first frame or a flush (~10 min at 30/s)


@dataclass(frozen=True)
class TrackEntry:
    time: float  # recording seconds
    frame_number: int
    detections: tuple[tuple[str, float, int, int, int, int], ...]

    def to_json(self) -> dict:
        return {"time": self.time, "frame_number": self.frame_number,
                "detections": [{"class_name": c, "confidence": round(conf, 4),
                                "bbox": {"x": x, "y": y, "w": w, "h": h}}
                               for c, conf, x, y, w, h in self.detections]}


class DetectionTrack:
    """Collects one recording's detector results and appends them to its sidecar."""

    def __init__(self, path: Path, first_timestamp: Callable[[], float | None]) -> None:
        self.path = Path(path)
        self.first_timestamp = first_timestamp  # camera time of the file's first frame
        self.written = 0  # lines in the file
        self.dropped = 0  # results before the first frame, or over MAX_PENDING
        self._pending: list[DetectionResult] = []
        self._lock = threading.Lock()
        self._last_had_boxes = False
        self._last_frame: int | None = None

    def add(self, result: DetectionResult) -> None:
        """On the worker's loop, for each detector result while the recording runs."""
        if result.frame_number == self._last_frame:
            return  # the same result again (a re-read record): one line is enough
        self._last_frame = result.frame_number
        has_boxes = bool(result.detections)
        if not has_boxes and not self._last_had_boxes:
            return  # "still nothing": no line
        self._last_had_boxes = has_boxes
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                self.dropped += 1
                return
            self._pending.append(result)

    def seed(self, results: Iterable[DetectionResult]) -> None:
        """Results from just before the recording opened (its first GOP or pre-roll may be
        older than the click); those before the first frame are dropped at flush."""
        for result in results:
            self.add(result)

    def flush(self) -> int:
        """In a thread: append what is pending (once the first frame is known). Lines."""
        first = self.first_timestamp()
        if first is None:
            return 0
        with self._lock:
            batch, self._pending = self._pending, []
        lines = []
        for result in batch:
            t = result.timestamp - first
            if t < -EARLY_TOLERANCE:
                self.dropped += 1
                continue
            lines.append(json.dumps(
                {"t": round(max(0.0, t), 4), "f": result.frame_number,
                 "d": [[d.class_name, round(d.confidence, 4), d.x, d.y, d.w, d.h]
                       for d in result.detections]}, separators=(",", ":")))
        if lines:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
            self.written += len(lines)
        return len(lines)


# --- reading ----------------------------------------------------------------------------------


def _entry(line: str) -> TrackEntry | None:
    try:
        raw = json.loads(line)
        t, frame = float(raw["t"]), int(raw["f"])
        dets = tuple((str(c), float(conf), int(x), int(y), int(w), int(h))
                     for c, conf, x, y, w, h in raw["d"])
    except (ValueError, KeyError, TypeError):
        return None
    return TrackEntry(t, frame, dets) if math.isfinite(t) else None


def read_track(path: Path) -> list[TrackEntry]:
    """Entries in time order; unreadable lines (a torn last line) are skipped."""
    with open(path, encoding="utf-8", errors="replace") as f:
        entries = [e for e in map(_entry, f) if e is not None]
    entries.sort(key=lambda e: e.time)
    return entries


def detector_interval(entries: list[TrackEntry], default: float = 0.1) -> float:
    """The detector's period, from the track: the median gap between consecutive results
    (gaps where the pet was away are the long tail, not the median)."""
    gaps = sorted(b.time - a.time for a, b in zip(entries, entries[1:], strict=False)
                  if b.time > a.time)
    if not gaps:
        return default
    return min(5.0, max(1 / 120, gaps[len(gaps) // 2]))
