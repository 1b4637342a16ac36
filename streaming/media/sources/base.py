"""What every source is and yields: SourceFrame, the FrameSource protocol, an unusable source."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class SourceFrame:
    """One access unit as a source delivers it."""

    data: bytes  # Annex-B
    frame_number: int
    timestamp: float  # seconds, time.monotonic()'s clock (CLOCK_MONOTONIC)
    width: int | None  # what the source says, until the SPS is parsed
    height: int | None
    camera_id: int | None = None  # the board's day (0) / night (1) camera; shm only


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
