"""A camera's live events to this web process's sockets: one channel-layer member per
camera, each event encoded once and written to every local socket in turn.

Before, every socket was a member of the camera's group: each result became one
channel-layer message per socket (over Redis, one round trip each), one consumer
task wake-up and one JSON encode per socket. Now the group has one member per web
process (`CameraFanout`), which writes the same text frame to each socket directly.

A socket that does not read (its unsent bytes in the server's write buffer pass
`backlog_limit`) is skipped: it keeps only the newest event of each kind and gets
those once it has drained, never a growing queue. Sockets join after their access
check and leave when they close or lose their access (streaming/consumers.py), so
nothing here checks rights.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from channels.layers import get_channel_layer
from prometheus_client.core import Metric

from streaming.metric_families import counter, gauge

log = logging.getLogger("petcam.ws")

REJOIN_SECONDS = 3600.0  # Redis forgets a group member after a day (group_expiry)
RETRY_SECONDS = 1.0  # channel layer away (Redis restarting): try again this often
# A fan-out leaves by a message to its own channel, not by cancelling its receive():
# channels_redis loses the message a cancelled receive had already popped from the
# process's shared inbox (django/channels_redis#366), and as the busiest receiver the
# fan-out usually holds that inbox, so the lost message could be another socket's (a
# revocation). The wait covers one blocking pop (channels_redis brpop_timeout, 5 s).
STOP_TYPE = "live.fanout.stop"
STOP_WAIT_SECONDS = 6.0

# camera-group event type -> the WebSocket message "type" (DESIGN.md section 6)
EVENT_TYPES = {"camera.status": ("status", "status"), "camera.clock": ("clock", "clock"),
               "camera.switch": ("camera_switch", "switch")}


def live_event_texts(event: dict, *, trace: bool = False) -> tuple[str, list[str]] | None:
    """(kind, texts) of a camera-group event as its sockets get it, in order; None: not a
    live event. A detections event carries every result queued since the last one.

    kind names what a newer event replaces for a socket that is behind: detections and
    status replace their own kind, a viewer clock only the same session's clock.
    """
    etype = event.get("type")
    if etype == "camera.detections":
        texts = event.get("texts") or [event["text"]]  # encoded once by the worker
        if trace:
            texts = [stamp_trace(text, "web") for text in texts]
        return "detections", texts
    if etype not in EVENT_TYPES:
        return None
    kind, key = EVENT_TYPES[etype]
    payload = event.get(key) or {}
    if kind == "clock":
        kind = f"clock:{payload.get('session', '')}"
    return kind, [json.dumps({"type": EVENT_TYPES[etype][0], **payload})]


def stamp_trace(text: str, stage: str) -> str:
    """A traced detection message (detections/feed.py puts "trace" last) with one more
    stage time, without decoding it again."""
    if not text.endswith("}}"):
        return text
    return f'{text[:-2]}, "{stage}": {time.monotonic():.6f}}}}}'


@dataclass(eq=False)
class LiveSocket:
    """One local socket of a camera: how to write to it and how far behind it is."""

    send: Callable[[str], Awaitable[None]]
    backlog: Callable[[], int] | None = None  # unsent bytes; None: the server cannot tell
    name: str = ""
    held: dict[str, str] = field(default_factory=dict)  # newest text per kind while behind
    sent: int = 0
    skipped: int = 0


class CameraFanout:
    """The camera group's member in this process; writes each event to every LiveSocket."""

    def __init__(self, camera: str, group: str, *, backlog_limit: int = 64 * 1024,
                 trace: bool = False, layer=None) -> None:
        self.camera = camera
        self.group = group
        self.backlog_limit = backlog_limit
        self.trace = trace
        self.layer = layer or get_channel_layer()
        self.sockets: list[LiveSocket] = []  # a list: written in the order they joined
        self.events = 0
        self.held = 0  # events not written to a socket that was behind (a newer replaced it)
        self.dropped_sockets = 0
        self._channel: str | None = None
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _on_this_loop(self) -> None:
        """A server has one loop; tests run one per test: a fan-out left running on a
        closed loop starts afresh (its old group membership expires or was flushed)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._lock = asyncio.Lock()
            self._channel = self._task = None
            self.sockets = []

    async def join(self, sock: LiveSocket) -> None:
        """From now on `sock` gets the camera's events (the group is joined before this
        returns, as a socket's own group_add was)."""
        self._on_this_loop()
        async with self._lock:
            if self._channel is None:
                # The default prefix: channels_redis receives every process-local channel
                # through one inbox per prefix, and serves only one such inbox at a time.
                self._channel = await self.layer.new_channel()
                await self.layer.group_add(self.group, self._channel)
                self._task = asyncio.get_running_loop().create_task(
                    self._run(self._channel), name=f"live-fanout-{self.camera}")
            self.sockets.append(sock)

    async def leave(self, sock: LiveSocket) -> None:
        self._on_this_loop()
        async with self._lock:
            if sock in self.sockets:
                self.sockets.remove(sock)
            if not self.sockets and self._channel is not None:
                await self._stop()

    async def _stop(self) -> None:
        channel, self._channel = self._channel, None
        task, self._task = self._task, None
        try:
            await self.layer.group_discard(self.group, channel)
        except Exception:  # Redis away: the membership expires on its own
            log.debug("fan-out of %s: group_discard failed", self.camera, exc_info=True)
        if task is None:
            return
        try:
            await self.layer.send(channel, {"type": STOP_TYPE})
            await asyncio.wait_for(asyncio.shield(task), STOP_WAIT_SECONDS)
        except Exception:  # the layer is away or the stop message is late: cancel after all
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self, channel: str) -> None:
        rejoin_at = time.monotonic() + REJOIN_SECONDS
        while True:
            try:
                if time.monotonic() >= rejoin_at:
                    await self.layer.group_add(self.group, channel)
                    rejoin_at = time.monotonic() + REJOIN_SECONDS
                event = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting: it may come back empty, so rejoin
                log.warning("fan-out of %s: channel layer error (%s); retrying", self.camera,
                            type(exc).__name__)
                await asyncio.sleep(RETRY_SECONDS)
                rejoin_at = 0.0
                continue
            if event.get("type") == STOP_TYPE:
                return
            await self.deliver(event)

    async def deliver(self, event: dict) -> None:
        """One event to every socket (in the order they joined), encoded once."""
        found = live_event_texts(event, trace=self.trace)
        if found is None:
            return
        kind, texts = found
        self.events += len(texts)
        for sock in list(self.sockets):
            try:
                await self._write(sock, kind, texts)
            except Exception:  # the socket is gone under us: its consumer leaves too
                log.debug("fan-out of %s: dropped socket %s", self.camera, sock.name,
                          exc_info=True)
                if sock in self.sockets:
                    self.sockets.remove(sock)
                    self.dropped_sockets += 1

    async def _write(self, sock: LiveSocket, kind: str, texts: list[str]) -> None:
        if sock.backlog is not None and sock.backlog() > self.backlog_limit:
            sock.held[kind] = texts[-1]  # the newest; replaces an older one of the same kind
            sock.skipped += len(texts)
            self.held += len(texts)
            return
        sock.held.pop(kind, None)  # these are newer
        if sock.held:
            held, sock.held = sock.held, {}
            for older in held.values():
                await sock.send(older)
                sock.sent += 1
        for text in texts:
            await sock.send(text)
        sock.sent += len(texts)

    def status(self) -> dict:
        return {"sockets": len(self.sockets), "events": self.events, "held": self.held,
                "behind": sum(1 for s in self.sockets if s.held),
                "dropped_sockets": self.dropped_sockets}


class LiveFanouts:
    """This process's CameraFanout per camera, made on first use."""

    def __init__(self, group_of: Callable[[str], str], **options) -> None:
        self.group_of = group_of
        self.options = options
        self.cameras: dict[str, CameraFanout] = {}

    def camera(self, camera: str) -> CameraFanout:
        fanout = self.cameras.get(camera)
        if fanout is None:
            fanout = self.cameras[camera] = CameraFanout(camera, self.group_of(camera),
                                                         **self.options)
        return fanout

    def metrics(self) -> list[Metric]:
        """This web process's figures, per camera (each daphne process has its own)."""
        out: list[Metric] = []
        for camera, fanout in self.cameras.items():
            st = fanout.status()
            gauge("petcam_ws_live_sockets", "Sockets of this web process getting the camera's "
                  "live events.", st["sockets"], camera, out)
            counter("petcam_ws_live_held", "Live events not written to a socket whose client "
                    "was behind (it got a newer one instead).", {(): st["held"]}, camera, out)
            counter("petcam_ws_live_dropped_sockets", "Sockets dropped because writing to "
                    "them failed.", {(): st["dropped_sockets"]}, camera, out)
        merged: dict[str, Metric] = {}  # one family per name, every camera's sample in it
        for family in out:
            target = merged.setdefault(family.name, family)
            if target is not family:
                target.samples.extend(family.samples)
        return list(merged.values())
