"""A camera's live detections: poll the segment, push each result to sockets, sample history."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from streaming.media.burst_log import BurstLog
from streaming.media.shm.detections_reader import DetectionReader
from streaming.media.shm.layout import DetectionResult
from streaming.media.shm.pacer import NS, FramePacer

from .history import purge_older_than
from .models import DetectionSample

log = logging.getLogger("petcam.detections")
# A database outage fails every flush: one line per 30 s with a count, no tracebacks.
_store_faults = BurstLog(log, every=30.0)


def detection_message(camera: str, result: DetectionResult, width: int | None,
                      height: int | None) -> dict:
    """The WebSocket message of DESIGN.md section 6."""
    return {
        "type": "detections",
        "camera": camera,
        "frame_number": result.frame_number,
        "timestamp": round(result.timestamp, 6),
        "frame_width": width,
        "frame_height": height,
        "detections": [
            {"class_name": d.class_name, "confidence": round(d.confidence, 4),
             "bbox": {"x": d.x, "y": d.y, "w": d.w, "h": d.h}}
            for d in result.detections
        ],
    }


def wall_clock(monotonic_ts: float) -> datetime:
    """A CLOCK_MONOTONIC stamp from the daemon as UTC wall-clock time."""
    age = time.clock_gettime(time.CLOCK_MONOTONIC) - monotonic_ts
    return datetime.now(UTC) - timedelta(seconds=max(0.0, age))


class DetectionFeed:
    """Owns the detections reader thread of one camera and what follows each result."""

    def __init__(self, camera: str, segment: str, group: str,
                 frame_size: Callable[[], tuple[int | None, int | None]], *,
                 sample_seconds: float = 1.0, retention_days: float = 30.0,
                 poll_interval: float = 0.002, idle_poll: float = 0.01,
                 quiet_poll_max: float = 0.1, pace: bool = True, trace: bool = False) -> None:
        self.camera = camera
        self.group = group
        self.reader = DetectionReader(segment)
        self.frame_size = frame_size
        self.sample_seconds = sample_seconds
        self.retention_days = retention_days
        self.poll_interval = poll_interval
        self.idle_poll = idle_poll
        self.quiet_poll_max = quiet_poll_max
        self.pace = pace
        self.trace = trace  # stage times in each message (benchmarks)
        self.published = 0
        self.per_class: dict[str, int] = {}
        # Called with each result on the loop (e.g. the event recording trigger).
        self.listeners: list[Callable[[DetectionResult], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: list[DetectionSample] = []
        self._last_sample = 0.0
        self._flusher: asyncio.Task | None = None
        self._sender: asyncio.Task | None = None
        # Bounded: if the channel layer is away, old results are not worth sending.
        self._outbox: asyncio.Queue[dict] = asyncio.Queue(maxsize=300)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._poll_loop, daemon=True,
                                        name=f"detections-{self.camera}")
        self._thread.start()
        self._flusher = loop.create_task(self._flush_forever(), name=f"history-{self.camera}")
        self._sender = loop.create_task(self._send_forever(), name=f"detections-{self.camera}")

    async def stop(self) -> None:
        self._stop.set()
        for task in (self._flusher, self._sender):
            if task:
                task.cancel()
        if self._thread:
            await asyncio.to_thread(self._thread.join, 2)
        self.reader.close()
        await self._flush()

    def _poll_loop(self) -> None:
        # Results come at the detector's cadence: sleep until the next one is due and poll
        # every poll_interval only around it (the video reader's FramePacer, keyed by the
        # record's version, which counts results). A fixed 2 ms poll was 500 wake-ups a
        # second, most of them for nothing, and a large part of an idle worker's CPU.
        # No detector writing (not started, or stopped for more than a second): the poll
        # backs off from idle_poll to quiet_poll_max, so its first result may wait that
        # long once; the ones after it are paced again.
        pacer = FramePacer(fine_poll=self.poll_interval, late_poll=self.poll_interval,
                           idle_poll=self.idle_poll)
        quiet = 0.0
        last_ns = 0
        while not self._stop.is_set():
            width, height = self.frame_size()
            result = self.reader.poll(width, height)
            now_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            if result is not None:
                last_ns = now_ns
                pacer.frame_seen(result.tv_sec * NS + result.tv_nsec, now_ns, result.version)
                if self._loop and not self._loop.is_closed():
                    self._loop.call_soon_threadsafe(self._on_result, result, width, height,
                                                    now_ns)
            if not self.reader.attached:
                delay = 0.1
            elif not self.pace:
                delay = self.poll_interval
            elif pacer.due_ns(0) is None or now_ns - last_ns > NS:
                quiet = min(2 * quiet, self.quiet_poll_max) if quiet else self.idle_poll
                delay = quiet  # no result yet, or none for a while: the detector is away
            else:
                quiet = 0.0
                delay = pacer.next_poll_delay(now_ns, 0)  # 0: 30/s until two results
            time.sleep(delay)

    def _on_result(self, result: DetectionResult, width: int | None, height: int | None,
                   read_ns: int = 0) -> None:
        self.published += 1
        for det in result.detections:
            self.per_class[det.class_name] = self.per_class.get(det.class_name, 0) + 1
        for listener in self.listeners:
            try:
                listener(result)
            except Exception:
                log.exception("detection listener failed for %s", self.camera)
        message = detection_message(self.camera, result, width, height)
        if self.trace:  # last key: the web tier appends its own stage (live_fanout.py)
            message["trace"] = {"read": read_ns / NS, "loop": time.monotonic()}
        if self._outbox.full():
            self._outbox.get_nowait()  # the oldest result is the least worth sending
        self._outbox.put_nowait(message)
        now = time.monotonic()
        if result.detections and now - self._last_sample >= self.sample_seconds:
            self._last_sample = now
            when = wall_clock(result.timestamp)
            self._pending.extend(
                DetectionSample(camera=self.camera, time=when, frame_number=result.frame_number,
                                class_name=d.class_name, confidence=d.confidence,
                                x=d.x, y=d.y, w=d.w, h=d.h)
                for d in result.detections)

    async def _send_forever(self) -> None:
        """One sender, so results reach the group in order. What queued up meanwhile goes
        in one message: on a busy loop (the embedded worker's WebRTC fan-out) each
        group_send costs a few loop turns, and one per result fell behind at 30/s."""
        layer = get_channel_layer()
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            if self.trace:
                sent = time.monotonic()
                for message in batch:
                    message["trace"]["sent"] = sent
            # Encoded once: every socket gets these very bytes.
            texts = [json.dumps(message) for message in batch]
            try:
                await layer.group_send(self.group, {"type": "camera.detections",
                                                    "texts": texts})
            except Exception:
                log.debug("detections publish failed for %s", self.camera, exc_info=True)

    async def _flush_forever(self) -> None:
        next_purge = 0.0
        while True:
            await asyncio.sleep(2.0)
            await self._flush()
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + 3600
                try:
                    await database_sync_to_async(purge_older_than)(self.retention_days)
                except Exception:
                    log.warning("detection history purge failed", exc_info=True)

    async def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            await database_sync_to_async(DetectionSample.objects.bulk_create)(batch)
        except Exception as exc:
            # Database briefly away: keep the samples for the next flush (bounded).
            _store_faults.warning(
                f"store {self.camera}", "camera %s: could not store %d detection samples "
                "(%s); will retry", self.camera, len(batch), type(exc).__name__)
            self._pending = (batch + self._pending)[-10_000:]

    def status(self) -> dict:
        return {**self.reader.stats.as_dict(), "published": self.published,
                "per_class": dict(self.per_class)}
