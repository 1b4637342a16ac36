"""Rate-limited warnings: the first fault of a burst is logged, repeats are counted."""

from __future__ import annotations

import logging
import time


class BurstLog:
    """Logs a reason at most once per `every` seconds, with how many were folded in."""

    def __init__(self, logger: logging.Logger, every: float = 10.0) -> None:
        self._logger = logger
        self._every = every
        self._last: dict[str, float] = {}
        self._folded: dict[str, int] = {}

    def warning(self, reason: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(reason)
        if last is not None and now - last < self._every:
            self._folded[reason] = self._folded.get(reason, 0) + 1
            return
        folded = self._folded.pop(reason, 0)
        self._last[reason] = now
        if len(self._last) > 256:  # reasons per sink/session come and go: forget quiet ones
            for old in [r for r, t in self._last.items()
                        if now - t >= self._every and r not in self._folded]:
                del self._last[old]
        suffix = f" ({folded} more since last report)" if folded else ""
        self._logger.warning(message + suffix, *args)
