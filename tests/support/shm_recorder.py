"""Records every frame a camera commits to a stream segment, for byte-exact comparisons.

The reading happens in a separate process: a reader thread inside a test process
that also runs aiortc clients competes with them for the GIL, and on a loaded
machine it can fall a whole ring (30 frames) behind and miss frames the server
did send. The child reads with its own FrameReader, stamps each frame with the
(system-wide) CLOCK_MONOTONIC time it had it, and streams it to the parent.
"""

from __future__ import annotations

import collections
import multiprocessing
import threading
from dataclasses import dataclass

IDR = 5


@dataclass(frozen=True)
class Written:
    frame_number: int
    timestamp: float  # camera CLOCK_MONOTONIC seconds
    read_at: float  # time.monotonic() when the recorder had it
    data: bytes

    @property
    def is_idr(self) -> bool:
        from tests.support.webrtc_client import nal_units

        return IDR in [n[0] & 0x1F for n in nal_units(self.data)]


def _record(segment: str, conn, stop) -> None:
    """Child process: read every committed frame; a sender thread ships them, so a slow
    parent never stalls the reading (the ring holds only one second)."""
    from streaming.media.shm.stream_reader import FrameReader

    reader = FrameReader(segment, stall_after=5.0)
    pending: collections.deque = collections.deque()
    wake = threading.Event()
    done = threading.Event()

    def send() -> None:
        while not (done.is_set() and not pending):
            wake.wait(0.05)
            wake.clear()
            while pending:
                conn.send(pending.popleft())
        conn.close()

    sender = threading.Thread(target=send, name="recorder-send")
    sender.start()
    last = None
    for raw in reader.frames(stop.is_set):
        number = raw.header.frame_number
        if last is not None and number <= last:
            continue  # this camera never restarts mid-recording: a frame seen already
        last = number
        pending.append((number, raw.header.timestamp, raw.read_ns / 1e9, raw.data))
        wake.set()
    done.set()
    wake.set()
    sender.join()
    reader.close()


class ShmRecorder:
    """`with ShmRecorder(segment) as rec:` ... `rec.frames` grows as the camera writes."""

    def __init__(self, segment: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe(duplex=False)
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_record, args=(segment, child, self._stop),
                                 name="shm-recorder", daemon=True)
        self._child_conn = child
        self.frames: list[Written] = []
        self._thread = threading.Thread(target=self._drain, name="shm-recorder-drain",
                                        daemon=True)

    def _drain(self) -> None:
        while True:
            try:
                item = self._conn.recv()
            except (EOFError, OSError):
                return
            self.frames.append(Written(*item))

    def __enter__(self) -> ShmRecorder:
        self._proc.start()
        self._child_conn.close()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
        self._thread.join(5)
        self._conn.close()

    def idrs(self) -> list[Written]:
        return [w for w in self.frames if w.is_idr]
