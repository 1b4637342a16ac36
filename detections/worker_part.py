"""What detections plugs into the media worker: per camera the detection feed.

Registered in `DetectionsConfig.ready()`. The feed reads the detector's
segment, pushes each result to the camera's WebSocket group, samples history
into the database, and calls the camera's detection listeners (event recording).
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from prometheus_client.core import Metric

from detections.feed import DetectionFeed
from streaming.metric_families import counter, gauge
from streaming.worker.registry import CameraContext


class DetectionPart:
    """One camera's detection feed."""

    def __init__(self, context: CameraContext) -> None:
        config = context.config
        self.camera = config.slug
        self.feed = DetectionFeed(config.slug, config.detections_segment, context.group,
                                  context.frame_size,
                                  sample_seconds=settings.PETCAM_DETECTION_SAMPLE_SECONDS,
                                  retention_days=settings.PETCAM_DETECTION_RETENTION_DAYS,
                                  pace=settings.PETCAM_DETECTIONS_PACING,
                                  trace=settings.PETCAM_DETECTIONS_TRACE,
                                  quiet_poll_max=0.1 if settings.PETCAM_IDLE_RELAX else 0.01)
        self.feed.listeners = context.detection_listeners  # shared: parts add theirs
        self.ops: dict = {}

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.feed.start(loop)

    async def stop(self) -> None:
        await self.feed.stop()

    def status(self) -> dict[str, Any]:
        return {"detections": self.feed.status()}

    def summary(self) -> dict[str, Any]:
        return {}

    def sink_drops(self) -> dict[str, int]:
        return {}

    def metrics(self) -> list[Metric]:
        feed = self.feed.status()
        out: list[Metric] = []
        gauge("petcam_detector_attached", "1 while the detector's segment is attached.",
              1 if feed.get("state") == "attached" else 0, self.camera, out)
        counter("petcam_detection_results", "Detector results read and published.",
                {(): feed["published"]}, self.camera, out)
        counter("petcam_detections", "Detected objects, by class.",
                {(cls,): n for cls, n in feed["per_class"].items()}, self.camera, out,
                ("class",))
        counter("petcam_detection_dropped", "Detector results dropped (torn, impossible, "
                "overwritten unread, segment truncated), by reason.",
                {(reason,): n for reason, n in feed["dropped"].items()}, self.camera, out,
                ("reason",))
        return out
