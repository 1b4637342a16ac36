"""The media worker: owns the camera pipelines and answers requests from the web tier.

Embedded default: started inside the ASGI server's event loop. Production:
`python manage.py media_worker --camera SLUG`, one process per camera, on
the Redis channel layer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import os
import resource
import time
from typing import Any

import aiortc.codecs.h264
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from detections.feed import DetectionFeed
from recordings.event_trigger import EventSettings, EventTrigger
from recordings.recorder import CameraRecorder, RecorderError
from recordings.retention import retention_loop

from . import worker_metrics
from .burst_log import BurstLog
from .camera_pipeline import CameraConfig, CameraPipeline
from .preroll import PrerollBuffer
from .viewer_session import OfferRejected
from .viewers import ViewerLimits, Viewers
from .worker_rpc import worker_channel

log = logging.getLogger("petcam.worker")


def camera_group(camera: str) -> str:
    """Channel-layer group of a camera's WebSocket clients (status, detections)."""
    return f"petcam.camera.{camera}"


def configured_cameras() -> list[CameraConfig]:
    """The enabled cameras from the database (sync: call it off the event loop)."""
    from .models import Camera

    return [CameraConfig(slug=c.slug, name=c.name, source=c.source,
                         stream_segment=c.stream_segment_name,
                         detections_segment=c.detections_segment_name,
                         max_viewers=c.viewer_limit)
            for c in Camera.objects.filter(enabled=True)]


def load_cameras_now() -> list[CameraConfig]:
    """configured_cameras() from code that may run on the event loop (server start-up):
    Django refuses ORM calls there, so the query runs in a thread and this waits for it."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(configured_cameras).result()


class MediaWorker:
    """Runs pipelines for its cameras and serves their RPC channels."""

    def __init__(self, cameras: list[CameraConfig]) -> None:
        self.pipelines: dict[str, CameraPipeline] = {}
        self.viewers: dict[str, Viewers] = {}
        self.detections: dict[str, DetectionFeed] = {}
        self.recorders: dict[str, CameraRecorder] = {}
        self.events: dict[str, EventTrigger] = {}
        self._limits = ViewerLimits(max_viewers=settings.PETCAM_MAX_VIEWERS,  # per camera
                                    ice_timeout=settings.PETCAM_ICE_TIMEOUT,
                                    silence_timeout=settings.PETCAM_PEER_SILENCE_TIMEOUT,
                                    queue_frames=settings.PETCAM_VIEWER_QUEUE_FRAMES,
                                    shared_packetizer=settings.PETCAM_SHARED_PACKETIZER,
                                    replay_gop=settings.PETCAM_GOP_REPLAY,
                                    catch_up_bytes_per_s=settings.PETCAM_CATCH_UP_MBITS * 125_000)
        self._event_settings = EventSettings.from_settings()
        for camera in cameras:
            self._build(camera)
        self._tasks: list[asyncio.Task] = []
        self._offers: set[asyncio.Task] = set()  # offers being answered
        aiortc.codecs.h264.PACKET_MAX = settings.PETCAM_RTP_PACKET_MAX

    def _build(self, c: CameraConfig) -> None:
        """One camera's pipeline, viewers, detection feed, recorder and event trigger
        (all made before any is registered: a camera is served whole or not at all)."""
        pipeline = CameraPipeline(c, stall_after=settings.PETCAM_STALL_SECONDS)
        viewers = Viewers(c.slug, pipeline.hub,
                          dataclasses.replace(self._limits, max_viewers=c.max_viewers),
                          settings.PETCAM_ICE_SERVERS, publish_clock=self._clock_publisher(c.slug))
        feed = DetectionFeed(c.slug, c.detections_segment, camera_group(c.slug),
                             pipeline.frame_size,
                             sample_seconds=settings.PETCAM_DETECTION_SAMPLE_SECONDS,
                             retention_days=settings.PETCAM_DETECTION_RETENTION_DAYS)
        recorder = CameraRecorder(c.slug, pipeline.hub)
        events = self._event_settings  # pre-roll only kept when events are on
        trigger = EventTrigger(recorder, PrerollBuffer(events.preroll) if events.enabled
                               else None, events)
        feed.listeners.append(trigger.on_detection)
        self.pipelines[c.slug], self.viewers[c.slug] = pipeline, viewers
        self.detections[c.slug], self.recorders[c.slug] = feed, recorder
        self.events[c.slug] = trigger

    def _start_camera(self, slug: str, loop: asyncio.AbstractEventLoop) -> None:
        pipeline = self.pipelines[slug]
        pipeline.start(loop)
        if self.events[slug].preroll is not None:
            self.events[slug].preroll.attach(pipeline.hub)
        self.viewers[slug].start()
        self.detections[slug].start(loop)
        # Before serving RPC: rows a crash left "recording" become "interrupted".
        self._tasks.append(asyncio.create_task(self.recorders[slug].recover(),
                                               name=f"recording-recovery-{slug}"))
        self._tasks.append(asyncio.create_task(self._serve(slug), name=f"rpc-{slug}"))
        self._tasks.append(asyncio.create_task(self._publish_status(slug),
                                               name=f"status-{slug}"))

    async def start(self, *, watch_cameras: float = 0.0) -> None:
        """`watch_cameras` > 0: look for newly added cameras this often (seconds)."""
        loop = asyncio.get_running_loop()
        for slug in list(self.pipelines):
            self._start_camera(slug, loop)
        self._tasks.append(asyncio.create_task(retention_loop(), name="recording-retention"))
        if watch_cameras > 0:
            self._tasks.append(asyncio.create_task(self._watch_cameras(watch_cameras),
                                                   name="camera-watch"))

    async def add_camera(self, camera: CameraConfig) -> bool:
        """Serve a camera added while the worker runs; False if it is served already."""
        if camera.slug in self.pipelines:
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
        for trigger in self.events.values():
            await trigger.stop()
        for recorder in self.recorders.values():  # finish files while frames still flow
            await recorder.shutdown()
        for viewers in self.viewers.values():
            await viewers.stop()
        for feed in self.detections.values():
            await feed.stop()
        for pipeline in self.pipelines.values():
            await asyncio.to_thread(pipeline.stop)

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
    def _clock_publisher(slug: str):
        async def publish(clock: dict) -> None:
            try:
                await get_channel_layer().group_send(camera_group(slug),
                                                     {"type": "camera.clock", "clock": clock})
            except Exception:
                log.debug("clock publish failed for %s", slug, exc_info=True)
        return publish

    async def _publish_status(self, slug: str) -> None:
        """Tell the camera's WebSocket clients how it is doing, once a second."""
        layer = get_channel_layer()
        while True:
            await asyncio.sleep(1.0)
            status = self.pipelines[slug].status()
            summary = {k: status[k] for k in ("camera", "state", "live", "fps", "bitrate_kbps",
                                             "width", "height", "profile", "profile_level_id")}
            summary["viewers"] = len(self.viewers[slug].sessions)
            summary["recording"] = self.recorders[slug].summary()
            try:
                await layer.group_send(camera_group(slug), {"type": "camera.status",
                                                            "status": summary})
            except Exception:
                log.debug("status publish failed for %s", slug, exc_info=True)

    async def _handle(self, slug: str, message: dict[str, Any]) -> dict[str, Any]:
        op = message.get("op")
        args = message.get("args") or {}
        pipeline, viewers = self.pipelines[slug], self.viewers[slug]
        recorder = self.recorders[slug]
        try:
            if op == "status":
                return {"result": {**pipeline.status(), "viewers": viewers.stats(),
                                   "detections": self.detections[slug].status(),
                                   "recording": recorder.status(),
                                   "events": self.events[slug].status(),
                                   "process": process_stats()}}
            if op == "metrics":  # /metrics: this camera's petcam_ families, as JSON
                return {"result": worker_metrics.to_json(
                    worker_metrics.collect(self, slug, process_stats()))}
            if op == "recording.start":
                return {"result": await recorder.start(
                    name=args.get("name"), format=args.get("format"),
                    user_id=args.get("user_id"), trigger=args.get("trigger") or "manual")}
            if op == "recording.stop":
                return {"result": await recorder.stop()}
            if op == "recording.status":
                return {"result": recorder.status()}
            if op == "offer":
                profile = await pipeline.wait_stream_profile(settings.PETCAM_SPS_WAIT_SECONDS)
                session = await viewers.open(str(args.get("sdp", "")), profile,
                                             owner=user_id_arg(args))
                return {"result": {"type": "answer", "sdp": session.pc.localDescription.sdp,
                                   "session": session.id}}
            if op == "close":
                if await viewers.close(str(args.get("session", "")), user_id_arg(args),
                                       may_end_any=args.get("may_end_any") is True):
                    return {"result": {"closed": True}}
                return {"error": "unknown_session", "detail": "No such viewer session."}
            if op == "ping":
                return {"result": {"pong": True}}
        except (OfferRejected, RecorderError) as exc:
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
