"""The last few seconds of a camera's H.264, whole GOPs from an IDR, for event recordings.

`PrerollBuffer` is a hub consumer: `attach(hub)` puts it among the hub's sinks,
so `Hub.publish()` hands it every access unit synchronously (no queue, no copy:
it holds references to the same `AccessUnit`s). It keeps a ring of complete
GOPs, bounded by time (just enough GOPs that the oldest starts at least
`seconds` before the newest frame) and by bytes (oldest GOPs go first; a single
GOP above the bound is abandoned until the next IDR, like the GOP cache).
`snapshot(event_ts)` returns the units from the newest IDR at or before
`event_ts - seconds`, IDR first, so a recording seeded with them is decodable
from its first frame and keeps the camera's timestamps.
"""

from __future__ import annotations

import time
from collections import deque

from streaming.media.hub import Hub
from streaming.media.types import AccessUnit


class PrerollBuffer:
    """A bounded ring of the latest GOPs of one camera."""

    def __init__(self, seconds: float = 5.0, max_bytes: int = 24 * 1024 * 1024,
                 stale_after: float = 2.0) -> None:
        self.seconds = max(0.0, float(seconds))
        self.max_bytes = max_bytes
        self.stale_after = stale_after
        self.name = "preroll"
        self.closed = False
        self._gops: deque[list[AccessUnit]] = deque()
        self._bytes = 0
        self.overflows = 0  # GOPs abandoned because one alone was above max_bytes
        self._hub: Hub | None = None

    # --- hub consumer ----------------------------------------------------------------------

    def attach(self, hub: Hub) -> None:
        self._hub = hub
        self.closed = False
        hub.sinks.add(self)  # type: ignore[arg-type]  # duck-typed: offer() and close()

    def detach(self) -> None:
        if self._hub is not None:
            self._hub.sinks.discard(self)  # type: ignore[arg-type]
        self.close()

    def offer(self, au: AccessUnit) -> None:
        """Called by Hub.publish for every unit, on the loop; O(1) amortised, never blocks."""
        if self.closed:
            return
        if self._gops and au.timestamp < self._gops[-1][-1].timestamp:
            self.clear()  # the camera clock went back (restart): old frames are not "before"
        if au.is_idr:
            self._gops.append([au])
        elif self._gops:
            self._gops[-1].append(au)
        else:
            return  # nothing decodable to extend until the next IDR
        self._bytes += len(au.data)
        self._trim(au.timestamp)

    def close(self) -> None:
        self.closed = True
        self.clear()

    # --- reading ----------------------------------------------------------------------------

    def snapshot(self, event_ts: float | None = None) -> list[AccessUnit]:
        """Units from the newest IDR at or before `event_ts - seconds` (else the oldest one
        held) to the newest unit; [] when empty or stale (camera off)."""
        if not self._gops:
            return []
        newest = self._gops[-1][-1].timestamp
        if time.clock_gettime(time.CLOCK_MONOTONIC) - newest > self.stale_after:
            return []
        want = (newest if event_ts is None else event_ts) - self.seconds
        start = 0
        for i, gop in enumerate(self._gops):
            if gop[0].timestamp <= want:
                start = i
        units: list[AccessUnit] = []
        for gop in list(self._gops)[start:]:
            units.extend(gop)
        return units

    def clear(self) -> None:
        self._gops.clear()
        self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    @property
    def span(self) -> float:
        """Seconds from the oldest held IDR to the newest unit."""
        if not self._gops:
            return 0.0
        return self._gops[-1][-1].timestamp - self._gops[0][0].timestamp

    def __len__(self) -> int:
        return sum(len(g) for g in self._gops)

    # --- bounds -----------------------------------------------------------------------------

    def _trim(self, newest: float) -> None:
        gops = self._gops
        # Time: the second-oldest GOP already starts early enough: the oldest is not needed.
        while len(gops) > 1 and gops[1][0].timestamp <= newest - self.seconds:
            self._drop_oldest()
        # Bytes: oldest GOPs first; a lone GOP above the bound is useless in part: drop it.
        while self._bytes > self.max_bytes and gops:
            if len(gops) == 1:
                self.overflows += 1
                self.clear()
                return
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        gop = self._gops.popleft()
        self._bytes -= sum(len(u.data) for u in gop)
