"""A segment shrunk under the readers (ftruncate) is counted garbage, never a SIGBUS.

Whoever can write a segment can also shrink it; a reader that touched a mapped
page past the new end died of SIGBUS and took the server with it. Each check
runs in a child process: a regression shows up as a failed test (the child's
exit status is -SIGBUS), not as a dead pytest worker.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
import struct
import time
import zlib

from streaming.media.shm import layout as L
from streaming.media.shm import segment as shm_segment
from streaming.media.shm.detections_reader import DetectionReader
from streaming.media.shm.stream_reader import LIVE, WAITING, FrameReader
from streaming.media.shm.writer import DetectionWriter, FrameWriter

IDR = b"\0\0\0\1\x65"


def payload(n: int, size: int = 4000) -> bytes:
    body = IDR + bytes([n % 251]) * size + n.to_bytes(8, "little")
    return body + zlib.crc32(body).to_bytes(4, "little")


def crc_ok(data: bytes) -> bool:
    return zlib.crc32(data[:-4]).to_bytes(4, "little") == data[-4:]


def quick_reader(name: str) -> FrameReader:
    return FrameReader(name, backoff_initial=0.01, backoff_max=0.05,
                       identity_check_interval=0.01, probe_writer=False)


def poll_for(reader: FrameReader, seconds: float) -> list:
    frames, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        frames += reader.poll()
        time.sleep(0.001)
    return frames


def bump_write_index(name: str, value: int) -> None:
    """What a hostile (or confused) writer does after shrinking the file: pwrite, no map."""
    fd = os.open(shm_segment.shm_path(name), os.O_WRONLY)
    try:
        os.pwrite(fd, struct.pack("<I", value), L.WRITE_INDEX_OFFSET)
    finally:
        os.close(fd)


def in_child(target, *args) -> dict:
    """Run target(queue, *args) in a forked child; its report, or a failure naming the
    signal that killed it."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(queue, *args))
    proc.start()
    proc.join(60)
    if proc.is_alive():
        proc.kill()
        proc.join()
        raise AssertionError("the reader child hung")
    if proc.exitcode != 0:
        how = (signal.Signals(-proc.exitcode).name if proc.exitcode < 0
               else f"status {proc.exitcode}")
        raise AssertionError(f"the reader child died: {how}")
    return queue.get(timeout=5)


# --- the stream segment ------------------------------------------------------------------------


def _stream_truncated(queue, name: str, size: int) -> None:
    writer = FrameWriter(name)
    reader = quick_reader(name)
    writer.write(payload(1), width=64, height=64)
    reader.poll()  # attached: frames from here on
    for i in range(2, 4):
        writer.write(payload(i), width=64, height=64)
    before = [f.header.frame_number for f in poll_for(reader, 0.1)]
    writer.close(unlink=False)  # the writer's own map would SIGBUS it now
    os.truncate(shm_segment.shm_path(name), size)
    index = 3
    during = []
    for _ in range(20):  # write_index keeps advancing in the shrunk file
        index += 1
        bump_write_index(name, index)
        during += poll_for(reader, 0.01)
    shrunk = {"state": reader.stats.state, "skipped": dict(reader.stats.skipped),
              "last_error": reader.stats.last_error}
    writer = FrameWriter(name)  # the camera daemon restarts: a new, whole segment
    poll_for(reader, 0.1)  # re-attached (write_index 0): every frame from here on
    sent = [writer.write(payload(i), width=64, height=64).frame_number for i in range(10, 15)]
    after = poll_for(reader, 0.3)
    queue.put({"before": before, "during": len(during), "shrunk": shrunk,
               "after": [f.header.frame_number for f in after],
               "after_ok": all(crc_ok(f.data) for f in after), "sent": sent,
               "state": reader.stats.state, "last_error": reader.stats.last_error,
               "restarts": reader.stats.restarts})
    reader.close()
    writer.close(unlink=False)


def test_stream_segment_shrunk_to_4k_while_write_index_advances(shm_name):
    report = in_child(_stream_truncated, shm_name, 4096)
    assert report["before"] == [1, 2]
    assert report["during"] == 0
    assert report["shrunk"]["state"] == WAITING
    assert report["shrunk"]["skipped"].get("truncated", 0) >= 1, report
    # Counted as truncated; while it stays short, /health says why it is unusable.
    assert "layout needs 93313448" in report["shrunk"]["last_error"]
    # Back once the daemon recreates it: every committed frame, intact.
    assert report["after"] == report["sent"][:-1] and report["after_ok"]
    assert report["state"] == LIVE and report["last_error"] == ""
    assert report["restarts"] >= 1


def test_stream_segment_shrunk_to_nothing(shm_name):
    report = in_child(_stream_truncated, shm_name, 0)
    assert report["shrunk"]["state"] == WAITING
    assert report["shrunk"]["skipped"].get("truncated", 0) >= 1, report
    assert report["after"] == report["sent"][:-1] and report["after_ok"]


def _stream_truncated_between_check_and_read(queue, name: str) -> None:
    """The file shrinks after the reader's identity check passed, right before its copy:
    the copy itself must notice (no size check can)."""
    writer = FrameWriter(name)
    reader = FrameReader(name, identity_check_interval=3600, probe_writer=False)
    writer.write(payload(1, 200_000), width=64, height=64)
    reader.poll()
    writer.write(payload(2), width=64, height=64)
    writer.close(unlink=False)
    os.truncate(shm_segment.shm_path(name), L.slot_offset(0) + 10_000)  # mid-frame
    frames = reader.poll()  # identity check not due: straight to the copy
    queue.put({"frames": len(frames), "skipped": dict(reader.stats.skipped),
               "state": reader.stats.state})
    reader.close()


def test_a_copy_that_runs_off_the_end_is_counted_not_fatal(shm_name):
    report = in_child(_stream_truncated_between_check_and_read, shm_name)
    assert report == {"frames": 0, "skipped": {"truncated": 1}, "state": WAITING}


# --- the detections segment --------------------------------------------------------------------


def _result(n: int) -> L.DetectionResult:
    return L.DetectionResult(n, 5, 0, (L.Detection("cat", 0.9, 1, 2, 30, 40),))


def _detections_truncated(queue, name: str) -> None:
    writer = DetectionWriter(name)
    reader = DetectionReader(name, backoff_max=0.05, identity_check_interval=3600)
    reader.poll()  # attach: only results newer than this count
    writer.write(_result(1))
    first = reader.poll(640, 480)
    writer.close(unlink=False)
    os.truncate(shm_segment.shm_path(name), 0)
    during = [reader.poll(640, 480) for _ in range(5)]
    shrunk = {"state": reader.stats.state, "dropped": dict(reader.stats.dropped),
              "last_error": reader.stats.last_error}
    writer = DetectionWriter(name)  # the detector restarts
    time.sleep(0.06)  # past the reader's backoff
    reader.poll()
    writer.write(_result(2))
    after = reader.poll(640, 480)
    queue.put({"first": first and first.frame_number, "during": during, "shrunk": shrunk,
               "after": after and after.frame_number, "state": reader.stats.state,
               "attaches": reader.stats.attaches})
    reader.close()
    writer.close(unlink=False)


def test_detections_segment_shrunk_to_nothing(shm_name):
    report = in_child(_detections_truncated, shm_name)
    assert report["first"] == 1
    assert report["during"] == [None] * 5
    assert report["shrunk"]["state"] == "waiting"
    assert report["shrunk"]["dropped"] == {"truncated": 1}
    assert "layout needs 552" in report["shrunk"]["last_error"]
    assert report["after"] == 2 and report["state"] == "attached" and report["attaches"] == 2


# --- shrinking and regrowing at random while both readers read -------------------------------


def _flip_sizes(names: tuple[str, str], sizes: tuple[int, int], seconds: float, ready) -> None:
    """Shrink and regrow both files as fast as it can, bumping write_index, with pwrite
    only (a mapping of our own would SIGBUS us)."""
    ready.set()
    paths = [shm_segment.shm_path(n) for n in names]
    fd = os.open(paths[0], os.O_WRONLY)
    index, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        for path, full in zip(paths, sizes, strict=True):
            for size in (0, 4096, full // 2, full):
                os.truncate(path, size)
                index += 1
                os.pwrite(fd, struct.pack("<I", index), 0)
                os.pwrite(fd, L.FrameHeader(index, 0, 0, 0, 64, 64, L.FORMAT_H264, 50_000)
                          .pack(), L.slot_offset(L.slot_for_index(index)))
    os.close(fd)


def _read_both(queue, names: tuple[str, str], seconds: float) -> None:
    frames = FrameReader(names[0], backoff_initial=0.001, backoff_max=0.001,
                         identity_check_interval=0.05, probe_writer=False)
    detections = DetectionReader(names[1], backoff_max=0.001, identity_check_interval=0.05)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frames.poll()
        detections.poll()
    queue.put({"skipped": dict(frames.stats.skipped), "dropped": dict(detections.stats.dropped),
               "attaches": (frames.stats.attaches, detections.stats.attaches)})


def test_segments_shrinking_and_regrowing_under_the_readers(segments):
    """No size check before a load can be race-free; the readers survive any timing."""
    stream, dets = segments
    FrameWriter(stream).close(unlink=False)
    DetectionWriter(dets).close(unlink=False)
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    flipper = ctx.Process(target=_flip_sizes, args=(
        segments, (L.SHARED_FRAME_BUFFER_SIZE, L.LATEST_DETECTION_RESULT_SIZE), 2.0, ready))
    flipper.start()
    try:
        assert ready.wait(10)
        report = in_child(_read_both, segments, 2.0)
    finally:
        flipper.join(30)
    assert flipper.exitcode == 0
    assert report["skipped"].get("truncated", 0) >= 1, report
    assert report["dropped"].get("truncated", 0) >= 1, report
    assert min(report["attaches"]) >= 2, report


# --- what the writers create, and what the readers refuse to open ------------------------------


def test_simulator_and_test_writers_create_segments_0640(segments):
    """Owner (the camera daemon's user) writes, its group (the media worker's) reads,
    nobody else sees the camera (docs/operations.md, Security)."""
    old = os.umask(0)  # the mode must not depend on a permissive umask
    try:
        FrameWriter(segments[0]).close(unlink=False)
        DetectionWriter(segments[1]).close(unlink=False)
    finally:
        os.umask(old)
    for name in segments:
        assert stat.S_IMODE(os.stat(shm_segment.shm_path(name)).st_mode) == 0o640


def test_a_fifo_or_symlink_under_the_name_is_refused_not_waited_on(tmp_path, shm_name):
    path = shm_segment.shm_path(shm_name)
    os.mkfifo(path)  # open(O_RDONLY) of a FIFO blocks until a writer comes: the reader must not
    reader = quick_reader(shm_name)
    assert reader.poll() == [] and reader.stats.state == WAITING
    assert "not a regular file" in reader.stats.last_error
    os.unlink(path)
    target = tmp_path / "elsewhere"
    target.write_bytes(b"\0" * L.LATEST_DETECTION_RESULT_SIZE)
    os.symlink(target, path)
    detections = DetectionReader(shm_name)
    assert detections.poll() is None and not detections.attached
    assert detections.stats.last_error
    reader.close()
