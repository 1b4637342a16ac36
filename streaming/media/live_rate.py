"""Frame rate and bitrate over a sliding one-second window."""

from __future__ import annotations

from collections import deque


class LiveRate:
    def __init__(self, window: float = 1.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, t: float, size: int) -> None:
        self._samples.append((t, size))
        self._trim(t)

    def _trim(self, now: float) -> None:
        while self._samples and now - self._samples[0][0] > self.window:
            self._samples.popleft()

    def rates(self, now: float) -> tuple[float, float]:
        """(frames per second, bits per second) over the window ending at `now`."""
        self._trim(now)
        n = len(self._samples)
        if n < 2:
            return 0.0, 0.0
        span = self._samples[-1][0] - self._samples[0][0]
        if span <= 0:
            return 0.0, 0.0
        fps = (n - 1) / span
        bits = sum(size for _, size in list(self._samples)[1:]) * 8
        return fps, bits / span
