"""The camera daemon's shared-memory ring as a frame source (streaming/media/shm/stream_reader)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from streaming.media.shm.stream_reader import FrameReader, ReaderStats
from streaming.media.sources.base import SourceFrame


class ShmSource:
    kind = "shm"
    stop_timeout = 2.0  # polling: sees stop within a millisecond or so

    def __init__(self, segment: str, *, stall_after: float = 2.0) -> None:
        self.segment = segment
        self.reader = FrameReader(segment, stall_after=stall_after)
        # Whether anyone waits for frames now (the pipeline: its hub has sinks).
        self.demand: Callable[[], bool] | None = None

    @property
    def stats(self) -> ReaderStats:
        return self.reader.stats

    @property
    def state(self) -> str:
        return self.reader.stats.state

    def frames(self, should_stop: Callable[[], bool]) -> Iterator[SourceFrame]:
        for raw in self.reader.frames(should_stop, demand=self.demand):
            h = raw.header
            yield SourceFrame(raw.data, h.frame_number, h.timestamp, h.width, h.height,
                              h.camera_id)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "segment": self.segment, "attached": self.reader.attached,
                "reconnects": self.reader.stats.restarts,
                "last_error": self.reader.stats.last_error}

    def close(self) -> None:
        self.reader.close()
