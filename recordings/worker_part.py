"""What recordings plugs into the media worker: per camera the recorder and event trigger.

Registered in `RecordingsConfig.ready()`; the worker builds one `RecordingPart`
per camera and runs `retention_loop` once per process.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client.core import Metric

from recordings.event_trigger import EventSettings, EventTrigger
from recordings.media.preroll import PrerollBuffer
from recordings.recorder import CameraRecorder
from recordings.scheduler import ScheduleRunner
from streaming.metric_families import counter, gauge
from streaming.worker.registry import CameraContext


class RecorderDrops:
    """Frames the recorder sink dropped, summed over every recording of this worker."""

    def __init__(self) -> None:
        self._seen: dict[int, int] = {}  # recording id -> dropped frames last seen
        self._retired = 0  # drops of recordings no longer tracked individually

    def total(self, status: dict) -> int:
        for row in (status, status.get("last") or {}):
            rid = row.get("id")
            dropped = row.get("dropped_frames")
            if isinstance(rid, int) and isinstance(dropped, int):
                self._seen[rid] = max(dropped, self._seen.get(rid, 0))
        while len(self._seen) > 16:  # only the latest two can still change
            self._retired += self._seen.pop(next(iter(self._seen)))
        return self._retired + sum(self._seen.values())


class RecordingPart:
    """One camera's recorder (the `recording.*` ops) and its event trigger."""

    def __init__(self, context: CameraContext) -> None:
        self.camera = context.config.slug
        self.hub = context.hub
        self.recorder = CameraRecorder(self.camera, context.hub)
        events = EventSettings.from_settings()  # pre-roll only kept when events are on
        self.trigger = EventTrigger(self.recorder, PrerollBuffer(events.preroll)
                                    if events.enabled else None, events)
        context.detection_listeners.append(self.recorder.on_detection)  # first: the track
        context.detection_listeners.append(self.trigger.on_detection)
        self.schedule = ScheduleRunner(self.recorder)
        self.drops = RecorderDrops()
        self.ops = {"recording.start": self._start, "recording.stop": self._stop,
                    "recording.status": self._status}
        self._recovery: asyncio.Task | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.trigger.preroll is not None:
            self.trigger.preroll.attach(self.hub)
        # Before the worker serves RPC: rows a crash left "recording" become "interrupted".
        self._recovery = loop.create_task(self.recorder.recover(),
                                          name=f"recording-recovery-{self.camera}")
        self.schedule.start(loop, after=self._recovery)

    async def stop(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
            await asyncio.gather(self._recovery, return_exceptions=True)
        await self.schedule.stop()
        await self.trigger.stop()
        await self.recorder.shutdown()  # finish the file while frames still flow

    async def _start(self, args: dict[str, Any]) -> dict[str, Any]:
        return await self.recorder.start(name=args.get("name"), format=args.get("format"),
                                         user_id=args.get("user_id"),
                                         trigger=args.get("trigger") or "manual")

    async def _stop(self, args: dict[str, Any]) -> dict[str, Any]:
        return await self.recorder.stop()

    async def _status(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.recorder.status()

    def status(self) -> dict[str, Any]:
        return {"recording": self.recorder.status(), "events": self.trigger.status(),
                "schedule": self.schedule.status()}

    def summary(self) -> dict[str, Any]:
        return {"recording": self.recorder.summary()}

    def sink_drops(self) -> dict[str, int]:
        return {"recorder": self.drops.total(self.recorder.status())}

    def metrics(self) -> list[Metric]:
        status = self.recorder.status()
        out: list[Metric] = []
        gauge("petcam_recording_active", "1 while a recording runs.",
              1 if status["recording"] else 0, self.camera, out)
        gauge("petcam_recording_bytes", "Bytes written by the current recording.",
              status.get("bytes", 0), self.camera, out)
        gauge("petcam_recording_frames", "Frames written by the current recording.",
              status.get("frame_count", 0), self.camera, out)
        counter("petcam_recordings_failed", "Recordings that ended failed (disk full, write "
                "error, unusable stream, no video).",
                {(): self.recorder.failed}, self.camera, out)
        return out
