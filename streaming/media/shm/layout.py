"""Byte layout of the camera daemon's shared-memory segments (DESIGN.md section 4).

Everything that knows an offset lives here, so the reader, the writer and the
tests agree on one definition. Little-endian, natural alignment (x86-64/aarch64).
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

# --- H.264 stream segment: SharedFrameBuffer ---------------------------------

RING_SLOTS = 30
FRAME_DATA_CAPACITY = 3_110_400  # uint8 data[] in one slot

# Frame header: frame_number, tv_sec, tv_nsec, camera_id, width, height, format, data_size
FRAME_HEADER = struct.Struct("<QqqiiiiQ")
FRAME_HEADER_SIZE = FRAME_HEADER.size  # 48
FRAME_DATA_OFFSET = FRAME_HEADER_SIZE
FRAME_SIZE = FRAME_HEADER_SIZE + FRAME_DATA_CAPACITY  # 3,110,448

# SharedFrameBuffer header: write_index, frame_interval_ms
BUFFER_HEADER = struct.Struct("<II")
WRITE_INDEX_OFFSET = 0
FRAME_INTERVAL_OFFSET = 4
RING_OFFSET = BUFFER_HEADER.size  # 8
SHARED_FRAME_BUFFER_SIZE = RING_OFFSET + RING_SLOTS * FRAME_SIZE  # 93,313,448

# write_index (and the detections version) change while readers look. Native "I": CPython
# reads it with one 4-byte load, while "<I" is assembled byte by byte and can tear across
# a carry (0x1FF -> 0x200 read as 0x100: a bogus "writer restarted"). Same machine as the
# daemon, so native order is its order; the layout is little-endian.
WRITE_INDEX = struct.Struct("I")
assert sys.byteorder == "little" and WRITE_INDEX.size == 4

FORMAT_JPEG = 0
FORMAT_NV12 = 1
FORMAT_RGB = 2
FORMAT_H264 = 3
KNOWN_FORMATS = {FORMAT_JPEG, FORMAT_NV12, FORMAT_RGB, FORMAT_H264}


def store_u32(buf, offset: int, value: int) -> None:
    """Write a uint32 that readers poll (write_index, version) with one 4-byte store.
    struct.pack_into zero-fills the field before packing: a reader racing it sees 0."""
    with memoryview(buf) as whole, whole[offset:offset + 4] as word, word.cast("I") as cell:
        cell[0] = value


def slot_offset(slot: int) -> int:
    """Byte offset of ring slot `slot` (0..29) inside the segment."""
    return RING_OFFSET + slot * FRAME_SIZE


def slot_for_index(write_index: int) -> int:
    """Slot written after write_index reached `write_index` (the newest one)."""
    return (write_index - 1) % RING_SLOTS


@dataclass(frozen=True, slots=True)
class FrameHeader:
    frame_number: int
    tv_sec: int
    tv_nsec: int
    camera_id: int
    width: int
    height: int
    format: int
    data_size: int

    @property
    def timestamp(self) -> float:
        """CLOCK_MONOTONIC seconds at capture."""
        return self.tv_sec + self.tv_nsec / 1e9

    @classmethod
    def unpack_from(cls, buf, offset: int = 0) -> FrameHeader:
        return cls(*FRAME_HEADER.unpack_from(buf, offset))

    def pack(self) -> bytes:
        return FRAME_HEADER.pack(
            self.frame_number, self.tv_sec, self.tv_nsec, self.camera_id,
            self.width, self.height, self.format, self.data_size,
        )


# --- Detections segment: LatestDetectionResult --------------------------------

MAX_DETECTIONS = 10
CLASS_NAME_SIZE = 32
# char class_name[32], float32 confidence, int32 x, y, w, h
DETECTION = struct.Struct("<32sfiiii")
DETECTION_SIZE = DETECTION.size  # 52
# frame_number, tv_sec, tv_nsec, num_detections
DETECTIONS_HEADER = struct.Struct("<Qqqi")
DETECTIONS_OFFSET = DETECTIONS_HEADER.size  # 28
VERSION = struct.Struct("I")  # native, one load: see WRITE_INDEX
VERSION_OFFSET = DETECTIONS_OFFSET + MAX_DETECTIONS * DETECTION_SIZE  # 548
LATEST_DETECTION_RESULT_SIZE = VERSION_OFFSET + VERSION.size  # 552


@dataclass(frozen=True, slots=True)
class Detection:
    class_name: str
    confidence: float
    x: int
    y: int
    w: int
    h: int

    def pack(self) -> bytes:
        name = self.class_name.encode("utf-8")[: CLASS_NAME_SIZE - 1]
        return DETECTION.pack(name, self.confidence, self.x, self.y, self.w, self.h)

    @classmethod
    def unpack_from(cls, buf, offset: int) -> Detection:
        raw_name, conf, x, y, w, h = DETECTION.unpack_from(buf, offset)
        name = raw_name.split(b"\0", 1)[0].decode("utf-8", errors="replace")
        return cls(name, conf, x, y, w, h)


@dataclass(frozen=True, slots=True)
class DetectionResult:
    frame_number: int
    tv_sec: int
    tv_nsec: int
    detections: tuple[Detection, ...]
    version: int = 0

    @property
    def timestamp(self) -> float:
        return self.tv_sec + self.tv_nsec / 1e9

    def pack(self) -> bytes:
        """The whole 552-byte record, version included."""
        if len(self.detections) > MAX_DETECTIONS:
            raise ValueError(f"at most {MAX_DETECTIONS} detections, got {len(self.detections)}")
        body = bytearray(LATEST_DETECTION_RESULT_SIZE)
        DETECTIONS_HEADER.pack_into(
            body, 0, self.frame_number, self.tv_sec, self.tv_nsec, len(self.detections)
        )
        for i, det in enumerate(self.detections):
            start = DETECTIONS_OFFSET + i * DETECTION_SIZE
            body[start:start + DETECTION_SIZE] = det.pack()
        VERSION.pack_into(body, VERSION_OFFSET, self.version)
        return bytes(body)


assert FRAME_SIZE == 3_110_448
assert SHARED_FRAME_BUFFER_SIZE == 93_313_448
assert DETECTION_SIZE == 52 and LATEST_DETECTION_RESULT_SIZE == 552
