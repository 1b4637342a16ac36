"""MQTT in the media worker: the one publisher, each camera's share, and the event hook.

Registered in events/apps.py; everything is a no-op while PETCAM_MQTT_URL is empty.
- `run` (a worker task) keeps the broker connection (events/mqtt.py).
- `MqttPart` (a camera part) announces the camera to Home Assistant and publishes how
  many objects of each class are in view and whether the day or night camera is on.
- `on_event` (an events/dispatch.py hook) publishes each event start and end to
  `<prefix>/<camera>/events`, turns `<prefix>/<camera>/<class>` ON and OFF, and sends
  the event's snapshot to `<prefix>/<camera>/snapshot`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from prometheus_client.core import Metric

from events.mqtt import MqttConfig, MqttConfigError, MqttPublisher, discovery
from streaming.media.day_night import camera_name
from streaming.media.shm.layout import DetectionResult
from streaming.worker.registry import CameraContext

log = logging.getLogger("petcam.mqtt")

STALE_COUNTS = 3.0  # s without a detector result before the counts go back to 0
_publisher: MqttPublisher | None = None
_config_error: str | None = None
# Open events per camera and class (event ids), so a class is OFF only once all ended.
_open: dict[tuple[str, str], set[int]] = {}
_classes: dict[str, list[str]] = {}  # camera -> classes announced to Home Assistant
_handing_in: set[asyncio.Task] = set()  # on_event calls not finished yet


def publisher() -> MqttPublisher | None:
    """The worker's publisher, or None when MQTT is off or misconfigured (logged once)."""
    global _publisher, _config_error
    if _publisher is None and _config_error is None and settings.PETCAM_MQTT_URL:
        try:
            config = MqttConfig.from_url(
                settings.PETCAM_MQTT_URL, username=settings.PETCAM_MQTT_USERNAME,
                password=settings.PETCAM_MQTT_PASSWORD, ca_file=settings.PETCAM_MQTT_CA_FILE,
                prefix=settings.PETCAM_MQTT_PREFIX,
                discovery_prefix=settings.PETCAM_MQTT_DISCOVERY_PREFIX,
                queue_size=settings.PETCAM_MQTT_QUEUE_SIZE,
                max_backoff=settings.PETCAM_MQTT_MAX_BACKOFF_SECONDS)
            config.tls_context()  # a bad CA file is a setting error, said at start
        except MqttConfigError as exc:
            _config_error = str(exc)
            log.error("MQTT is off: %s", exc)
            return None
        _publisher = MqttPublisher(config)
    return _publisher


async def run() -> None:
    """Worker task: the broker connection, for as long as the worker serves."""
    pub = publisher()
    if pub is not None:
        await pub.run(before_leaving=_hooks_done)


async def _hooks_done() -> None:
    """At the worker's stop: the event hooks its parts' stops set off (an open event
    ending) have handed in their messages. The publisher bounds the wait."""
    await asyncio.sleep(0)  # hook tasks created just before the stop get to start
    while _handing_in:
        await asyncio.wait(set(_handing_in))


def _topic(camera: str, *parts: str) -> str:
    return "/".join([settings.PETCAM_MQTT_PREFIX, camera, *parts])


def announce(pub: MqttPublisher, camera: str, class_name: str | None = None) -> None:
    """Home Assistant discovery for the camera (again when a new class shows up)."""
    known = _classes.setdefault(camera, [])
    new = [c for c in [*settings.PETCAM_MQTT_CLASSES, class_name] if c and c not in known]
    if not new and known:
        return
    for name in new:
        known.append(name)
        pub.set_state(_topic(camera, name), "OFF")
        pub.set_state(_topic(camera, name, "count"), "0")
    for topic, config in discovery(pub.config, camera, known).items():
        pub.set_state(topic, config)


async def on_event(kind: str, event: dict) -> None:
    """events/dispatch.py hook: the event, the class's ON/OFF, the snapshot."""
    pub = publisher()
    if pub is None:
        return
    task = asyncio.current_task()
    if task is not None:
        _handing_in.add(task)
    try:
        await _publish_event(pub, kind, event)
    finally:
        _handing_in.discard(task)  # type: ignore[arg-type]


async def _publish_event(pub: MqttPublisher, kind: str, event: dict) -> None:
    camera, class_name, event_id = event["camera"], event["class_name"], event["id"]
    announce(pub, camera, class_name)
    pub.publish_event(_topic(camera, "events"),
                      {"type": kind, "event": event, "published_at": time.time()})
    if kind == "started":
        _open.setdefault((camera, class_name), set()).add(event_id)
        pub.set_state(_topic(camera, class_name), "ON")
        return
    # The class may have changed with the peak: the start's class is the one that is ON.
    for (cam, name), ids in _open.items():
        if cam == camera and event_id in ids:
            ids.discard(event_id)
            if not ids:
                pub.set_state(_topic(camera, name), "OFF")
    if event.get("snapshot_url"):
        jpeg = await database_sync_to_async(_snapshot_bytes)(event_id)
        if jpeg:
            pub.set_state(_topic(camera, "snapshot"), jpeg)


def _snapshot_bytes(event_id: int) -> bytes | None:
    from events.models import Event

    event = Event.objects.filter(pk=event_id).first()
    if event is None or not event.snapshot:
        return None
    try:
        with event.snapshot.open("rb") as f:
            return f.read()
    except OSError as exc:
        log.warning("event %d: snapshot not sent over MQTT: %s", event_id, exc)
        return None


class MqttPart:
    """One camera's share: discovery, objects in view per class, day or night camera."""

    def __init__(self, context: CameraContext) -> None:
        self.camera = context.config.slug
        self.hub = context.hub
        self.pub = publisher()
        self.ops: dict[str, Any] = {}
        self._counts: Counter[str] = Counter()
        self._last_result = 0.0
        self._task: asyncio.Task | None = None
        if self.pub is not None:
            context.detection_listeners.append(self.on_detection)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.pub is not None:
            announce(self.pub, self.camera)
            self._task = loop.create_task(self._watch_camera(), name=f"mqtt-{self.camera}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def on_detection(self, result: DetectionResult) -> None:
        assert self.pub is not None
        self._last_result = time.monotonic()
        self._publish_counts(Counter(d.class_name for d in result.detections))

    def _publish_counts(self, counts: Counter[str]) -> None:
        assert self.pub is not None
        for name in _classes.get(self.camera, []):
            if counts[name] != self._counts[name]:
                self.pub.set_state(_topic(self.camera, name, "count"), str(counts[name]))
        self._counts = counts

    async def _watch_camera(self) -> None:
        """Day or night: the camera_id of the newest frame, checked once a second; counts
        back to 0 once the detector has gone quiet (camera off)."""
        assert self.pub is not None
        while True:
            frames = self.hub.gop.snapshot(max_age=None)
            name = camera_name(frames[-1].camera_id) if frames else None
            if name:
                self.pub.set_state(_topic(self.camera, "camera"), name)
            if self._counts and time.monotonic() - self._last_result > STALE_COUNTS:
                self._publish_counts(Counter())  # no detector results: nothing is seen
            await asyncio.sleep(1)

    def status(self) -> dict[str, Any]:
        return {"mqtt": self.pub.stats()} if self.pub is not None else {}

    def summary(self) -> dict[str, Any]:
        return {}

    def sink_drops(self) -> dict[str, int]:
        return {}

    def metrics(self) -> list[Metric]:
        return []  # the publisher is worker-wide: its counters are in each camera's status
