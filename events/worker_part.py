"""What events plugs into the media worker: per camera, its rules turned into events.

Each detection result goes through every enabled rule's `RuleTracker` (events/rules.py).
A start decodes the triggering detection's frame once (from the GOP kept when it was
seen, in a thread) and writes the Event row with that JPEG, box drawn, so the start's
push, MQTT message and webhook already point at the event's own picture. An end decodes
the peak's frame only if the peak is another frame (at most two decodes per event),
links the recording that holds the clip and fills in the end. Rows are written by one
task in order, off the detection path; start/end hooks (events/dispatch.py) run after
each write.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from prometheus_client.core import Metric

from events import dispatch, store
from events.rules import Box, OpenEvent, Peak, RuleTracker, Transition
from events.snapshot import decode_last, encode_jpeg, event_snapshot
from streaming.media.shm.layout import DetectionResult
from streaming.media.types import AccessUnit, MediaError
from streaming.metric_families import counter
from streaming.worker.registry import CameraContext

log = logging.getLogger("petcam.events")
HOOKS_SETTLE_SECONDS = 5.0  # a stop waits this long at most for the last hooks


def camera_to_wall(timestamp: float) -> datetime:
    """Wall-clock time of a camera (CLOCK_MONOTONIC) time on this host."""
    age = time.clock_gettime(time.CLOCK_MONOTONIC) - timestamp
    return datetime.now(UTC) - timedelta(seconds=age)


@dataclass
class _Snap:
    """The picture for an event's snapshot: the peak's frame, or while the peak's GOP was
    not decodable (the worker joined mid-GOP), the best detection that has one."""

    start: float  # the run / event it belongs to
    peak: Peak
    gop: list[AccessUnit]  # IDR first, up to (or near) the frame


@dataclass
class _Work:
    kind: str  # "start" or "end"
    rule_id: int
    event: OpenEvent
    snap: _Snap | None  # what to decode (None: no decodable picture was kept)


class EventPart:
    """One camera's event rules, evaluated on every detection result."""

    def __init__(self, context: CameraContext) -> None:
        self.camera = context.config.slug
        self.hub = context.hub
        self.frame_size = context.frame_size
        self.end_gap = float(settings.PETCAM_EVENT_END_SECONDS)
        self.refresh = float(settings.PETCAM_EVENT_RULES_REFRESH_SECONDS)
        # The start decode takes tens to hundreds of ms at 1080p (more on a loaded board):
        # the start hooks wait at most this, so detection to push, MQTT and webhook stays
        # within 2 s; a later snapshot is stored when done (the push shows the live still).
        self.start_wait = float(settings.PETCAM_EVENT_START_SNAPSHOT_WAIT_SECONDS)
        self.trackers: dict[int, RuleTracker] = {}
        self._versions: dict[int, str] = {}  # rule id -> updated_at seen
        self._snaps: dict[int, _Snap] = {}  # rule id -> picture of its run / open event
        self._shown: dict[int, Peak] = {}  # event id -> detection its start snapshot shows
        self._queue: asyncio.Queue[_Work] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._stopping = False  # set by stop(): no new event after it
        self.started = self.ended = self.failed = 0
        self.decodes = 0  # snapshot decodes (at most two per event)
        self.late_snapshots = 0  # start snapshots the start hooks did not wait for
        self.start_decode_ms: float | None = None  # the latest start's decode (hooks wait)
        context.detection_listeners.append(self.on_detection)
        self.ops = {"events.still": self._still}

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._tasks = [loop.create_task(self._refresh_loop(), name=f"event-rules-{self.camera}"),
                       loop.create_task(self._tick_loop(), name=f"event-tick-{self.camera}"),
                       loop.create_task(self._writer(), name=f"event-writer-{self.camera}")]

    async def stop(self) -> None:
        # No new event from here: the rules' reload and tick stop, and detections that
        # still arrive while the worker stops are not fed to the rules (else a new event
        # would start after the open one ended, and be left open).
        *rule_tasks, writer = self._tasks or [None]
        for task in rule_tasks:
            task.cancel()
        await asyncio.gather(*rule_tasks, return_exceptions=True)
        self._stopping = True
        # Open events end where they were last seen: their rows get an end and a snapshot.
        for rule_id, tracker in self.trackers.items():
            if tracker.open is not None:
                self._enqueue(Transition("end", tracker.open), rule_id)
                tracker.open = None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._queue.join(), 10)
        if writer is not None:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        # The hooks of the last start/end (push, MQTT, webhook) finish before the loop ends.
        if left := await dispatch.settle(HOOKS_SETTLE_SECONDS):
            log.warning("camera %s: %d event hook(s) still running at stop", self.camera, left)

    # --- rules ----------------------------------------------------------------------------

    async def _refresh_loop(self) -> None:
        while True:
            try:
                self.apply_rules(await database_sync_to_async(store.enabled_rules)(self.camera))
            except Exception:
                log.exception("camera %s: event rules not reloaded", self.camera)
            await asyncio.sleep(self.refresh)

    def apply_rules(self, rows: list[tuple[Any, str]]) -> None:
        """Keep each unchanged rule's state; a changed rule starts afresh (its open event
        ends); a removed or disabled one ends its open event."""
        wanted = {rule.id: (rule, version) for rule, version in rows}
        for rule_id in list(self.trackers):
            if rule_id not in wanted or wanted[rule_id][1] != self._versions.get(rule_id):
                tracker = self.trackers.pop(rule_id)
                self._versions.pop(rule_id, None)
                if tracker.open is not None:
                    self._enqueue(Transition("end", tracker.open), rule_id)
        for rule_id, (rule, version) in wanted.items():
            if rule_id not in self.trackers:
                self.trackers[rule_id] = RuleTracker(rule, end_gap=self.end_gap)
                self._versions[rule_id] = version

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = time.clock_gettime(time.CLOCK_MONOTONIC)
            for rule_id, tracker in list(self.trackers.items()):
                for transition in tracker.tick(now):
                    self._enqueue(transition, rule_id)

    # --- detections (on the loop) ---------------------------------------------------------

    def on_detection(self, result: DetectionResult) -> None:
        if not self.trackers or self._stopping:
            return
        width, height = self.frame_size()
        if not width or not height:
            return  # before the first frame: boxes cannot be placed in the picture
        boxes = [Box(d.class_name, d.confidence, d.x / width, d.y / height, d.w / width,
                     d.h / height) for d in result.detections]
        wall = camera_to_wall(result.timestamp)
        for rule_id, tracker in self.trackers.items():
            transitions = tracker.feed(boxes, result.timestamp, result.frame_number, wall)
            self._keep_picture(rule_id, tracker)
            for transition in transitions:
                self._enqueue(transition, rule_id)

    def _keep_picture(self, rule_id: int, tracker: RuleTracker) -> None:
        """Keep the GOP of the peak (only references: decoded once, at the end)."""
        best = tracker.last_best
        start = tracker.open.start if tracker.open else tracker.run_start
        if best is None or start is None:
            return
        peak = tracker.open.peak if tracker.open else tracker.run_peak
        kept = self._snaps.get(rule_id)
        if kept is None or kept.start != start or (peak is not None
                                                   and best.frame_number == peak.frame_number):
            gop = self.hub.gop.snapshot(max_age=None)
            if gop:
                self._snaps[rule_id] = _Snap(start, best, gop)

    def _enqueue(self, transition: Transition, rule_id: int) -> None:
        # A start takes the picture kept so far (a reference: _keep_picture replaces, never
        # changes, a _Snap); the end takes the one kept last.
        snap = (self._snaps.pop(rule_id, None) if transition.kind == "end"
                else self._snaps.get(rule_id))
        if snap is not None and snap.start != transition.event.start:
            snap = None
        self._queue.put_nowait(_Work(transition.kind, rule_id, transition.event, snap))

    # --- rows, snapshots, hooks (one task, in order) --------------------------------------

    async def _writer(self) -> None:
        while True:
            work = await self._queue.get()
            try:
                if work.kind == "start":
                    await self._store_start(work)
                else:
                    await self._store_end(work)
            except Exception:
                self.failed += 1
                log.exception("camera %s: event of rule %d not stored", self.camera,
                              work.rule_id)
            finally:
                self._queue.task_done()

    async def _decode(self, snap: _Snap) -> bytes | None:
        box = snap.peak.box
        self.decodes += 1
        return await asyncio.to_thread(event_snapshot, snap.gop, snap.peak.frame_number,
                                       (box.x, box.y, box.w, box.h))

    async def _store_start(self, work: _Work) -> None:
        ev = work.event
        jpeg = late = None
        began = time.perf_counter()
        if work.snap is not None:
            decoding = asyncio.ensure_future(self._decode(work.snap))
            try:
                jpeg = await asyncio.wait_for(asyncio.shield(decoding), self.start_wait)
                self.start_decode_ms = (time.perf_counter() - began) * 1000
            except TimeoutError:
                late = decoding
        # The row's box and frame are the snapshot's, so the drawn box is the one shown.
        shown = work.snap.peak if jpeg else ev.peak
        box = shown.box
        row = await database_sync_to_async(store.create_event)(
            rule_id=work.rule_id, camera=self.camera, class_name=box.class_name,
            started_at=camera_to_wall(ev.start), peak_confidence=box.confidence,
            box=[box.x, box.y, box.w, box.h], frame_number=shown.frame_number, jpeg=jpeg)
        ev.stored_id = row["id"]
        self.started += 1
        if jpeg:
            self._shown[row["id"]] = shown
            log.info("camera %s: event %d started (%s, rule %d), snapshot of frame %d "
                     "(decoded in %.0f ms)", self.camera, row["id"], box.class_name,
                     work.rule_id, shown.frame_number, self.start_decode_ms)
        elif late:
            log.info("camera %s: event %d started (%s, rule %d); its snapshot is not decoded "
                     "after %.0f ms: the start goes without it", self.camera, row["id"],
                     box.class_name, work.rule_id, self.start_wait * 1000)
        else:
            # Typically the worker joined mid-GOP: no IDR to decode from yet. The push
            # shows the live still; the end makes the snapshot.
            log.info("camera %s: event %d started (%s, rule %d) without a snapshot: %s",
                     self.camera, row["id"], box.class_name, work.rule_id,
                     "the frame did not decode" if work.snap else "no decodable GOP kept")
        dispatch.emit(dispatch.STARTED, row)
        if late is not None and work.snap is not None:
            await self._store_late(row["id"], late, work.snap.peak, began)

    async def _store_late(self, event_id: int, decoding: asyncio.Future, shown: Peak,
                          began: float) -> None:
        self.late_snapshots += 1
        jpeg = await decoding
        self.start_decode_ms = (time.perf_counter() - began) * 1000
        box = shown.box
        if jpeg and await database_sync_to_async(store.set_snapshot)(
                event_id, jpeg, box=[box.x, box.y, box.w, box.h],
                frame_number=shown.frame_number):
            self._shown[event_id] = shown
        log.info("camera %s: event %d: start snapshot %s after %.0f ms", self.camera,
                 event_id, "stored" if jpeg else "not decodable", self.start_decode_ms)

    async def _store_end(self, work: _Work) -> None:
        ev = work.event
        if ev.stored_id is None:
            return  # its start was never stored (logged there)
        at_start = self._shown.pop(ev.stored_id, None)
        jpeg = None
        shown = at_start or ev.peak
        if work.snap is not None and (at_start is None
                                      or work.snap.peak.frame_number != at_start.frame_number):
            jpeg = await self._decode(work.snap)
            if jpeg:
                shown = work.snap.peak
        # The row's box and frame are the snapshot's, so the drawn box is the one shown;
        # without a new JPEG the start's file (if any) stays.
        box = (shown.box.x, shown.box.y, shown.box.w, shown.box.h)
        row = await database_sync_to_async(store.finish_event)(
            ev.stored_id, ended_at=camera_to_wall(ev.last_seen),
            class_name=ev.peak.box.class_name, peak_confidence=ev.peak.box.confidence,
            box=list(box), frame_number=shown.frame_number, jpeg=jpeg)
        if row is None:
            return  # deleted meanwhile
        self.ended += 1
        log.info("camera %s: event %d ended (snapshot %s, recording %s)", self.camera,
                 row["id"], "peak frame" if jpeg else ("start frame" if at_start else "none"),
                 row["recording"])
        dispatch.emit(dispatch.ENDED, row)

    # --- RPC ------------------------------------------------------------------------------

    async def _still(self, args: dict[str, Any]) -> dict[str, Any]:
        """The live picture as JPEG (base64), for drawing a zone over it."""
        gop = self.hub.gop.snapshot()
        if not gop:
            raise MediaError("no_picture", f"Camera {self.camera!r} sends no picture now.")

        def still() -> bytes | None:
            rgb = decode_last(gop)
            return None if rgb is None else encode_jpeg(rgb)

        jpeg = await asyncio.to_thread(still)
        if jpeg is None:
            raise MediaError("no_picture", "The current picture could not be decoded.")
        return {"jpeg": base64.b64encode(jpeg).decode("ascii")}

    # --- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {"event_rules": {"rules": len(self.trackers), "started": self.started,
                           "ended": self.ended, "failed": self.failed,
                           "open": sum(t.open is not None for t in self.trackers.values()),
                           "snapshot_decodes": self.decodes,
                           "late_start_snapshots": self.late_snapshots,
                           "start_decode_ms": (None if self.start_decode_ms is None
                                               else round(self.start_decode_ms, 1))}}

    def summary(self) -> dict[str, Any]:
        return {}

    def sink_drops(self) -> dict[str, int]:
        return {}

    def metrics(self) -> list[Metric]:
        out: list[Metric] = []
        counter("petcam_events", "Events started by the camera's rules.",
                {(): self.started}, self.camera, out)
        return out
