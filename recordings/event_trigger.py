"""Event recording: a detection of a chosen class starts a recording with pre-roll.

One `EventTrigger` per camera, called with every detection result on the
worker's loop (`DetectionFeed.listeners`). It does two things:

* Every class detected at or above `min_confidence` while any recording runs
  (manual, event, schedule) is added to that recording's `detection_classes`.
* When a class in `classes` is detected at or above `min_confidence` and the
  camera is not recording, it starts a recording with trigger "event" whose file
  begins with the pre-roll (`PrerollBuffer`: whole GOPs from an IDR at least
  `preroll` seconds before the detected frame). Each further matching detection
  pushes the end out; `postroll` seconds (camera clock) after the last one, the
  recording stops. A recording it did not start (a manual one) is never stopped
  or replaced: it only gets the classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings

from recordings.media.preroll import PrerollBuffer
from streaming.media.shm.layout import DetectionResult
from streaming.media.types import MediaError

from .recorder import CameraRecorder

log = logging.getLogger("petcam.events")


def _now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)  # the camera's clock


@dataclass(frozen=True)
class EventSettings:
    classes: frozenset[str] = frozenset()  # empty: event recording off
    min_confidence: float = 0.5
    preroll: float = 5.0
    postroll: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.classes)

    @classmethod
    def from_settings(cls) -> EventSettings:
        raw = settings.PETCAM_EVENT_CLASSES
        names = raw if isinstance(raw, (list, tuple, set, frozenset)) else str(raw).split(",")
        return cls(classes=frozenset(n.strip() for n in names if n and n.strip()),
                   min_confidence=float(settings.PETCAM_EVENT_MIN_CONFIDENCE),
                   preroll=float(settings.PETCAM_EVENT_PREROLL_SECONDS),
                   postroll=float(settings.PETCAM_EVENT_POSTROLL_SECONDS))


class EventTrigger:
    """Starts/stops one camera's event recordings and tags recordings with classes."""

    def __init__(self, recorder: CameraRecorder, preroll: PrerollBuffer | None,
                 config: EventSettings) -> None:
        self.recorder = recorder
        self.preroll = preroll
        self.config = config
        self.recording_ids: set[int] = set()  # the event recording this trigger runs
        self.last_match: float | None = None  # camera time of the last matching detection
        self.events = 0
        self._pending: set[str] = set()  # classes seen while a start is in progress
        self._starting: asyncio.Task | None = None
        self._watcher: asyncio.Task | None = None

    # --- called with each detection result, on the worker's loop --------------------------

    def on_detection(self, result: DetectionResult) -> None:
        cfg = self.config
        seen = {d.class_name for d in result.detections if d.confidence >= cfg.min_confidence}
        if not seen:
            return
        matched = seen & cfg.classes
        if self._starting is not None and not self._starting.done():
            self._pending |= seen
        else:
            self.recorder.add_detection_classes(seen)
        if not matched:
            return
        if self._ours():
            self.last_match = max(self.last_match or 0.0, result.timestamp)
            return
        if self.recorder.active is None and (self._starting is None or self._starting.done()):
            self.last_match = result.timestamp
            self._pending = set(seen)
            self._starting = asyncio.get_running_loop().create_task(
                self._start(result.timestamp, matched), name=f"event-{self.recorder.camera}")

    # --- start / stop ---------------------------------------------------------------------

    def _ours(self) -> bool:
        active = self.recorder.active
        return active is not None and bool(
            self.recording_ids & {active.recording_id, *active.segments})

    async def _start(self, event_ts: float, matched: set[str]) -> None:
        preroll = self.preroll

        def seed():
            return preroll.snapshot(event_ts) if preroll is not None else []

        try:
            # No name: pages title it by what was seen ("Cat · Tue 18:08 · 2 min", from
            # its detection_classes); a name stays the owner's to give.
            row = await self.recorder.start(trigger="event", preroll=seed)
        except MediaError as exc:  # e.g. a manual recording started meanwhile
            log.info("camera %s: no event recording: %s", self.recorder.camera, exc.detail)
            self.recorder.add_detection_classes(self._pending)
            return
        except Exception:
            log.exception("camera %s: event recording failed to start", self.recorder.camera)
            return
        self.events += 1
        self.recording_ids = {row["id"]}
        self.recorder.add_detection_classes(self._pending)
        self._pending = set()
        log.info("camera %s: event recording %d started (%s)", self.recorder.camera,
                 row["id"], ", ".join(sorted(matched)))
        self._watcher = asyncio.get_running_loop().create_task(
            self._watch(), name=f"event-postroll-{self.recorder.camera}")

    async def _watch(self) -> None:
        """Stop `postroll` s after the last matching detection (pushed out by new ones)."""
        while self._ours():
            assert self.last_match is not None
            wait = self.last_match + self.config.postroll - _now()
            if wait <= 0:
                try:
                    await self.recorder.stop(
                        f"event ended: no {', '.join(sorted(self.config.classes))} for "
                        f"{self.config.postroll:g} s")
                except MediaError:
                    pass  # stopped by someone else meanwhile
                return
            await asyncio.sleep(min(wait, 1.0))

    async def stop(self) -> None:
        """Worker shutting down: the recorder's own shutdown finishes the file."""
        for task in (self._starting, self._watcher):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.preroll is not None:
            self.preroll.detach()

    def status(self) -> dict:
        return {"enabled": self.config.enabled, "classes": sorted(self.config.classes),
                "events": self.events, "recording": self._ours(),
                "preroll_seconds": round(self.preroll.span, 2) if self.preroll else 0.0}
