"""The media worker: owns the camera pipelines and answers requests from the web tier.

Embedded default: started inside the ASGI server's event loop. Production:
`python manage.py media_worker --camera SLUG`, one process per camera, on
the Redis channel layer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import logging
import os
import resource
import time
from typing import Any

from asgiref.sync import sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings

from streaming import metric_families
from streaming.ice_servers import worker_ice_servers
from streaming.media.burst_log import BurstLog
from streaming.media.day_night import CameraSwitch
from streaming.media.mse import SocketBusy
from streaming.media.pipeline import CameraPipeline
from streaming.media.types import CameraConfig, MediaError
from streaming.media.webrtc import aiortc_compat
from streaming.media.webrtc.viewers import ViewerLimits, Viewers
from streaming.worker import metrics, registry
from streaming.worker_rpc import camera_group, worker_channel

log = logging.getLogger("petcam.worker")


def configured_cameras() -> list[CameraConfig]:
    """The enabled cameras from the database (sync: call it off the event loop)."""
    from streaming.models import Camera

    return [camera.config() for camera in Camera.objects.enabled()]


def load_cameras_now() -> list[CameraConfig]:
    """configured_cameras() from code that may run on the event loop (server start-up):
    Django refuses ORM calls there, so the query runs in a thread and this waits for it."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(configured_cameras).result()


@dataclasses.dataclass
class ServedCamera:
    """One camera as the worker serves it: the media path, its viewers and the apps' parts."""

    pipeline: CameraPipeline
    viewers: Viewers
    parts: dict[str, registry.CameraPart]

    def status(self) -> dict[str, Any]:
        result = {**self.pipeline.status(), "viewers": self.viewers.stats()}
        for part in self.parts.values():
            result.update(part.status())
        return result

    def summary(self) -> dict[str, Any]:
        """What the live page's status event carries once a second."""
        status = self.pipeline.status()
        result = {k: status[k] for k in ("camera", "state", "live", "phase", "fps",
                                         "bitrate_kbps", "width", "height", "profile",
                                         "profile_level_id", "active_camera", "camera_id",
                                         "last_camera_switch")}
        result["viewers"] = len(self.viewers.sessions)
        for part in self.parts.values():
            result.update(part.summary())
        return result

    def metrics(self, process: dict[str, Any]) -> list:
        drops: dict[str, int] = {}
        for part in self.parts.values():
            drops.update(part.sink_drops())
        families = metrics.collect(self.pipeline.config.slug, self.pipeline, self.viewers,
                                   drops, process)
        for part in self.parts.values():
            families.extend(part.metrics())
        return families

    def op(self, name: str) -> registry.Op | None:
        for part in self.parts.values():
            if name in part.ops:
                return part.ops[name]
        return None


class MediaWorker:
    """Runs pipelines for its cameras and serves their RPC channels."""

    def __init__(self, cameras: list[CameraConfig]) -> None:
        self.cameras: dict[str, ServedCamera] = {}
        self._limits = ViewerLimits(max_viewers=settings.PETCAM_MAX_VIEWERS,  # per camera
                                    max_per_user=settings.PETCAM_MAX_VIEWERS_PER_USER,
                                    ice_timeout=settings.PETCAM_ICE_TIMEOUT,
                                    silence_timeout=settings.PETCAM_PEER_SILENCE_TIMEOUT,
                                    queue_frames=settings.PETCAM_VIEWER_QUEUE_FRAMES,
                                    shared_packetizer=settings.PETCAM_SHARED_PACKETIZER,
                                    replay_gop=settings.PETCAM_GOP_REPLAY,
                                    lean_sender=settings.PETCAM_LEAN_SENDER,
                                    pacing=settings.PETCAM_PACING,
                                    batch_send=settings.PETCAM_BATCH_SEND,
                                    catch_up_bytes_per_s=settings.PETCAM_CATCH_UP_MBITS * 125_000,
                                    mse_window_frames=settings.PETCAM_MSE_WINDOW_FRAMES)
        aiortc_compat.set_packet_max(settings.PETCAM_RTP_PACKET_MAX)
        aiortc_compat.install_prompt_triggered_checks()  # ~0.5 s less through TURN
        self._part_factories = registry.camera_part_factories()
        for camera in cameras:
            self._build(camera)
        self._tasks: list[asyncio.Task] = []  # per camera: RPC, status; the camera watch
        self._worker_tasks: list[asyncio.Task] = []  # the apps' worker-wide tasks (MQTT...)
        self._offers: set[asyncio.Task] = set()  # offers being answered, switch events being sent

    def _build(self, c: CameraConfig) -> None:
        """One camera's pipeline, viewers and parts (all made before any is registered:
        a camera is served whole or not at all)."""
        pipeline = CameraPipeline(c, stall_after=settings.PETCAM_STALL_SECONDS,
                                  relax_when_idle=settings.PETCAM_IDLE_RELAX)
        viewers = Viewers(c.slug, pipeline.hub,
                          dataclasses.replace(self._limits, max_viewers=c.max_viewers),
                          functools.partial(worker_ice_servers, c.slug),
                          publish_clock=self._clock_publisher(c.slug))
        context = registry.CameraContext(config=c, hub=pipeline.hub,
                                         frame_size=pipeline.frame_size,
                                         group=camera_group(c.slug))
        parts = {name: factory(context) for name, factory in self._part_factories}
        pipeline.switch_listeners.append(self._switch_publisher(c.slug))
        self.cameras[c.slug] = ServedCamera(pipeline, viewers, parts)

    def _start_camera(self, slug: str, loop: asyncio.AbstractEventLoop) -> None:
        served = self.cameras[slug]
        served.pipeline.start(loop)
        served.viewers.start()
        for part in served.parts.values():
            part.start(loop)
        self._tasks.append(asyncio.create_task(self._serve(slug), name=f"rpc-{slug}"))
        self._tasks.append(asyncio.create_task(self._publish_status(slug),
                                               name=f"status-{slug}"))

    async def start(self, *, watch_cameras: float = 0.0) -> None:
        """`watch_cameras` > 0: look for newly added cameras this often (seconds)."""
        loop = asyncio.get_running_loop()
        for slug in list(self.cameras):
            self._start_camera(slug, loop)
        for name, task in registry.worker_tasks():
            self._worker_tasks.append(asyncio.create_task(task(), name=name))
        if watch_cameras > 0:
            self._tasks.append(asyncio.create_task(self._watch_cameras(watch_cameras),
                                                   name="camera-watch"))

    async def add_camera(self, camera: CameraConfig) -> bool:
        """Serve a camera added while the worker runs; False if it is served already."""
        if camera.slug in self.cameras:
            return False
        self._build(camera)
        self._start_camera(camera.slug, asyncio.get_running_loop())
        log.info("camera %s added while running: now serving it", camera.slug)
        return True

    async def _watch_cameras(self, every: float) -> None:
        """Embedded worker: cameras added in the admin are served without a restart.
        Changing or disabling a camera that is already served still needs one: its
        viewers and recording would be cut, so that stays the operator's call."""
        reported: set[str] = set()
        while True:
            await asyncio.sleep(every)
            try:
                cameras = await sync_to_async(configured_cameras)()
            except Exception:
                log.warning("could not read the camera table; retrying", exc_info=True)
                continue
            for camera in cameras:
                try:
                    await self.add_camera(camera)
                except Exception:
                    if camera.slug not in reported:  # log once, not every few seconds
                        reported.add(camera.slug)
                        log.exception("camera %s: cannot serve it", camera.slug)

    async def stop(self) -> None:
        tasks = [*self._tasks, *self._offers]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        for served in self.cameras.values():  # parts first: recordings end while frames flow
            for part in reversed(served.parts.values()):
                await part.stop()
        for served in self.cameras.values():
            await served.viewers.stop()
        for served in self.cameras.values():
            await asyncio.to_thread(served.pipeline.stop)
        # Worker-wide tasks last: what the parts' stops set off (an open event ending) still
        # goes out through them (MQTT's publisher sends what it holds, bounded, then leaves).
        for task in self._worker_tasks:
            task.cancel()
        await asyncio.gather(*self._worker_tasks, return_exceptions=True)
        self._worker_tasks.clear()

    async def run_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def _serve(self, slug: str) -> None:
        layer = get_channel_layer()
        channel = worker_channel(slug)
        log.info("media worker serving camera %s on channel %s", slug, channel)
        faults = BurstLog(log, every=30.0)  # Redis down for minutes: not a line a second
        down_since: float | None = None
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # e.g. Redis restarting: keep the media path running, retry.
                down_since = down_since or time.monotonic()
                faults.warning("receive", "camera %s: channel layer unreachable (%s: %s); "
                               "media keeps flowing, retrying every second", slug,
                               type(exc).__name__, exc)
                await asyncio.sleep(1)
                continue
            if down_since is not None:
                log.info("camera %s: channel layer back after %.1f s", slug,
                         time.monotonic() - down_since)
                down_since = None
            expires = message.get("expires")
            if isinstance(expires, (int, float)) and expires < time.time():
                log.info("camera %s: dropped expired %r request", slug, message.get("op"))
                continue
            if message.get("op") == "offer":
                # Its own task: an offer may wait for the camera's first SPS and for
                # ICE gathering; status, close and recording calls must not queue behind.
                task = asyncio.create_task(self._answer(slug, message), name=f"offer-{slug}")
                self._offers.add(task)
                task.add_done_callback(self._offers.discard)
            else:
                await self._answer(slug, message)

    async def _answer(self, slug: str, message: dict) -> None:
        reply = await self._handle(slug, message)
        reply_to = message.get("reply_to")
        if reply_to:
            try:
                await get_channel_layer().send(reply_to, reply)
            except Exception:
                log.warning("could not reply to %s", reply_to, exc_info=True)

    @staticmethod
    def _socket_sender(channel: str):
        """An MSE viewer's fragments go to its socket's consumer, wherever that runs."""
        layer = get_channel_layer()

        async def send(message: dict) -> None:
            try:
                await layer.send(channel, message)
            except ChannelFull as exc:  # daphne is behind: backpressure, not an error
                raise SocketBusy(channel) from exc
        return send

    @staticmethod
    def _clock_publisher(slug: str):
        async def publish(clock: dict) -> None:
            try:
                await get_channel_layer().group_send(camera_group(slug),
                                                     {"type": "camera.clock", "clock": clock})
            except Exception:
                log.debug("clock publish failed for %s", slug, exc_info=True)
        return publish

    def _switch_publisher(self, slug: str):
        """A day/night switch as a WebSocket event for the camera's clients, at once."""
        def publish(switch: CameraSwitch) -> None:
            async def send() -> None:
                try:
                    await get_channel_layer().group_send(
                        camera_group(slug), {"type": "camera.switch",
                                             "switch": {"camera": slug, **switch.as_dict()}})
                except Exception:
                    log.debug("camera switch publish failed for %s", slug, exc_info=True)
            task = asyncio.get_running_loop().create_task(send(), name=f"switch-{slug}")
            self._offers.add(task)  # keep a reference until it is sent
            task.add_done_callback(self._offers.discard)
        return publish

    async def _publish_status(self, slug: str) -> None:
        """Tell the camera's WebSocket clients how it is doing, once a second."""
        layer = get_channel_layer()
        while True:
            await asyncio.sleep(1.0)
            summary = self.cameras[slug].summary()
            try:
                await layer.group_send(camera_group(slug), {"type": "camera.status",
                                                            "status": summary})
            except Exception:
                log.debug("status publish failed for %s", slug, exc_info=True)

    async def _handle(self, slug: str, message: dict[str, Any]) -> dict[str, Any]:
        op = message.get("op")
        args = message.get("args") or {}
        served = self.cameras[slug]
        try:
            if op == "status":
                return {"result": {**served.status(), "process": process_stats()}}
            if op == "metrics":  # /metrics: this camera's petcam_ families, as JSON
                return {"result": metric_families.to_json(served.metrics(process_stats()))}
            if op == "offer":
                pipeline, viewers = served.pipeline, served.viewers
                profile = await pipeline.wait_stream_profile(settings.PETCAM_SPS_WAIT_SECONDS)
                credential = args.get("credential")
                session = await viewers.open(str(args.get("sdp", "")), profile,
                                             owner=user_id_arg(args),
                                             credential=credential if isinstance(credential, str)
                                             else None)
                return {"result": {"type": "answer", "sdp": session.pc.localDescription.sdp,
                                   "session": session.id}}
            if op == "mse.open":  # a WebSocket viewer (streaming/mse_consumer.py)
                channel = args.get("channel")
                if not isinstance(channel, str) or not channel:
                    return {"error": "invalid_request", "detail": "mse.open needs the "
                                                                  "socket's channel"}
                credential = args.get("credential")
                session = await served.viewers.open_mse(
                    self._socket_sender(channel), owner=user_id_arg(args),
                    credential=credential if isinstance(credential, str) else None)
                return {"result": {"session": session.id}}
            if op == "mse.ack":  # fire and forget: no reply_to
                seq = args.get("seq")
                served.viewers.mse_ack(str(args.get("session", "")),
                                       seq if isinstance(seq, int) else None,
                                       user_id_arg(args))
                return {"result": {}}
            if op == "close":
                if await served.viewers.close(str(args.get("session", "")), user_id_arg(args),
                                              may_end_any=args.get("may_end_any") is True):
                    return {"result": {"closed": True}}
                return {"error": "unknown_session", "detail": "No such viewer session."}
            if op == "end_user_sessions":  # the user's access changed (web tier's signals)
                credential = args.get("credential")
                closed = await served.viewers.close_owned(
                    user_id_arg(args), credential if isinstance(credential, str) else None,
                    str(args.get("reason") or "access revoked")[:100])
                return {"result": {"closed": closed}}
            if op == "ping":
                return {"result": {"pong": True}}
            handler = served.op(str(op))  # an app's part, e.g. recording.start
            if handler is not None:
                return {"result": await handler(args)}
        except MediaError as exc:
            return {"error": exc.code, "detail": exc.detail}
        except Exception:
            log.exception("camera %s: worker operation %r failed", slug, op)
            return {"error": "worker_error", "detail": f"the media worker failed on {op!r}"}
        return {"error": "unknown_op", "detail": f"unknown worker operation {op!r}"}


def user_id_arg(args: dict[str, Any]) -> int | None:
    """The requesting user's id from an RPC's args (JSON over Redis: an int or absent)."""
    user_id = args.get("user_id")
    return user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else None


def process_stats() -> dict[str, Any]:
    """The worker process's footprint, to see leaks (fds, tasks) and memory."""
    with open("/proc/self/statm") as f:
        rss_pages = int(f.read().split()[1])
    return {
        "pid": os.getpid(),
        "rss_mb": round(rss_pages * resource.getpagesize() / 2**20, 1),
        "open_fds": len(os.listdir("/proc/self/fd")),
        "asyncio_tasks": len(asyncio.all_tasks()),
    }


_inprocess: MediaWorker | None = None


def start_inprocess_worker() -> MediaWorker | None:
    """Start the embedded worker on the running loop (idempotent); None if not in-process."""
    global _inprocess
    if settings.PETCAM_WORKER_MODE != "inprocess":
        return None
    if _inprocess is None:
        _inprocess = MediaWorker(load_cameras_now())
        asyncio.get_event_loop().create_task(
            _inprocess.start(watch_cameras=settings.PETCAM_CAMERA_WATCH_SECONDS))
        log.info("embedded media worker started in the ASGI process")
    return _inprocess
