"""The recording sink: moves one camera's access units from the hub into a file writer.

`RecorderSink` subscribes to the camera's hub with its own bounded queue,
starting from the cached GOP (the last IDR before the click, so the file is
decodable from its first frame). It consumes on the worker's event loop but
every file operation runs in its own writer thread, in batches: a slow disk
never blocks the shm reader or the viewers. If the disk falls too far behind,
the hub queue overflows and the sink skips to the next IDR; the lost frames are
counted (`dropped_frames`) and show as a gap in the file. Day/night switches of
the board's camera (the access units' camera_id) are listed in `camera_switches`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import av.error

from recordings.media.writers import FileWriter, StreamChanged, StreamError, repair_mp4
from streaming.media.day_night import camera_name
from streaming.media.hub import Hub, SinkClosed, SinkQueue
from streaming.media.types import AccessUnit

log = logging.getLogger("petcam.recorder")

BATCH_MAX = 64  # access units per trip to the writer thread


@dataclass
class SinkResult:
    reason: str  # "stopped" | "stream_changed" | "split" | "write_error" | "stream_error"
    detail: str = ""
    error: BaseException | None = None


class RecorderSink:
    """Moves one camera's access units from the hub into a FileWriter on a writer thread."""

    def __init__(self, hub: Hub, writer: FileWriter, *, name: str, maxsize: int,
                 previous_camera_id: int | None = None) -> None:
        """`previous_camera_id`: the camera the previous segment ended with (a switch that
        changed the resolution started this one: it is listed here at t 0)."""
        self.hub = hub
        self.writer = writer
        self.name = name
        self.maxsize = maxsize  # frames; ~10 s absorbs a slow SD card's stalls
        self.queue: SinkQueue | None = None
        self.result: SinkResult | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"rec-{name}")
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._skipped_at_start = 0
        self.write_seconds = 0.0  # writer-thread time spent in the writer (CPU + I/O)
        self.camera_id: int | None = None  # of the latest written frame (day 0 / night 1)
        self.previous_camera_id = previous_camera_id
        # [{t, camera_id, active_camera, from_camera_id}]; appended in the writer thread.
        self.camera_switches: list[dict[str, Any]] = []
        self._first_ts: float | None = None
        self._split = False  # end this file at the next IDR, handing the rest on
        self._prefix: list[AccessUnit] = []  # units handed over by the previous segment
        self._dropped_before = 0  # the adopted queue's drops that belong to earlier files
        self.handover: tuple[SinkQueue, list[AccessUnit]] | None = None  # after a split

    # --- control -------------------------------------------------------------------------

    def start(self, *, from_gop: bool = True, seed: list[AccessUnit] | None = None) -> None:
        """Subscribe and consume. `seed` (e.g. an event's pre-roll, IDR first) replaces the
        cached-GOP replay: those units are written first, with their own camera timestamps,
        then the live ones published from now on."""
        if seed:
            self.queue = self.hub.subscribe(f"recorder:{self.name}", maxsize=self.maxsize,
                                            from_gop=False)
            # Same tick as subscribe: nothing published in between, so no unit is lost or
            # doubled. The queue bound applies to live units only.
            self.queue.replay(seed)
        else:
            self.queue = self.hub.subscribe(f"recorder:{self.name}", maxsize=self.maxsize,
                                            from_gop=from_gop)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"rec-{self.name}")

    def adopt(self, handover: tuple[SinkQueue, list[AccessUnit]]) -> None:
        """Continue a split file: take over its still-subscribed queue and the units (IDR
        first) it did not write, so not a frame is lost or doubled between the two files."""
        queue, prefix = handover
        self.queue = queue
        self._prefix = list(prefix)
        self._dropped_before = queue.stats.dropped
        self._skipped_at_start = queue.stats.skipped_waiting_idr
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"rec-{self.name}")

    def request_split(self) -> None:
        """Finish this file just before the next IDR (result "split", `handover` set)."""
        self._split = True

    def request_stop(self) -> None:
        """Write what is queued now, then finish. Frames published after this are not taken."""
        if self.queue is not None:
            self.hub.sinks.discard(self.queue)
        self._stop.set()

    async def wait(self) -> SinkResult:
        assert self._task is not None
        return await asyncio.shield(self._task)

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    # --- live figures ----------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Frames lost because this sink fell behind (after its first written frame)."""
        if self.queue is None:
            return 0
        stats = self.queue.stats
        return (stats.dropped - self._dropped_before
                + max(0, stats.skipped_waiting_idr - self._skipped_at_start))

    def stats(self) -> dict[str, Any]:
        w = self.writer
        queue = self.queue
        return {
            "frame_count": w.frames,
            "bytes": w.payload_bytes,
            "duration": round(w.duration, 3),
            "dropped_frames": self.dropped,
            "overflows": queue.stats.overflows if queue else 0,
            "gaps": w.gaps,
            "queued": len(queue) if queue else 0,
            "width": w.info.width if w.info else None,
            "height": w.info.height if w.info else None,
            "profile": w.info.profile_level_id if w.info else "",
        }

    # --- the consumer ----------------------------------------------------------------------

    async def _next_batch(self) -> list[AccessUnit] | None:
        """Up to BATCH_MAX queued units; waits for one unless stopping (None: finished)."""
        queue = self.queue
        assert queue is not None
        if self._prefix:
            batch, self._prefix = self._prefix[:BATCH_MAX], self._prefix[BATCH_MAX:]
            return batch
        if not len(queue):
            if self._stop.is_set():
                return None
            getter = asyncio.ensure_future(queue.get())
            stopper = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
                if not getter.done():
                    getter.cancel()  # parked on an empty queue: nothing is lost
            if getter.cancelled() or not getter.done():
                return None
            batch = [getter.result().au]  # SinkClosed propagates
        else:
            batch = [(await queue.get()).au]
        while len(queue) and len(batch) < BATCH_MAX:
            batch.append((await queue.get()).au)
        return batch

    def _write_batch(self, batch: list[AccessUnit]) -> SinkResult | None:
        """In the writer thread."""
        started = time.perf_counter()
        try:
            for i, au in enumerate(batch):
                if self._split and au.is_idr and self.writer.frames:
                    self._prefix = batch[i:]  # the next file starts with this IDR
                    return SinkResult("split", "segment length reached")
                was_empty = self.writer.frames == 0
                written = self.writer.frames
                self.writer.write(au)
                if was_empty and self.writer.frames and self.queue is not None:
                    self._skipped_at_start = self.queue.stats.skipped_waiting_idr
                if self.writer.frames != written:
                    self._note_camera(au)
        except StreamChanged as exc:
            return SinkResult("stream_changed", str(exc), exc)
        except OSError as exc:
            return SinkResult("write_error", f"{exc.strerror or exc}", exc)
        except (StreamError, ValueError, av.error.FFmpegError) as exc:
            return SinkResult("stream_error", str(exc), exc)
        finally:
            self.write_seconds += time.perf_counter() - started
        return None

    def _note_camera(self, au: AccessUnit) -> None:
        """A written frame: list a change of camera_id (or one from the previous segment)."""
        if self._first_ts is None:
            self._first_ts = au.timestamp
        camera_id = au.camera_id
        if camera_id is None or camera_id == self.camera_id:
            return
        before = self.camera_id if self.camera_id is not None else self.previous_camera_id
        self.camera_id = camera_id
        if before is None or before == camera_id:
            return  # the camera this file started with
        self.camera_switches.append({"t": round(au.timestamp - self._first_ts, 3),
                                     "camera_id": camera_id,
                                     "active_camera": camera_name(camera_id),
                                     "from_camera_id": before})

    async def _run(self) -> SinkResult:
        loop = asyncio.get_running_loop()
        result: SinkResult | None = None
        try:
            while result is None:
                try:
                    batch = await self._next_batch()
                except SinkClosed:  # someone unsubscribed us
                    batch = None
                if batch is None:
                    result = SinkResult("stopped")
                    break
                result = await loop.run_in_executor(self._executor, self._write_batch, batch)
        finally:
            if result is not None and result.reason == "split" and self.queue is not None:
                # Keep the queue subscribed: the next file adopts it with what is left.
                while len(self.queue):
                    self._prefix.append((await self.queue.get()).au)
                self.handover, self._prefix = (self.queue, self._prefix), []
            elif self.queue is not None:
                self.hub.unsubscribe(self.queue)
            result = result or SinkResult("stopped")
            close_error = await loop.run_in_executor(self._executor, self._finish, result)
            if close_error is not None and result.reason in ("stopped", "stream_changed"):
                result = SinkResult("write_error", close_error.strerror or str(close_error),
                                    close_error)
            self._executor.shutdown(wait=False)
            self.result = result
        return result

    def _finish(self, result: SinkResult) -> OSError | None:
        """In the writer thread: close the file; after a write error leave it playable."""
        error: OSError | None = None
        try:
            self.writer.close()
        except OSError as exc:
            error = exc
        except Exception as exc:  # PyAV errors that are not OSErrors
            error = OSError(errno.EIO, str(exc))
        if (result.reason in ("write_error", "stream_error") or error is not None) \
                and self.writer.format == "mp4" and self.writer.path.exists():
            try:
                removed = repair_mp4(self.writer.path)
                if removed:
                    log.info("%s: trimmed a torn last fragment (%d bytes)", self.writer.path,
                             removed)
            except OSError:
                log.warning("could not repair %s", self.writer.path, exc_info=True)
        return error
