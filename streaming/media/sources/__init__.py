"""Where a camera's H.264 comes from: the daemon's shared memory, an RTSP camera or a file.

Every source yields Annex-B access units with a timestamp in seconds on
time.monotonic()'s clock, and keeps figures of the same shape (state
live/waiting/stalled, frames_read, attaches, restarts, ...), so the
pipeline, processor, hub, viewers, recorder and metrics treat them alike.
A source that starts a new stream (camera restart, reconnect) bumps
`stats.restarts`: the pipeline then forgets the old SPS/PPS and GOP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from streaming.media.sources.urls import (
    FILE,
    RTSP,
    SourceError,
    SourceSpec,
    mask_credentials,
    parse_source,
)

log = logging.getLogger("petcam.source")

__all__ = ["FrameSource", "SourceError", "SourceFrame", "SourceSpec", "mask_credentials",
           "open_source", "parse_source"]


@dataclass(frozen=True, slots=True)
class SourceFrame:
    """One access unit as a source delivers it."""

    data: bytes  # Annex-B
    frame_number: int
    timestamp: float  # seconds, time.monotonic()'s clock (CLOCK_MONOTONIC)
    width: int | None  # what the source says, until the SPS is parsed
    height: int | None


class SourceStats(Protocol):
    state: str
    frames_read: int
    restarts: int

    def as_dict(self) -> dict[str, object]: ...


class FrameSource(Protocol):
    kind: str
    stats: SourceStats
    stop_timeout: float  # longest a blocked read can keep frames() from seeing stop

    @property
    def state(self) -> str: ...

    def frames(self, should_stop: Callable[[], bool]) -> Iterator[SourceFrame]: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class UnusableSource:
    """A camera whose source string is wrong (a row saved around the validators): it
    stays `waiting` with the reason in its status instead of stopping the worker."""

    kind = "invalid"
    stop_timeout = 1.0

    def __init__(self, error: str) -> None:
        self.error = error
        self.stats = _IdleStats()

    @property
    def state(self) -> str:
        return "waiting"

    def frames(self, should_stop: Callable[[], bool]) -> Iterator[SourceFrame]:
        while not should_stop():
            time.sleep(0.1)
        yield from ()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "connected": False, "reconnects": 0,
                "last_error": self.error, "retry_in_s": None}

    def close(self) -> None:
        pass


@dataclass
class _IdleStats:
    state: str = "waiting"
    frames_read: int = 0
    restarts: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"state": self.state, "frames_read": 0, "attaches": 0, "restarts": 0,
                "errors": 1, "skipped": {}, "frame_interval_ms": 0, "gaps": 0,
                "frames_missed": 0, "overwritten": 0, "early_commits": 0}


def open_source(camera: str, source: str, stream_segment: str, *,
                stall_after: float = 2.0) -> FrameSource:
    """The source for a camera's `source` string ("" = shared memory `stream_segment`)."""
    try:
        spec = parse_source(source)
    except SourceError as exc:
        log.error("camera %s: unusable source %s: %s", camera, mask_credentials(source), exc)
        return UnusableSource(str(exc))
    if spec.kind == RTSP:
        from streaming.media.sources.rtsp import RtspSource

        return RtspSource(camera, spec, stall_after=stall_after)
    if spec.kind == FILE:
        from streaming.media.sources.file import FileSource

        return FileSource(camera, spec, stall_after=stall_after)
    from streaming.media.sources.shm import ShmSource

    return ShmSource(stream_segment, stall_after=stall_after)
