"""Retry delays for sources that can go away: exponential, jittered, capped, reset on success."""

from __future__ import annotations

import random


class Backoff:
    """Delay before the next attempt: initial * factor**failures, capped, with jitter.

    The jitter (delay * 0.8..1.2) keeps several cameras behind one flaky router
    from reconnecting in lockstep.
    """

    def __init__(self, initial: float = 0.5, maximum: float = 15.0, factor: float = 2.0,
                 jitter: float = 0.2, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The delay after one more failure."""
        base = min(self.maximum, self.initial * self.factor ** min(self.failures, 30))
        self.failures += 1
        spread = base * self.jitter
        return min(self.maximum, max(0.0, base + self._rng.uniform(-spread, spread)))

    def reset(self) -> None:
        self.failures = 0
