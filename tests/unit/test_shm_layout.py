"""The shared-memory byte layout, checked against the numbers in DESIGN.md section 4."""

import struct

import pytest

from streaming.media.shm import layout as L
from streaming.media.shm.segment import shm_path


def test_frame_buffer_sizes_match_the_daemon():
    assert L.FRAME_SIZE == 3_110_448
    assert L.FRAME_DATA_CAPACITY == 3_110_400
    assert L.SHARED_FRAME_BUFFER_SIZE == 93_313_448
    assert L.RING_SLOTS == 30
    assert L.RING_OFFSET == 8
    assert L.slot_offset(0) == 8
    assert L.slot_offset(29) == 8 + 29 * 3_110_448


def test_frame_header_field_offsets():
    header = L.FrameHeader(frame_number=0x0102030405060708, tv_sec=5123, tv_nsec=456_000_000,
                           camera_id=-2, width=1920, height=1080, format=L.FORMAT_H264,
                           data_size=123_456)
    raw = header.pack()
    assert len(raw) == 48
    assert struct.unpack_from("<Q", raw, 0)[0] == 0x0102030405060708
    assert struct.unpack_from("<q", raw, 8)[0] == 5123
    assert struct.unpack_from("<q", raw, 16)[0] == 456_000_000
    assert struct.unpack_from("<i", raw, 24)[0] == -2
    assert struct.unpack_from("<i", raw, 28)[0] == 1920
    assert struct.unpack_from("<i", raw, 32)[0] == 1080
    assert struct.unpack_from("<i", raw, 36)[0] == 3
    assert struct.unpack_from("<Q", raw, 40)[0] == 123_456
    assert L.FRAME_DATA_OFFSET == 48
    assert L.FrameHeader.unpack_from(raw) == header
    assert header.timestamp == pytest.approx(5123.456)


def test_formats():
    assert (L.FORMAT_JPEG, L.FORMAT_NV12, L.FORMAT_RGB, L.FORMAT_H264) == (0, 1, 2, 3)


def test_detection_record_offsets():
    assert L.DETECTION_SIZE == 52
    assert L.LATEST_DETECTION_RESULT_SIZE == 552
    assert L.DETECTIONS_OFFSET == 28
    assert L.VERSION_OFFSET == 548
    result = L.DetectionResult(
        frame_number=77, tv_sec=10, tv_nsec=20, version=9,
        detections=(L.Detection("cat", 0.5, 1, 2, 3, 4), L.Detection("dog", 0.25, 5, 6, 7, 8)))
    raw = result.pack()
    assert len(raw) == 552
    assert struct.unpack_from("<Qqqi", raw, 0) == (77, 10, 20, 2)
    # second detection starts at 28 + 52
    second = 28 + 52
    assert raw[second:second + 32].rstrip(b"\0") == b"dog"
    assert struct.unpack_from("<f", raw, second + 32)[0] == 0.25
    assert struct.unpack_from("<iiii", raw, second + 36) == (5, 6, 7, 8)
    assert struct.unpack_from("<I", raw, 548)[0] == 9
    assert L.Detection.unpack_from(raw, second) == L.Detection("dog", 0.25, 5, 6, 7, 8)


def test_detection_pack_limits():
    too_many = tuple(L.Detection("cat", 0.9, 0, 0, 1, 1) for _ in range(11))
    with pytest.raises(ValueError, match="at most 10"):
        L.DetectionResult(1, 0, 0, too_many).pack()
    # An over-long class name is cut so the NUL terminator still fits.
    det = L.Detection("x" * 40, 0.5, 0, 0, 1, 1)
    assert L.Detection.unpack_from(det.pack(), 0).class_name == "x" * 31


def test_newest_slot_rule():
    # write_index is bumped before the copy: slot (write_index - 1) % 30 is the newest.
    assert L.slot_for_index(1) == 0
    assert L.slot_for_index(30) == 29
    assert L.slot_for_index(31) == 0
    assert L.slot_for_index(2**32 - 1) == (2**32 - 2) % 30


@pytest.mark.parametrize("name", ["", "/", "../etc/passwd", "/a/b", "..", "/.."])
def test_segment_names_reject_path_tricks(name):
    with pytest.raises(ValueError):
        shm_path(name)


def test_segment_names_map_to_dev_shm():
    assert shm_path("/pet_camera_stream") == "/dev/shm/pet_camera_stream"
    assert shm_path("pet_camera_detections") == "/dev/shm/pet_camera_detections"
