"""GET /health: is each component up, for every camera? 503 when a required one is down.

Required (down = "error", HTTP 503): the database and each enabled camera's
media worker (reachable over the channel layer). The rest only degrade the
status: a camera that is off (its reader, shm/RTSP/file, waiting or stalled), no detector,
a failed last recording, or less free disk under PETCAM_MEDIA_ROOT than a
recording needs to start.

Who sees what: anyone gets the status word and each component's status, nothing
more (no camera names, viewers, pids, segment names or source hosts). Staff users
(session or token) and requests from loopback get every figure.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection
from django.http import JsonResponse

from petcam_site.auth import is_staff_or_loopback
from streaming.media.sources import mask_credentials
from streaming.media.types import MediaError
from streaming.worker_rpc import call_worker

RANK = {"ok": 0, "degraded": 1, "error": 2}
PER_CAMERA = ("media_worker", "shm_reader", "detections_reader", "recorder")

_last_cameras: list[str] = []  # served while the database is down


def worst(statuses) -> str:
    return max(statuses, key=RANK.__getitem__, default="ok")


def _enabled_cameras() -> list[str]:
    from streaming.models import Camera

    return Camera.objects.enabled_slugs()


async def camera_slugs() -> list[str]:
    """Enabled cameras from the ORM; the last known list (or the default) if it is down."""
    global _last_cameras
    try:
        _last_cameras = await sync_to_async(_enabled_cameras)()
    except Exception:
        await sync_to_async(close_old_connections)()  # a broken connection is not reused
    return _last_cameras or [settings.PETCAM_CAMERA_SLUG]


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"status": "ok", "vendor": connection.vendor}
    except Exception as exc:  # any driver error means "down"
        close_old_connections()
        return {"status": "error", "vendor": connection.vendor,
                "detail": f"{type(exc).__name__}: {exc}".strip()[:300]}


def check_disk() -> dict:
    root = Path(settings.MEDIA_ROOT)
    existing = next((p for p in (root, *root.parents) if p.exists()), Path("/"))
    usage = shutil.disk_usage(existing)
    needed = settings.PETCAM_RECORDING_MIN_FREE_BYTES
    low = usage.free < needed
    return {"status": "degraded" if low else "ok",  # no path: /health is public
            "free_bytes": usage.free, "total_bytes": usage.total, "min_free_bytes": needed,
            **({"detail": "too little free space to start a recording"} if low else {})}


def _source_figures(source: dict) -> dict:
    """What /health may show of a non-shm source: /health is public, so the URL only
    masked (no credentials) and a file by its name (no path, like the disk check)."""
    kind = source.get("kind")
    shown: dict[str, Any] = {}
    if source.get("url"):
        shown["url"] = mask_credentials(str(source["url"]))
    if source.get("transport"):
        shown["transport"] = source["transport"]
    if source.get("path"):
        shown["file"] = Path(str(source["path"])).name
    error = source.get("last_error")
    return {**shown, "connected": bool(source.get("connected")),
            "reconnects": source.get("reconnects", 0), "errors": source.get("errors", 0),
            "last_error": mask_credentials(str(error)) if error else None,
            "retry_in_s": source.get("retry_in_s"),
            **({"loops": source["loops"]} if kind == "file" else {})}


def reader_check(status: dict) -> dict:
    """The camera's reader component. Keyed "shm_reader" for existing dashboards, but
    truthful for every source kind: RTSP/file cameras show their source, no segment."""
    reader = status["reader"]
    live = status["live"]
    source = status.get("source") or {}
    kind = source.get("kind") or "shm"
    if live:
        detail = "live"
    elif source.get("last_error"):  # an RTSP error, or a shm segment too small / truncated
        detail = "waiting for camera: " + mask_credentials(str(source["last_error"]))
    else:
        detail = "waiting for camera"
    return {
        "status": "ok" if live else "degraded",
        "state": status["state"],
        "detail": detail,
        "source": kind,
        **({"segment": status["stream_segment"]} if kind == "shm" else _source_figures(source)),
        "fps": status["fps"],
        "frames_read": reader["frames_read"],
        "gaps": reader["gaps"],
        "skipped": sum(reader["skipped"].values()),
        "last_frame_age_s": status["last_frame_age_s"],
        # Day/night (shm cameras): which of the board's cameras is on, and since when.
        "active_camera": status.get("active_camera"),
        "camera_id": status.get("camera_id"),
        "last_camera_switch": status.get("last_camera_switch"),
    }


async def _check_camera(camera: str) -> dict[str, dict]:
    """media_worker, shm_reader, detections_reader and recorder of one camera."""
    try:
        status = await call_worker(camera, "status", timeout=settings.PETCAM_HEALTH_TIMEOUT)
    except MediaError as exc:  # refused, or no answer (WorkerUnavailable)
        unknown = {"status": "error", "detail": "media worker unreachable"}
        return {"media_worker": {"status": "error", "detail": str(exc)},
                "shm_reader": unknown, "detections_reader": unknown, "recorder": unknown}
    except Exception as exc:  # e.g. Redis down: the channel layer itself fails
        unknown = {"status": "error", "detail": "channel layer unreachable"}
        return {"media_worker": {"status": "error",
                                 "detail": f"channel layer: {type(exc).__name__}: {exc}"},
                "shm_reader": unknown, "detections_reader": unknown, "recorder": unknown}
    process = status.get("process") or {}
    detections = status.get("detections") or {}
    recording = status.get("recording") or {}
    last = recording.get("last") or {}
    failed = last.get("status") == "failed"
    return {
        "media_worker": {"status": "ok", "pid": process.get("pid"),
                         "rss_mb": process.get("rss_mb"), "open_fds": process.get("open_fds"),
                         "viewers": (status.get("viewers") or {}).get("count")},
        "shm_reader": reader_check(status),
        "detections_reader": {
            # No detector daemon: live view and recording still work.
            "status": "ok" if detections.get("state") == "attached" else "degraded",
            "state": detections.get("state"),
            "results": detections.get("published"),
            "dropped": sum((detections.get("dropped") or {}).values()),
            **({"detail": detections["last_error"]} if detections.get("last_error") else {}),
        },
        "recorder": {
            "status": "degraded" if failed else "ok",
            "recording": bool(recording.get("recording")),
            "bytes": recording.get("bytes", 0),
            **({"detail": f"last recording failed: {last.get('failure_reason', '')}"}
               if failed else {}),
        },
    }


def summary(overall: str, components: dict[str, dict]) -> dict:
    """What anyone may read: the status word and each component's status."""
    return {"status": overall,
            "components": {name: {"status": c["status"]} for name, c in components.items()}}


async def health(request):
    cameras = await camera_slugs()
    database, disk, *per_camera = await asyncio.gather(
        sync_to_async(_check_database)(), asyncio.to_thread(check_disk),
        *(_check_camera(slug) for slug in cameras))
    by_camera = dict(zip(cameras, per_camera, strict=True))
    primary = (settings.PETCAM_CAMERA_SLUG if settings.PETCAM_CAMERA_SLUG in by_camera
               else cameras[0])
    components: dict[str, Any] = {"database": database, "disk": disk}
    for name in PER_CAMERA:
        # The primary camera's figures at the top (one camera is the usual install),
        # every camera's under "cameras"; the status is the worst of them.
        entries = {slug: checks[name] for slug, checks in by_camera.items()}
        components[name] = {**entries[primary],
                            "status": worst(e["status"] for e in entries.values()),
                            "cameras": entries}
    overall = worst(c["status"] for c in components.values())
    per_camera_status = {slug: worst(c["status"] for c in checks.values())
                         for slug, checks in by_camera.items()}
    if not await is_staff_or_loopback(request):
        return JsonResponse(summary(overall, components),
                            status=503 if overall == "error" else 200)
    return JsonResponse({"status": overall, "cameras": per_camera_status,
                         "components": components},
                        status=503 if overall == "error" else 200)
