"""Fans one camera's access units out to sinks, each through its own bounded queue.

The reader never waits for a sink: a sink whose queue is full loses what it
has queued and skips to the next IDR (a P-frame whose reference was dropped
would only decode to garbage), and its counters say so. The hub keeps the
current GOP so a new sink starts with a decodable picture at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

from streaming.media.burst_log import BurstLog
from streaming.media.gop_cache import GopCache
from streaming.media.types import AccessUnit

log = logging.getLogger("petcam.hub")
# A viewer on a slow link overflows every few seconds: one line per sink per 30 s.
_overflows = BurstLog(log, every=30.0)


class SinkClosed(Exception):
    """The sink was closed; its consumer should stop."""


@dataclass(frozen=True, slots=True)
class QueuedUnit:
    au: AccessUnit
    catch_up: bool  # replayed from the GOP cache, not live


@dataclass
class SinkStats:
    delivered: int = 0
    dropped: int = 0  # units lost to overflow
    overflows: int = 0  # times the sink had to skip to the next IDR
    skipped_waiting_idr: int = 0  # P-frames not queued while waiting for an IDR
    catch_up: int = 0  # units replayed from the GOP cache


@dataclass
class SinkQueue:
    """One sink's queue; `get()` is awaited by the sink's consumer."""

    name: str
    maxsize: int = 90
    stats: SinkStats = field(default_factory=SinkStats)
    waiting_for_idr: bool = True
    closed: bool = False
    _items: deque = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, au: AccessUnit) -> None:
        """Called by the hub for each live unit; never blocks."""
        if self.closed:
            return
        if self.waiting_for_idr and not au.is_idr:
            self.stats.skipped_waiting_idr += 1
            return
        if len(self._items) >= self.maxsize:
            self.stats.dropped += len(self._items)
            self.stats.overflows += 1
            self._items.clear()
            self.waiting_for_idr = True
            _overflows.warning(self.name, "sink %s fell %d units behind; skipping to the "
                               "next IDR (%d units dropped so far)", self.name, self.maxsize,
                               self.stats.dropped)
            if not au.is_idr:
                self.stats.dropped += 1
                return
        self.waiting_for_idr = False
        self._push(QueuedUnit(au, False))

    def replay(self, gop: list[AccessUnit]) -> None:
        """Queue a cached GOP (IDR first) ahead of live units: a decodable start now."""
        if self.closed or not gop:
            return
        self._items.clear()
        for au in gop:
            self._items.append(QueuedUnit(au, True))
        self.stats.catch_up += len(gop)
        self.waiting_for_idr = False
        self._ready.set()

    def _push(self, item: QueuedUnit) -> None:
        self._items.append(item)
        self._ready.set()

    async def get(self) -> QueuedUnit:
        while not self._items:
            if self.closed:
                raise SinkClosed(self.name)
            self._ready.clear()
            await self._ready.wait()
        self.stats.delivered += 1
        return self._items.popleft()

    def close(self) -> None:
        self.closed = True
        self._items.clear()
        self._ready.set()

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


class Hub:
    """One camera's fan-out point: publish() from the reader, subscribe() per sink."""

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self.gop = GopCache()
        self.sinks: set[SinkQueue] = set()
        self.published = 0

    def publish(self, au: AccessUnit) -> None:
        self.published += 1
        self.gop.add(au)
        for sink in self.sinks:
            sink.offer(au)

    def has_sinks(self) -> bool:
        """Anyone taking frames (viewers, a recording, a pre-roll)? Safe from any thread."""
        return bool(self.sinks)

    def subscribe(self, name: str, *, maxsize: int = 90, from_gop: bool = True) -> SinkQueue:
        sink = SinkQueue(name, maxsize=maxsize)
        if from_gop:
            sink.replay(self.gop.snapshot())
        self.sinks.add(sink)
        return sink

    def unsubscribe(self, sink: SinkQueue) -> None:
        sink.close()
        self.sinks.discard(sink)
