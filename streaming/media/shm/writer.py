"""Writers for both segments, behaving like the camera and detector daemons.

Used by the camera simulator and the tests. The frame writer copies the way
the real daemon does: bump write_index first, then copy the *whole* slot
(header and the full data array) from a reused staging frame, so a reader
racing it sees exactly the torn states the board produces.
"""

from __future__ import annotations

import time

from streaming.media.shm import segment as shm_segment
from streaming.media.shm.layout import (
    FORMAT_H264,
    FRAME_DATA_CAPACITY,
    FRAME_DATA_OFFSET,
    FRAME_INTERVAL_OFFSET,
    FRAME_SIZE,
    LATEST_DETECTION_RESULT_SIZE,
    SHARED_FRAME_BUFFER_SIZE,
    VERSION_OFFSET,
    WRITE_INDEX_OFFSET,
    DetectionResult,
    FrameHeader,
    slot_for_index,
    slot_offset,
    store_u32,
)


def monotonic_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class FrameWriter:
    """Creates the H.264 stream segment and writes frames into its ring."""

    def __init__(self, name: str, *, frame_interval_ms: int = 0, camera_id: int = 0) -> None:
        self.name = name
        self.camera_id = camera_id
        self._map = shm_segment.create(name, SHARED_FRAME_BUFFER_SIZE)
        self._staging = bytearray(FRAME_SIZE)  # the daemon's reused Frame struct
        self.write_index = 0
        self.frame_number = 0
        store_u32(self._map.mm, FRAME_INTERVAL_OFFSET, frame_interval_ms)

    def _stage(self, data: bytes, width: int, height: int, fmt: int,
               frame_number: int, timestamp_ns: int, data_size: int | None) -> FrameHeader:
        header = FrameHeader(
            frame_number=frame_number,
            tv_sec=timestamp_ns // 1_000_000_000,
            tv_nsec=timestamp_ns % 1_000_000_000,
            camera_id=self.camera_id,
            width=width,
            height=height,
            format=fmt,
            data_size=len(data) if data_size is None else data_size,
        )
        self._staging[0:FRAME_DATA_OFFSET] = header.pack()
        n = min(len(data), FRAME_DATA_CAPACITY)
        self._staging[FRAME_DATA_OFFSET:FRAME_DATA_OFFSET + n] = data[:n]
        return header

    def _bump_index(self) -> int:
        self.write_index = (self.write_index + 1) & 0xFFFFFFFF
        store_u32(self._map.mm, WRITE_INDEX_OFFSET, self.write_index)
        return slot_offset(slot_for_index(self.write_index))

    def write(self, data: bytes, *, width: int, height: int, fmt: int = FORMAT_H264,
              frame_number: int | None = None, timestamp_ns: int | None = None,
              data_size: int | None = None) -> FrameHeader:
        """Publish one frame. `data_size` may lie (fault injection)."""
        self.frame_number = self.frame_number + 1 if frame_number is None else frame_number
        header = self._stage(data, width, height, fmt, self.frame_number,
                             monotonic_ns() if timestamp_ns is None else timestamp_ns, data_size)
        off = self._bump_index()
        self._map.mm[off:off + FRAME_SIZE] = self._staging
        return header

    def write_torn(self, data: bytes, *, width: int, height: int, pause: float) -> FrameHeader:
        """Like write(), but stall `pause` seconds halfway through the slot copy.

        This is what a reader sees when the daemon is preempted mid-memcpy. The
        stall spins rather than sleeps: a thread inside memcpy is never in
        interruptible sleep, and the reader's writer probe relies on that.
        """
        self.frame_number += 1
        header = self._stage(data, width, height, FORMAT_H264, self.frame_number,
                             monotonic_ns(), None)
        off = self._bump_index()
        half = FRAME_DATA_OFFSET + len(data) // 2
        self._map.mm[off:off + half] = self._staging[:half]
        until = time.monotonic() + pause
        while time.monotonic() < until:
            pass
        self._map.mm[off + half:off + FRAME_SIZE] = self._staging[half:]
        return header

    def set_write_index(self, value: int) -> None:
        """Jump the ring counter (tests of wrap-around and daemon resets)."""
        self.write_index = value & 0xFFFFFFFF
        store_u32(self._map.mm, WRITE_INDEX_OFFSET, self.write_index)

    def close(self, *, unlink: bool = True) -> None:
        self._map.close()
        if unlink:
            shm_segment.unlink(self.name)


class DetectionWriter:
    """Creates the detections segment and publishes results, version last."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._map = shm_segment.create(name, LATEST_DETECTION_RESULT_SIZE)
        self.version = 0

    def write(self, result: DetectionResult) -> int:
        body = result.pack()
        self._map.mm[0:VERSION_OFFSET] = body[:VERSION_OFFSET]
        self.version = (self.version + 1) & 0xFFFFFFFF
        store_u32(self._map.mm, VERSION_OFFSET, self.version)
        return self.version

    def write_raw(self, body: bytes) -> int:
        """Write arbitrary bytes as the record body (fault injection)."""
        self._map.mm[0:VERSION_OFFSET] = body[:VERSION_OFFSET].ljust(VERSION_OFFSET, b"\0")
        self.version = (self.version + 1) & 0xFFFFFFFF
        store_u32(self._map.mm, VERSION_OFFSET, self.version)
        return self.version

    def close(self, *, unlink: bool = True) -> None:
        self._map.close()
        if unlink:
            shm_segment.unlink(self.name)

