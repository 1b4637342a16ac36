"""Scheduled recording: one camera records continuously while a schedule window is open.

One `ScheduleRunner` per camera runs in the media worker. Every
PETCAM_SCHEDULE_POLL_SECONDS it reads the camera's enabled `RecordingSchedule`
rows and, with the events' window logic (`events.rules.schedule_active`: days +
start/end in an IANA zone, overnight windows included):

* window open, camera idle: starts a recording with trigger "schedule";
* window open, our recording older than the segment length: cuts it at the next IDR
  into a new linked segment (`previous_segment`), so playback goes on without a gap;
* window closed (or the schedule disabled/deleted): stops our recording.

A manual or event recording that runs when a window opens is left alone; the
schedule starts once it ends. Retention treats the segments like any recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from channels.db import database_sync_to_async
from django.conf import settings

from events.rules import schedule_active
from streaming.media.types import MediaError

from .models import RecordingSchedule
from .recorder import CameraRecorder

log = logging.getLogger("petcam.recorder")


@dataclass(frozen=True)
class Window:
    days: tuple[str, ...]
    start: str  # "HH:MM"
    end: str
    timezone: str
    segment_minutes: int

    def is_open(self, when: datetime) -> bool:
        return schedule_active({"days": list(self.days), "start": self.start, "end": self.end},
                               self.timezone, when)


def open_window(windows: list[Window], when: datetime) -> Window | None:
    """The first window open at `when` (aware), or None."""
    return next((w for w in windows if w.is_open(when)), None)


def segment_seconds(window: Window) -> float:
    override = float(settings.PETCAM_SCHEDULE_SEGMENT_SECONDS or 0)
    return override if override > 0 else window.segment_minutes * 60.0


def _load(camera: str) -> list[Window]:
    return [Window(tuple(s.window()["days"]), s.window()["start"], s.window()["end"],
                   s.timezone, s.segment_minutes)
            for s in RecordingSchedule.objects.filter(camera=camera, enabled=True)]


class ScheduleRunner:
    """Starts, cuts and stops one camera's scheduled recording."""

    def __init__(self, recorder: CameraRecorder) -> None:
        self.recorder = recorder
        self.recording_ids: set[int] = set()
        self.segment_started = 0.0  # monotonic time the current segment was asked for
        self.open: Window | None = None
        self._task: asyncio.Task | None = None

    def start(self, loop: asyncio.AbstractEventLoop, after: asyncio.Task | None = None) -> None:
        """`after`: the recorder's crash recovery, which must see no new row first."""
        self._task = loop.create_task(self._run(after), name=f"schedule-{self.recorder.camera}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def _ours(self) -> bool:
        active = self.recorder.active
        return active is not None and bool(
            self.recording_ids & {active.recording_id, *active.segments})

    async def _run(self, after: asyncio.Task | None) -> None:
        if after is not None:
            await asyncio.gather(after, return_exceptions=True)
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup: try again next poll
                log.exception("camera %s: schedule check failed", self.recorder.camera)
            await asyncio.sleep(settings.PETCAM_SCHEDULE_POLL_SECONDS)

    async def tick(self, when: datetime | None = None) -> None:
        # Its own thread, not the one the recorder's writes share: a database that hangs
        # must not hold up recording stop/start (tests/integration/test_faults.py).
        windows = await database_sync_to_async(_load, thread_sensitive=False)(
            self.recorder.camera)
        self.open = open_window(windows, when or datetime.now(UTC))
        now = time.monotonic()
        if self.open is None:
            if self._ours():
                with contextlib.suppress(MediaError):
                    await self.recorder.stop("the recording schedule's window closed")
            return
        if self._ours():
            if now - self.segment_started >= segment_seconds(self.open):
                if self.recorder.split():
                    self.segment_started = now
            return
        if self.recorder.active is not None:
            return  # a manual or event recording: not ours to end
        try:
            row = await self.recorder.start(trigger="schedule")
        except MediaError as exc:
            log.info("camera %s: no scheduled recording: %s", self.recorder.camera, exc.detail)
            return
        self.recording_ids = {row["id"]}
        self.segment_started = now
        log.info("camera %s: scheduled recording %d started", self.recorder.camera, row["id"])

    def status(self) -> dict:
        return {"window_open": self.open is not None, "recording": self._ours()}
