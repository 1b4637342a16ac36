"""The stream-segment reader against real /dev/shm segments and a racing writer."""

from __future__ import annotations

import multiprocessing
import os
import struct
import threading
import time
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streaming.media.shm import layout as L
from streaming.media.shm.stream_reader import LIVE, STALLED, WAITING, FrameReader
from streaming.media.shm.writer import FrameWriter

IDR = b"\0\0\0\1\x65"


def payload(n: int, size: int = 4000) -> bytes:
    """An Annex-B-looking frame whose last 4 bytes are a CRC of the rest."""
    body = IDR + bytes([n % 251]) * size + n.to_bytes(8, "little")
    return body + zlib.crc32(body).to_bytes(4, "little")


def crc_ok(data: bytes) -> bool:
    return zlib.crc32(data[:-4]).to_bytes(4, "little") == data[-4:]


def drain(reader: FrameReader, seconds: float = 0.3):
    frames, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        frames += reader.poll()
        time.sleep(0.001)
    return frames


def quick_reader(name: str, **kw) -> FrameReader:
    return FrameReader(name, backoff_initial=0.01, backoff_max=0.05,
                       identity_check_interval=0.01, **kw)


def test_round_trip_copies_exactly_data_size(shm_name):
    writer = FrameWriter(shm_name, frame_interval_ms=33)
    reader = quick_reader(shm_name)
    try:
        assert os.path.getsize(f"/dev/shm/{shm_name[1:]}") == 93_313_448
        writer.write(payload(0, 50_000), width=1920, height=1080)  # leaves stale bytes behind
        reader.poll()
        sent = [writer.write(payload(i, 1000 + i), width=640, height=480) for i in range(1, 6)]
        writer.write(payload(99), width=640, height=480)  # commits the previous one
        first, *frames = reader.poll()
        assert first.data == payload(0, 50_000)  # committed once the next write began
        assert [f.header.frame_number for f in frames] == [h.frame_number for h in sent]
        for f, h, i in zip(frames, sent, range(1, 6), strict=True):
            assert f.data == payload(i, 1000 + i)
            assert len(f.data) == h.data_size
            assert (f.header.width, f.header.height, f.header.format) == (640, 480, L.FORMAT_H264)
            assert f.header.timestamp == pytest.approx(h.timestamp)
        assert reader.stats.frame_interval_ms == 33
        assert reader.stats.state == LIVE
    finally:
        reader.close()
        writer.close()


def test_a_slot_mid_copy_is_never_yielded(shm_name):
    """The writer stalls halfway through a slot: the reader waits for the next index."""
    writer = FrameWriter(shm_name)
    reader = quick_reader(shm_name)
    writer.write(payload(1), width=64, height=64)
    writer.write(payload(2), width=64, height=64)
    assert [f.header.frame_number for f in reader.poll()] == [1]
    # Fill the ring once so the slot we tear holds an older, different frame.
    for i in range(3, 33):
        writer.write(payload(i), width=64, height=64)
    assert all(crc_ok(f.data) for f in reader.poll())
    stalled = threading.Thread(target=writer.write_torn, args=(payload(33, 60_000),),
                               kwargs={"width": 64, "height": 64, "pause": 0.4})
    stalled.start()
    time.sleep(0.1)
    # The newest slot is torn right now: its header is new but its data is half old.
    mm_view = writer._map.mm
    off = L.slot_offset(L.slot_for_index(writer.write_index))
    torn_header = L.FrameHeader.unpack_from(mm_view, off)
    torn = mm_view[off + 48:off + 48 + torn_header.data_size]
    assert torn_header.frame_number == 33 and not crc_ok(torn)
    frames = reader.poll()
    assert [f.header.frame_number for f in frames] == [32]  # 33 is not committed yet
    stalled.join()
    writer.write(payload(34), width=64, height=64)
    frames = reader.poll()
    assert [f.header.frame_number for f in frames] == [33]
    assert crc_ok(frames[0].data)
    reader.close()
    writer.close()


def _race_writer(name: str, frames: int, fps: float, ready) -> None:
    writer = FrameWriter(name)
    ready.set()
    start = time.monotonic()
    for i in range(1, frames + 1):
        writer.write(payload(i, 20_000 + (i * 7919) % 120_000), width=1920, height=1080)
        delay = start + i / fps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    time.sleep(0.2)
    writer.close(unlink=False)


def test_concurrent_writer_process_never_yields_a_torn_frame(shm_name):
    """A writer process at 60 fps, IDR-sized frames; every yielded frame checks out."""
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_race_writer, args=(shm_name, 180, 60.0, ready))
    reader = quick_reader(shm_name)
    proc.start()
    assert ready.wait(10)
    got = []
    deadline = time.monotonic() + 15
    while proc.is_alive() and time.monotonic() < deadline:
        got += reader.poll()
        time.sleep(0.0005)
    got += reader.poll()
    proc.join(5)
    numbers = [f.header.frame_number for f in got]
    assert all(crc_ok(f.data) for f in got), "a torn frame was yielded"
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    # Every frame arrives, with no gaps; most were proven complete by the
    # writer probe right after their copy instead of one frame later.
    assert len(got) >= 175
    assert reader.stats.overwritten == 0
    assert reader.stats.gaps == 0
    assert reader.stats.early_commits > len(got) // 2
    reader.close()


def _torn_writer(name: str, ready, go) -> None:
    writer = FrameWriter(name)
    for i in range(1, 32):
        writer.write(payload(i), width=64, height=64)
    ready.set()
    go.wait()
    writer.write_torn(payload(32, 80_000), width=64, height=64, pause=0.6)
    time.sleep(0.5)  # asleep after the copy: now the probe may commit it
    writer.close(unlink=False)


def test_a_writer_process_preempted_mid_copy_is_not_trusted(shm_name):
    """The probe proves nothing while the writer's thread is still running its copy."""
    ctx = multiprocessing.get_context("fork")
    ready, go = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_torn_writer, args=(shm_name, ready, go))
    proc.start()
    assert ready.wait(10)
    reader = quick_reader(shm_name)
    time.sleep(0.05)
    assert [f.header.frame_number for f in drain(reader, 0.1)][-1] == 31  # early commit
    go.set()
    during = drain(reader, 0.4)  # the writer spins mid-copy of frame 32
    assert during == []
    after = drain(reader, 0.6)
    proc.join(5)
    assert [f.header.frame_number for f in after] == [32]
    assert crc_ok(after[0].data)
    reader.close()


def test_without_the_probe_the_newest_frame_waits_for_the_next_index(shm_name):
    ctx = multiprocessing.get_context("fork")
    ready, go = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_torn_writer, args=(shm_name, ready, go))
    proc.start()
    assert ready.wait(10)
    reader = quick_reader(shm_name, probe_writer=False)
    frames = drain(reader, 0.1)
    assert [f.header.frame_number for f in frames] == [30]
    go.set()
    proc.join(5)
    assert reader.stats.early_commits == 0
    reader.close()


def test_missing_segment_is_waited_for_then_attached(shm_name):
    reader = quick_reader(shm_name)
    assert reader.poll() == [] and reader.stats.state == WAITING
    time.sleep(0.05)
    assert reader.poll() == []
    writer = FrameWriter(shm_name)
    for i in range(1, 4):
        writer.write(payload(i), width=64, height=64)
    frames = drain(reader, 0.2)
    assert [f.header.frame_number for f in frames] == [2]  # starts at the newest committed
    assert reader.stats.attaches == 1
    reader.close()
    writer.close()


def test_segment_deleted_and_recreated_is_reattached(shm_name):
    writer = FrameWriter(shm_name)
    reader = quick_reader(shm_name, stall_after=0.05)
    for i in range(1, 4):
        writer.write(payload(i), width=64, height=64)
    assert drain(reader, 0.1)
    writer.close()  # daemon exits: segment unlinked
    assert drain(reader, 0.1) == []
    assert reader.stats.state == WAITING
    writer = FrameWriter(shm_name)  # daemon restarts: a new segment, counters from zero
    for i in range(1, 5):
        writer.write(payload(i), width=320, height=240)
    frames = drain(reader, 0.2)
    assert [f.header.frame_number for f in frames] == [3]
    assert frames[0].header.width == 320
    assert reader.stats.restarts == 1 and reader.stats.attaches == 2
    assert reader.stats.gaps == 0
    writer.close()
    reader.close()


def test_writer_reset_in_the_same_segment(shm_name):
    writer = FrameWriter(shm_name)
    reader = quick_reader(shm_name)
    for i in range(1, 40):
        writer.write(payload(i), width=64, height=64)
    drain(reader, 0.05)
    writer.set_write_index(0)
    writer.frame_number = 0
    assert reader.poll() == []
    for i in range(1, 4):
        writer.write(payload(i), width=64, height=64)
    frames = reader.poll()
    assert [f.header.frame_number for f in frames] == [1, 2]
    assert reader.stats.restarts == 1 and reader.stats.gaps == 0
    writer.close()
    reader.close()


def _count_up(name: str, ready, spin_s: float) -> None:
    writer = FrameWriter(name)
    ready.set()
    for i in range(0x100, 0x40000):  # a carry into the second byte every 256 values
        writer.set_write_index(i)
        until = time.perf_counter() + spin_s
        while time.perf_counter() < until:
            pass
    writer.close(unlink=False)


@pytest.mark.parametrize("spin_s", [0.0, 5e-6], ids=["flat-out", "every-5us"])
def test_write_index_is_never_seen_half_written(shm_name, spin_s):
    """A writer process bumps write_index a quarter million times while the reader reads
    it: every value the reader accepts is at least the one before. (struct.pack_into
    zero-fills the field before packing, and "<I" is read byte by byte: both let a reader
    see 0 or a torn value, and the reader then took the camera for restarted and replayed
    the ring. pread is no single load either, hence the reader's read-until-agreed.)"""
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_count_up, args=(shm_name, ready, spin_s))
    proc.start()
    assert ready.wait(10)
    reader = quick_reader(shm_name)
    reader.poll()
    assert reader.attached
    seen, backwards, last = 0, [], 0
    while proc.is_alive():
        header = reader._load_header()
        if header is None:  # never agreed twice: that poll waits, no value is used
            continue
        if header[0] < last:
            backwards.append((last, header[0]))
        last = header[0]
        seen += 1
    proc.join()
    assert reader._load_header()[0] == 0x3FFFF
    reader.close()
    assert seen > 1000
    assert backwards == []


def test_camera_stopping_is_reported_as_stalled(shm_name):
    writer = FrameWriter(shm_name)
    reader = quick_reader(shm_name, stall_after=0.1)
    writer.write(payload(1), width=64, height=64)
    writer.write(payload(2), width=64, height=64)
    assert reader.poll() and reader.stats.state == LIVE
    time.sleep(0.15)
    reader.poll()
    assert reader.stats.state == STALLED
    writer.write(payload(3), width=64, height=64)
    assert reader.poll() and reader.stats.state == LIVE
    writer.close()
    reader.close()


def test_write_index_wraps_around_uint32(shm_name):
    writer = FrameWriter(shm_name)
    reader = quick_reader(shm_name)
    writer.set_write_index(2**32 - 3)
    writer.write(payload(1), width=64, height=64)
    reader.poll()
    for i in range(2, 8):
        writer.write(payload(i), width=64, height=64)
    frames = reader.poll()
    assert [f.header.frame_number for f in frames] == [1, 2, 3, 4, 5, 6]
    assert writer.write_index == 4  # wrapped
    assert reader.stats.restarts == 0 and reader.stats.gaps == 0
    writer.close()
    reader.close()


def test_a_reader_lapped_by_the_writer_counts_the_gap(shm_name):
    writer = FrameWriter(shm_name)
    reader = quick_reader(shm_name)
    writer.write(payload(1), width=64, height=64)
    writer.write(payload(2), width=64, height=64)
    reader.poll()
    for i in range(3, 103):  # 100 frames while the reader sleeps: more than a ring
        writer.write(payload(i), width=64, height=64)
    frames = reader.poll()
    assert len(frames) == 29  # the 29 committed slots still intact
    assert [f.header.frame_number for f in frames] == list(range(73, 102))
    assert all(crc_ok(f.data) for f in frames)
    assert reader.stats.gaps == 1 and reader.stats.frames_missed == 71  # frames 2..72
    writer.close()
    reader.close()


@pytest.mark.parametrize(
    ("kwargs", "data", "reason"),
    [
        ({"data_size": L.FRAME_DATA_CAPACITY + 1}, payload(1), "oversize"),
        ({"data_size": 2**64 - 1}, payload(1), "oversize"),
        ({"fmt": L.FORMAT_NV12}, b"\x10" * 1000, "other_format"),
        ({"fmt": L.FORMAT_JPEG}, b"\xff\xd8\xff" + b"\0" * 100, "other_format"),
        ({"fmt": 7}, payload(1), "unknown_format"),
        ({"fmt": -1}, payload(1), "unknown_format"),
        ({}, b"GET / HTTP/1.1\r\n" * 10, "not_annexb"),
        ({}, b"\0\0\2\1garbage", "not_annexb"),
        ({"data_size": 0}, b"", "empty"),
    ],
)
def test_bad_slots_are_skipped_and_counted(shm_name, kwargs, data, reason):
    writer = FrameWriter(shm_name)
    reader = quick_reader(shm_name)
    writer.write(payload(1), width=64, height=64)
    writer.write(payload(2), width=64, height=64)
    reader.poll()
    writer.write(data, width=64, height=64, **kwargs)
    writer.write(payload(4), width=64, height=64)
    writer.write(payload(5), width=64, height=64)
    frames = reader.poll()
    assert [f.header.frame_number for f in frames] == [2, 4]
    assert reader.stats.skipped == {reason: 1}
    assert reader.stats.gaps == 0
    writer.close()
    reader.close()


def test_a_segment_too_small_for_the_layout_is_not_attached(shm_name):
    path = f"/dev/shm/{shm_name[1:]}"
    with open(path, "wb") as f:
        f.write(b"\0" * 1000)
    reader = quick_reader(shm_name)
    assert reader.poll() == [] and reader.stats.state == WAITING
    assert reader.stats.attaches == 0
    reader.close()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.lists(st.tuples(st.integers(0, 29), st.binary(min_size=48, max_size=200)),
                     min_size=1, max_size=30),
       write_index=st.integers(0, 2**32 - 1))
def test_random_garbage_in_the_segment_never_raises(shm_name, junk, write_index):
    """Whatever bytes sit in the ring, the reader yields only well-formed H.264 slots."""
    writer = FrameWriter(shm_name)
    mm = writer._map.mm
    for slot, raw in junk:
        off = L.slot_offset(slot)
        mm[off:off + len(raw)] = raw
    struct.pack_into("<I", mm, 0, write_index)
    reader = quick_reader(shm_name)
    reader.poll()
    struct.pack_into("<I", mm, 0, (write_index + 29) % 2**32)
    for frame in reader.poll():
        assert frame.header.format == L.FORMAT_H264
        assert 0 < frame.header.data_size <= L.FRAME_DATA_CAPACITY
        assert frame.data[:3] == b"\0\0\1" or frame.data[:4] == b"\0\0\0\1"
    reader.close()
    writer.close()
