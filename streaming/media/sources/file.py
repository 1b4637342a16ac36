"""A local video file as a camera, looped at its real frame rate: for demos and tests.

Frames are paced by their pts (the file's own timing), and the file is read
again from the start when it ends; the timestamps keep going up across the
loop (loop k starts where loop k-1 ended), so viewers and recordings see one
continuous stream. Each loop starts at the file's first keyframe.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from streaming.media.sources.av_source import AvSource
from streaming.media.sources.base import SourceFrame
from streaming.media.sources.urls import SourceError, SourceSpec


class FileSource(AvSource):
    kind = "file"

    def __init__(self, camera: str, spec: SourceSpec, **kwargs: Any) -> None:
        # A local file answers at once: a short timeout only guards odd paths (a FIFO...).
        kwargs.setdefault("read_timeout", 3.0)
        super().__init__(camera, **kwargs)
        self.path = spec.url
        self.loops = 0  # times the file was played to its end

    @property
    def label(self) -> str:
        return f"file {self.path}"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "path": self.path, "loops": self.loops}

    def _session(self, should_stop: Callable[[], bool]) -> Iterator[SourceFrame]:
        offset = 0.0  # stream time at which this loop starts
        first_open = True
        while not should_stop():
            container = self._open(self.path, {})
            try:
                stream = self._video_stream(container)
                if first_open:
                    self._connected(stream)
                    self.timeline.reset()
                    first_open = False
                interval = self._interval(stream)
                first: float | None = None
                length = 0.0  # of this loop, in stream seconds
                count = 0
                for data, pts, keyframe in self._packets(container, stream):
                    if first is None and not keyframe:
                        self._skip("before_keyframe")  # P-frames of a GOP cut off at the start
                        continue
                    if pts is None:
                        pts = (first or 0.0) + length
                    first = pts if first is None else first
                    rel = offset + pts - first
                    if not self._sleep_until(self.timeline.due(rel, time.monotonic()),
                                             should_stop):
                        return
                    yield self._frame(data, self.timeline.stamp(rel, time.monotonic()), stream)
                    count += 1
                    length = max(length, pts - first + interval)
            finally:
                container.close()
            if count == 0:
                raise SourceError("no H.264 frames in the file")
            offset += length
            self.loops += 1
