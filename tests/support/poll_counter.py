"""Counts how often a shared-memory FrameReader polls (tests and the reader benchmark)."""

from __future__ import annotations

from typing import Any


class PollCounter:
    """Wraps `reader.poll`: `count` is the number of polls since it was attached."""

    def __init__(self, reader: Any) -> None:
        self.count = 0
        self._poll = reader.poll
        reader.poll = self

    def __call__(self) -> Any:
        self.count += 1
        return self._poll()
