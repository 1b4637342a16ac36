"""What the apps plug into the media worker: camera parts and worker-wide tasks.

The worker is the one composition root, but it never names `recordings` or
`detections`: their `AppConfig.ready()` register a factory here by dotted
path ("package.module:function"), and the worker imports and calls it when it
builds a camera. Registering imports nothing heavy, so a web process (which
runs every ready() too) never loads the recorder, the detection feed or aiortc.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from streaming.media.hub import Hub
    from streaming.media.shm.layout import DetectionResult
    from streaming.media.types import CameraConfig

Op = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class CameraContext:
    """What the worker hands each part of one camera."""

    config: CameraConfig
    hub: Hub  # the camera's access units (GOP cache, bounded sink queues)
    frame_size: Callable[[], tuple[int | None, int | None]]  # picture size, boxes' pixels
    group: str  # channel-layer group of the camera's WebSocket clients
    # Called on the loop with each detector result (the detection feed calls them).
    detection_listeners: list[Callable[[DetectionResult], None]] = field(default_factory=list)


class CameraPart(Protocol):
    """One app's share of a camera in the worker (e.g. the recorder, the detection feed)."""

    ops: dict[str, Op]  # RPC operations it answers, e.g. "recording.start"

    def start(self, loop: asyncio.AbstractEventLoop) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> dict[str, Any]: ...  # merged into the camera's `status` reply

    def summary(self) -> dict[str, Any]: ...  # merged into the live page's status event

    def sink_drops(self) -> dict[str, int]: ...  # frames its hub sinks dropped, by sink name

    def metrics(self) -> list[Metric]: ...  # its petcam_ families for /metrics


_camera_parts: dict[str, str] = {}
_worker_tasks: dict[str, str] = {}


def register_camera_part(name: str, factory: str) -> None:
    """`factory` ("module:function") is called with a CameraContext and returns a CameraPart.
    Parts are built in registration order and stopped in reverse."""
    _camera_parts[name] = factory


def register_worker_task(name: str, coroutine: str) -> None:
    """`coroutine` ("module:function") runs once per worker process while it serves."""
    _worker_tasks[name] = coroutine


def _load(path: str) -> Callable[..., Any]:
    module, _, attr = path.partition(":")
    return getattr(import_module(module), attr)


def camera_part_factories() -> list[tuple[str, Callable[[CameraContext], CameraPart]]]:
    return [(name, _load(path)) for name, path in _camera_parts.items()]


def worker_tasks() -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    return [(name, _load(path)) for name, path in _worker_tasks.items()]
