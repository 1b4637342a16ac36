"""The recorder: one camera's recording control in the media worker.

The file itself is written by `recordings.media.sink.RecorderSink` (Django-free).
`CameraRecorder` is the worker's control for one camera: start/stop/status,
the `Recording` row (ORM through `database_sync_to_async`), periodic
checkpoints of the live figures, a new segment when the stream changes
resolution or profile, and at worker start the recovery of rows a crash left
in "recording". Each recording also gets its detection track (every detector
result inside it, `recordings.detection_track`), fed by `on_detection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError

from recordings.detection_track import DetectionTrack
from recordings.media.sink import RecorderSink, SinkResult
from recordings.media.writers import (
    FileWriter,
    make_writer,
    probe_file,
    repair_mp4,
)
from streaming.media.burst_log import BurstLog
from streaming.media.hub import Hub, SinkQueue
from streaming.media.shm.layout import DetectionResult
from streaming.media.types import AccessUnit, MediaError

from .models import (
    FORMATS,
    TRIGGERS,
    Recording,
    clean_recording_name,
    media_path,
    recording_relpath,
)
from .sidecars import DETECTIONS, sidecar_path

log = logging.getLogger("petcam.recorder")
# A database outage fails every checkpoint: one line per 30 s with a count, no tracebacks.
_checkpoint_faults = BurstLog(log, every=30.0)
# Detector results kept from before a recording opens: its first GOP (or an event's
# pre-roll) starts up to this long before the click.
RECENT_RESULTS_SECONDS = 30.0


def storage_error(exc: OSError, what: str) -> MediaError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return MediaError("disk_full", f"{what}: the disk is full ({exc.strerror}).")
    return MediaError("storage_error", f"{what}: {exc.strerror or exc}.")


# --- per-camera control -----------------------------------------------------------------------


@dataclass
class _Active:
    recording_id: int
    relpath: str
    name: str
    format: str
    trigger: str
    user_id: int | None
    clicked_at: datetime
    sink: RecorderSink
    segments: list[int] = field(default_factory=list)
    stop_reason: str = ""
    stop_requested: bool = False
    finished: asyncio.Future | None = None  # the final row's JSON
    classes: set[str] = field(default_factory=set)  # detection classes seen while it ran
    track: DetectionTrack | None = None  # every detector result inside this segment


def _started_at(writer: FileWriter, fallback: datetime) -> datetime:
    """Wall-clock time of the first frame (camera clock mapped to now), else the click."""
    if writer.first_wall is None:
        return fallback
    first = datetime.fromtimestamp(writer.first_wall, UTC)
    # Same host, same CLOCK_MONOTONIC: within a GOP of the click. Anything else is not ours.
    if abs((first - fallback).total_seconds()) > 600:
        return fallback
    return first


class CameraRecorder:
    """Start/stop/status of one camera's recording; owns the Recording rows it writes."""

    def __init__(self, camera: str, hub: Hub, *, maxsize: int | None = None) -> None:
        self.camera = camera
        self.hub = hub
        self.maxsize = maxsize
        self.active: _Active | None = None
        self.last: dict | None = None  # the latest finished recording, as JSON
        self.failed = 0  # recordings (segments) that ended "failed": petcam_recordings_failed
        self._lock = asyncio.Lock()
        self._supervisor: asyncio.Task | None = None
        self._recent: deque[DetectionResult] = deque(maxlen=3000)

    # --- API ----------------------------------------------------------------------------

    async def start(self, *, name: object = None, format: object = None,
                    user_id: object = None, trigger: object = "manual",
                    preroll: Callable[[], list[AccessUnit]] | None = None) -> dict:
        """`preroll`: called when the sink subscribes; the units it returns (IDR first) start
        the file instead of the cached GOP (event recordings)."""
        try:
            label = clean_recording_name(name)
        except ValidationError as exc:
            raise MediaError("invalid_name", " ".join(exc.messages)) from exc
        fmt = settings.PETCAM_RECORDING_FORMAT if format in (None, "") else format
        if fmt not in FORMATS:
            raise MediaError("invalid_format", f"format must be one of {', '.join(FORMATS)}.")
        trigger = trigger or "manual"
        if trigger not in TRIGGERS:
            raise MediaError("invalid_trigger", f"trigger must be one of {', '.join(TRIGGERS)}.")
        if user_id is not None and not isinstance(user_id, int):
            raise MediaError("invalid_user", "user_id must be an integer.")
        async with self._lock:
            if self.active is not None:
                raise MediaError("already_recording",
                                    f"Camera {self.camera!r} is already recording "
                                    f"(recording {self.active.recording_id}).")
            active = await self._open_segment(label, fmt, trigger, user_id, previous=None,
                                              preroll=preroll)
            self.active = active
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(active), name=f"recording-{self.camera}")
            log.info("camera %s: recording %d started (%s) -> %s", self.camera,
                     active.recording_id, fmt, active.relpath)
            return await self._row_json(active.recording_id)

    async def stop(self, reason: str = "") -> dict:
        async with self._lock:
            active = self.active
            if active is None:
                raise MediaError("not_recording", f"Camera {self.camera!r} is not recording.")
            active.stop_reason = reason
            active.stop_requested = True
            active.sink.request_stop()
            assert active.finished is not None
            return await asyncio.shield(active.finished)

    def split(self, recording_id: int | None = None) -> bool:
        """Cut the running recording at its next IDR into a new linked segment (scheduled
        recordings' segment length). Only if `recording_id` (when given) is still one of its
        segments; False when there is nothing to cut."""
        active = self.active
        if active is None or active.stop_requested:
            return False
        if recording_id is not None and recording_id not in {*active.segments,
                                                               active.recording_id}:
            return False
        active.sink.request_split()
        return True

    def on_detection(self, result: DetectionResult) -> None:
        """Every detector result, on the worker's loop: the running segment's track gets it;
        the last seconds are kept for the start of the next recording."""
        self._recent.append(result)
        horizon = time.clock_gettime(time.CLOCK_MONOTONIC) - RECENT_RESULTS_SECONDS
        while self._recent and self._recent[0].timestamp < horizon:
            self._recent.popleft()
        if self.active is not None and self.active.track is not None:
            self.active.track.add(result)

    def add_detection_classes(self, classes: set[str] | frozenset[str]) -> None:
        """Classes detected while the current recording runs (saved with its row)."""
        if self.active is not None and classes:
            self.active.classes.update(classes)

    def status(self) -> dict:
        """{recording: bool, ...live figures of the current recording; last: finished one}."""
        active = self.active
        if active is None:
            return {"recording": False, "camera": self.camera, "last": self.last}
        stats = active.sink.stats()
        return {
            "recording": True,
            "camera": self.camera,
            "id": active.recording_id,
            "name": active.name,
            "format": active.format,
            "trigger": active.trigger,
            "status": Recording.Status.RECORDING,
            "file": active.relpath,
            "filename": active.relpath,
            "started_at": _started_at(active.sink.writer, active.clicked_at).isoformat(),
            **stats,
            "bytes_written": stats["bytes"],
            "size_bytes": stats["bytes"],
            "segments": [*active.segments, active.recording_id],
            "detection_classes": sorted(active.classes),
            "camera_switches": list(active.sink.camera_switches),
            "last": self.last,
        }

    def summary(self) -> dict:
        """What the live page's status event carries once a second."""
        active = self.active
        if active is None:
            return {"recording": False}
        stats = active.sink.stats()
        return {"recording": True, "id": active.recording_id, "name": active.name,
                "format": active.format, "frame_count": stats["frame_count"],
                "bytes": stats["bytes"], "duration": stats["duration"],
                "dropped_frames": stats["dropped_frames"]}

    async def shutdown(self) -> None:
        """Worker stopping: finish the file properly (status complete)."""
        if self.active is not None:
            try:
                await self.stop("stopped because the media worker shut down")
            except MediaError:
                pass
        if self._supervisor is not None:
            await asyncio.gather(self._supervisor, return_exceptions=True)

    # --- segments -------------------------------------------------------------------------

    async def _open_segment(self, name: str, fmt: str, trigger: str, user_id: int | None,
                            previous: _Active | None,
                            preroll: Callable[[], list[AccessUnit]] | None = None,
                            handover: tuple[SinkQueue, list[AccessUnit]] | None = None,
                            ) -> _Active:
        clicked = datetime.now(UTC)
        relpath = recording_relpath(self.camera, clicked, fmt)
        writer = make_writer(fmt, media_path(relpath))
        try:
            await asyncio.to_thread(_create_file, writer)
        except OSError as exc:
            raise storage_error(exc, "cannot create the recording file") from exc
        try:
            row_id = await database_sync_to_async(_create_row)(
                camera=self.camera, file=relpath, format=fmt, trigger=trigger, name=name,
                started_at=clicked, created_by_id=user_id,
                previous_segment_id=previous.recording_id if previous else None)
        except Exception:
            await asyncio.to_thread(_remove_empty, writer.path)
            raise
        sink = RecorderSink(self.hub, writer, name=f"{self.camera}-{row_id}",
                            maxsize=self.maxsize or settings.PETCAM_RECORDER_QUEUE_FRAMES,
                            previous_camera_id=previous.sink.camera_id if previous else None)
        if handover is not None:  # a split: continue exactly where the previous file ended
            sink.adopt(handover)
        else:
            seed = preroll() if preroll is not None else None
            sink.start(from_gop=True, seed=seed or None)
        track = DetectionTrack(sidecar_path(relpath, DETECTIONS),
                               lambda: writer.first_timestamp)
        track.seed(self._recent)  # the first frames may predate the click
        active = _Active(row_id, relpath, name, fmt, trigger, user_id, clicked, sink,
                         finished=asyncio.get_running_loop().create_future(), track=track)
        if previous is not None:
            active.segments = [*previous.segments, previous.recording_id]
            active.finished = previous.finished  # stop() resolves with the last segment
        return active

    async def _supervise(self, active: _Active) -> None:
        try:
            await self._supervise_segments(active)
        except Exception as exc:  # never leave the camera stuck "recording"
            log.exception("camera %s: recorder supervisor failed", self.camera)
            current = self.active or active
            current.sink.request_stop()
            await asyncio.gather(current.sink.wait(), return_exceptions=True)
            row = {"id": current.recording_id, "camera": self.camera, "file": current.relpath,
                   "filename": current.relpath, "status": Recording.Status.FAILED,
                   "failure_reason": f"recorder error: {exc}"}
            with contextlib.suppress(Exception):
                row = await self._finish_row(current, Recording.Status.FAILED,
                                             f"recorder error: {exc}")
            self._done(current, row)

    async def _supervise_segments(self, active: _Active) -> None:
        """Checkpoint live figures; finish rows; roll over to a new segment on stream change."""
        while True:
            sink = active.sink
            every = settings.PETCAM_RECORDING_CHECKPOINT_SECONDS
            while not sink.done:
                await asyncio.wait({sink._task}, timeout=every)
                if not sink.done:
                    await self._checkpoint(active)
            result = await sink.wait()
            handover = sink.handover if result.reason == "split" else None
            if result.reason in ("stream_changed", "split") and active.stop_requested:
                result = SinkResult("stopped")
            if handover is not None and result.reason != "split":
                self.hub.unsubscribe(handover[0])
                handover = None
            if result.reason in ("stream_changed", "split"):
                try:
                    nxt = await self._open_segment(active.name, active.format, active.trigger,
                                                   active.user_id, previous=active,
                                                   handover=handover)
                except Exception as exc:
                    if handover is not None:
                        self.hub.unsubscribe(handover[0])
                    log.exception("camera %s: could not continue in a new segment", self.camera)
                    row = await self._finish_row(
                        active, Recording.Status.COMPLETE,
                        f"ended: {result.detail}; no new segment ({exc})")
                    self._done(active, row)
                    return
                row = await self._finish_row(
                    active, Recording.Status.COMPLETE,
                    f"segment ended: {result.detail}; continued in recording {nxt.recording_id}")
                self.last = row
                self.active = nxt
                if active.stop_requested:  # stop() arrived while the segment was opening
                    nxt.stop_requested, nxt.stop_reason = True, active.stop_reason
                    nxt.sink.request_stop()
                log.info("camera %s: %s; recording continues as %d", self.camera,
                         result.detail, nxt.recording_id)
                active = nxt
                continue
            if result.reason == "stopped":
                row = await self._finish_row(active, Recording.Status.COMPLETE, active.stop_reason)
            else:
                row = await self._finish_row(active, Recording.Status.FAILED,
                                             self._failure_text(result))
                log.error("camera %s: recording %d failed: %s", self.camera,
                          active.recording_id, row["failure_reason"])
            self._done(active, row)
            return

    def _done(self, active: _Active, row: dict) -> None:
        # One line per recording end (failures also logged above with the reason).
        log.info("camera %s: recording %d stopped (%s): %s frames, %s bytes, %s s",
                 self.camera, active.recording_id, row.get("status"), row.get("frame_count"),
                 row.get("size_bytes", row.get("bytes")), row.get("duration"))
        self.last = row
        if row.get("status") == Recording.Status.FAILED:
            self.failed += 1
        if self.active is active:
            self.active = None
        if active.finished is not None and not active.finished.done():
            active.finished.set_result(row)

    @staticmethod
    def _failure_text(result: SinkResult) -> str:
        error = result.error
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            what = f"disk full ({result.detail})"
        elif result.reason == "write_error":
            what = f"write error ({result.detail})"
        else:
            what = f"unusable stream ({result.detail})"
        return f"{what}; the file keeps what was written before"

    async def _flush_track(self, active: _Active) -> None:
        if active.track is None:
            return
        try:
            await asyncio.to_thread(active.track.flush)
        except OSError as exc:  # the video matters more: note it, keep recording
            _checkpoint_faults.warning(
                f"track {self.camera}", "camera %s: detection track of recording %d not "
                "written (%s)", self.camera, active.recording_id, exc.strerror or exc)

    async def _checkpoint(self, active: _Active) -> None:
        await self._flush_track(active)
        writer = active.sink.writer
        fields = {"frame_count": writer.frames, "size_bytes": writer.payload_bytes,
                  "duration": writer.duration, "dropped_frames": active.sink.dropped,
                  "gaps": writer.gaps}
        fields.update(_stream_fields(writer))
        fields["detection_classes"] = sorted(active.classes)
        fields["camera_switches"] = list(active.sink.camera_switches)
        if writer.first_wall is not None:
            fields["started_at"] = _started_at(writer, active.clicked_at)
        try:
            await database_sync_to_async(_update_row)(active.recording_id, fields)
        except Exception as exc:
            _checkpoint_faults.warning(
                f"checkpoint {self.camera}", "camera %s: checkpoint of recording %d failed "
                "(%s: %s); still recording, the row is saved when the database is back",
                self.camera, active.recording_id, type(exc).__name__,
                str(exc).strip().splitlines()[0] if str(exc).strip() else "")

    async def _finish_row(self, active: _Active, status: str, reason: str) -> dict:
        await self._flush_track(active)
        sink, writer = active.sink, active.sink.writer
        fields: dict[str, Any] = {"status": status, "failure_reason": reason[:2000],
                                  "dropped_frames": sink.dropped, "gaps": writer.gaps}
        fields.update(_stream_fields(writer))
        fields["detection_classes"] = sorted(active.classes)
        fields["camera_switches"] = list(active.sink.camera_switches)
        started = _started_at(writer, active.clicked_at)
        fields["started_at"] = started
        if status == Recording.Status.FAILED and writer.format == "mp4":
            # Some muxed frames died with the torn fragment: count what the file really holds.
            probe = await asyncio.to_thread(probe_file, writer.path, writer.format)
            fields.update(frame_count=probe.frame_count, size_bytes=probe.size,
                          duration=probe.duration or 0.0)
        else:
            fields.update(frame_count=writer.frames, size_bytes=writer.size,
                          duration=writer.duration)
        if writer.frames == 0 and status == Recording.Status.COMPLETE:
            fields["status"] = Recording.Status.FAILED
            fields["failure_reason"] = (reason + "; " if reason else "") + \
                "no video arrived from the camera (is it running?)"
        fields["ended_at"] = started + timedelta(seconds=fields["duration"])
        for attempt in range(3):
            try:
                return await database_sync_to_async(_update_row)(active.recording_id, fields)
            except Exception:
                log.warning("camera %s: could not finish recording %d (attempt %d)",
                            self.camera, active.recording_id, attempt + 1, exc_info=True)
                await asyncio.sleep(0.5)
        # The database is gone: answer with what we know; recovery fixes the row later.
        return {"id": active.recording_id, "camera": self.camera, "name": active.name,
                "format": active.format, "trigger": active.trigger, "file": active.relpath,
                "filename": active.relpath, "bytes": fields["size_bytes"],
                **{k: (v.isoformat() if isinstance(v, datetime) else v)
                   for k, v in fields.items()}}

    async def _row_json(self, recording_id: int) -> dict:
        return await database_sync_to_async(_row_api)(recording_id)

    # --- recovery ---------------------------------------------------------------------------

    async def recover(self) -> list[dict]:
        """Rows a crash left in "recording" for this camera become "interrupted", with
        frame count, size and duration read from the file (an MP4's torn tail trimmed)."""
        async with self._lock:
            try:
                rows = await database_sync_to_async(_stale_rows)(
                    self.camera, self.active.recording_id if self.active else None)
            except Exception:
                log.warning("camera %s: cannot look for interrupted recordings", self.camera,
                            exc_info=True)
                return []
        recovered = []
        for row in rows:
            try:
                recovered.append(await self._recover_row(row))
            except Exception:
                log.exception("camera %s: recovering recording %d failed", self.camera, row.pk)
        return recovered

    async def _recover_row(self, row: Recording) -> dict:
        try:
            path = media_path(row.file.name)
        except ValueError:
            path = None
        note = "the media worker stopped while recording (crash or kill)"
        fields: dict[str, Any] = {"status": Recording.Status.INTERRUPTED}
        if path is None or not path.exists():
            fields.update(frame_count=0, size_bytes=0, duration=0.0)
            note += "; the file is missing"
        else:
            removed = 0
            if row.format == "mp4":
                removed = await asyncio.to_thread(repair_mp4, path)
            probe = await asyncio.to_thread(probe_file, path, row.format)
            duration = probe.duration
            if duration is None:  # raw .h264 has no timestamps: the checkpoint's frame rate
                rate = row.duration / row.frame_count if row.frame_count and row.duration \
                    else 1 / 30
                duration = probe.frame_count * rate
            fields.update(frame_count=probe.frame_count, size_bytes=probe.size,
                          duration=duration)
            if probe.width and not row.width:
                fields.update(width=probe.width, height=probe.height)
            note += f"; the file keeps {probe.frame_count} frames"
            if removed:
                note += f" (a torn last fragment of {removed} bytes was trimmed)"
        fields["failure_reason"] = note
        fields["ended_at"] = row.started_at + timedelta(seconds=fields["duration"])
        result = await database_sync_to_async(_update_row)(row.pk, fields)
        log.warning("camera %s: recording %d was interrupted; recovered: %s", self.camera,
                    row.pk, note)
        return result


def _create_file(writer: FileWriter) -> None:
    existing = writer.path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < settings.PETCAM_RECORDING_MIN_FREE_BYTES:
        raise OSError(errno.ENOSPC, f"only {free // 1024} KiB free")
    writer.create()


def _stream_fields(writer: FileWriter) -> dict:
    if writer.info is None:
        return {}
    return {"width": writer.info.width, "height": writer.info.height,
            "profile": writer.info.profile_level_id}


def _remove_empty(path: Path) -> None:
    try:
        if path.stat().st_size == 0:
            path.unlink()
    except OSError:
        pass


# --- ORM (sync; called through database_sync_to_async) -----------------------------------------


def _create_row(**fields) -> int:
    return Recording.objects.create(status=Recording.Status.RECORDING, **fields).pk


def _update_row(recording_id: int, fields: dict) -> dict:
    Recording.objects.filter(pk=recording_id).update(updated_at=datetime.now(UTC), **fields)
    return _row_api(recording_id)


def _row_api(recording_id: int) -> dict:
    return Recording.objects.get(pk=recording_id).to_api()


def _stale_rows(camera: str, active_id: int | None) -> list[Recording]:
    rows = Recording.objects.filter(camera=camera, status=Recording.Status.RECORDING)
    return list(rows.exclude(pk=active_id) if active_id else rows)
