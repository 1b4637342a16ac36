"""Camera simulator against real shared memory, the real reader and PyAV's decoder."""

from __future__ import annotations

import hashlib
import math
import mmap
import multiprocessing as mp
import threading
import time
from dataclasses import dataclass, field

import av
import av.logging
import numpy as np
import pytest

from streaming.media.shm import segment as shm_segment
from streaming.media.shm.layout import (
    DETECTION_SIZE,
    DETECTIONS_HEADER,
    DETECTIONS_OFFSET,
    LATEST_DETECTION_RESULT_SIZE,
    MAX_DETECTIONS,
    SHARED_FRAME_BUFFER_SIZE,
    VERSION,
    VERSION_OFFSET,
    WRITE_INDEX,
    WRITE_INDEX_OFFSET,
    Detection,
)
from streaming.media.shm.stream_reader import FrameReader, RawFrame
from streaming.simulator import (
    DETECTION_FAULTS,
    FAULT_KINDS,
    STREAM_FAULTS,
    CameraSimulator,
    H264Encoder,
    Scene,
    SimulatorConfig,
    SimulatorStats,
    decode_frame_number,
    pet_box,
)
from streaming.simulator.encoder import nal_types
from streaming.simulator.scene import CODE_ZONE, PET_YUV, code_blocks

W, H, FPS = 320, 240, 30


# --- helpers ----------------------------------------------------------------------


def config(segments: tuple[str, str], **overrides) -> SimulatorConfig:
    base = dict(stream_segment=segments[0], detections_segment=segments[1], width=W, height=H,
                fps=FPS, bitrate_kbps=1000, gop=15, encode="live", duration=1.2,
                keep_segments=True)  # the test unlinks; the reader must outlive the writer
    base.update(overrides)
    return SimulatorConfig(**base)


def timestamp_ns(frame: RawFrame) -> int:
    return frame.header.tv_sec * 1_000_000_000 + frame.header.tv_nsec


@dataclass
class DetectionRecord:
    version: int
    frame_number: int
    timestamp_ns: int
    count: int
    detections: list[Detection] = field(default_factory=list)


class DetectionTap:
    """Minimal seqlock-style reader of the detections segment (version read twice)."""

    def __init__(self, name: str) -> None:
        self._map = shm_segment.open_readonly(name, LATEST_DETECTION_RESULT_SIZE)
        self._last = 0

    def poll(self) -> list[DetectionRecord]:
        record = self._map.read(0, LATEST_DETECTION_RESULT_SIZE)
        version = VERSION.unpack_from(record, VERSION_OFFSET)[0]
        if version == self._last:
            return []
        if self._map.read(0, LATEST_DETECTION_RESULT_SIZE) != record:
            return []  # changed while copying: the next poll gets it
        body = record[:VERSION_OFFSET]
        self._last = version
        fn, sec, nsec, count = DETECTIONS_HEADER.unpack_from(body, 0)
        record = DetectionRecord(version, fn, sec * 1_000_000_000 + nsec, count)
        for i in range(min(max(count, 0), MAX_DETECTIONS)):
            record.detections.append(Detection.unpack_from(body, DETECTIONS_OFFSET
                                                           + i * DETECTION_SIZE))
        return [record]

    def close(self) -> None:
        self._map.close()


def commit_last_frame(name: str) -> None:
    """Bump write_index once, as the daemon's next write would, so the last slot commits."""
    with open(shm_segment.shm_path(name), "r+b") as f:
        mm = mmap.mmap(f.fileno(), SHARED_FRAME_BUFFER_SIZE)
        index = WRITE_INDEX.unpack_from(mm, WRITE_INDEX_OFFSET)[0]
        WRITE_INDEX.pack_into(mm, WRITE_INDEX_OFFSET, index + 1)
        mm.close()


@dataclass
class Run:
    stats: SimulatorStats
    reader: FrameReader
    frames: list[RawFrame]
    records: list[DetectionRecord]


def _simulate(cfg: SimulatorConfig, ready, go, results) -> None:
    """Child process body: create the segments, wait for the reader, stream."""
    sim = CameraSimulator(cfg)
    sim.open()
    ready.set()
    if go.wait(30):
        results.put(sim.run())


def run_and_read(cfg: SimulatorConfig) -> Run:
    """Run the simulator in its own process and read both segments like the media worker.

    A separate process, as on the board: the reader's writer probe (which
    excludes its own pid) is then in play, torn slots included.
    """
    ctx = mp.get_context("spawn")
    ready, go, results = ctx.Event(), ctx.Event(), ctx.Queue()
    child = ctx.Process(target=_simulate, args=(cfg, ready, go, results), daemon=True)
    child.start()
    frames: list[RawFrame] = []
    records: list[DetectionRecord] = []
    try:
        assert ready.wait(30), "the simulator never created its segments"
        reader = FrameReader(cfg.stream_segment, backoff_initial=0.01, backoff_max=0.05)
        reader.poll()  # attach before the first write, so nothing is missed
        tap = DetectionTap(cfg.detections_segment)
        go.set()
        try:
            while child.is_alive() and results.empty():
                frames += reader.poll()
                records += tap.poll()
                time.sleep(0.001)
            stats = results.get(timeout=10)
            child.join(10)
            commit_last_frame(cfg.stream_segment)
            frames += reader.poll()
            records += tap.poll()
        finally:
            reader.close()
            tap.close()
    finally:
        if child.is_alive():
            child.kill()
            child.join(5)
    return Run(stats, reader, frames, records)


def decode_all(units: list[bytes]) -> tuple[list[np.ndarray], list[str]]:
    """Decode access units in order; luma planes and every libav error/warning message."""
    ctx = av.CodecContext.create("h264", "r")
    ctx.thread_count = 1  # one frame out per packet, logs on this thread
    planes: list[np.ndarray] = []
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.WARNING)
    try:
        with av.logging.Capture(local=False) as logs:
            for data in units:
                for frame in ctx.decode(av.Packet(data)):
                    planes.append(frame.to_ndarray(format="gray"))
            for frame in ctx.decode(None):
                planes.append(frame.to_ndarray(format="gray"))
    finally:
        av.logging.set_level(previous)
    return planes, [f"{name}: {message}" for _, name, message in logs]


def assert_detection_matches(record: DetectionRecord, picture_number: int) -> None:
    assert record.count == 1
    (det,) = record.detections
    assert det.class_name == "cat"
    assert 0.85 <= det.confidence <= 0.95
    assert (det.x, det.y, det.w, det.h) == pet_box(picture_number, W, H)


# --- scene ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(320, 240), (640, 360), (1920, 1080)])
def test_pet_box_is_exactly_the_drawn_pet(size):
    width, height = size
    scene = Scene(width, height)
    for n in (1, 2, 17, 100, 211, 1000, 54321):
        picture = scene.render(n)
        luma = picture[:height].copy()
        changed = (picture != scene.background_for(n))[:height]
        x0, y0, x1, y1 = CODE_ZONE
        changed[y0:y1, x0:x1] = False  # the frame code also changes per picture
        luma[y0:y1, x0:x1] = 0
        for pixels in (changed, luma >= PET_YUV[0]):
            ys, xs = np.nonzero(pixels)
            box = (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
            assert box == pet_box(n, width, height)
        x, y, w, h = pet_box(n, width, height)
        assert y >= y1 and x + w <= width and y + h <= height  # never over the code


def test_frame_code_round_trip_and_refusals():
    scene = Scene(W, H)
    for n in (0, 1, 2, 0x12345678, 0xFFFFFFFF, 0x1_0000_0005):
        assert decode_frame_number(scene.render(n)[:H]) == n & 0xFFFFFFFF
    grid = code_blocks(1)
    assert grid[0].tolist() == [1] + [0] * 16 + [0]  # start marker, bits 31..16, end
    assert grid[1].tolist() == [0] + [0] * 15 + [1] + [1]  # start, bits 15..0 (=1), end
    assert decode_frame_number(np.full((H, W), 128, np.uint8)) is None  # grey: no code
    assert decode_frame_number(np.zeros((H, W), np.uint8)) is None  # markers wrong
    assert decode_frame_number(np.zeros((10, 10), np.uint8)) is None


# --- encoder ----------------------------------------------------------------------


@pytest.mark.parametrize("profile,profile_idc", [("baseline", 66), ("main", 77), ("high", 100)])
def test_encoder_one_access_unit_per_picture_idr_every_gop(profile, profile_idc):
    gop = 10
    scene = Scene(W, H)
    encoder = H264Encoder(W, H, fps=FPS, bitrate_kbps=800, gop=gop, profile=profile)
    units = [encoder.encode(scene.render(n), n) for n in range(1, 3 * gop + 3)]
    encoder.close()
    for n, unit in enumerate(units, start=1):
        types = nal_types(unit.data)
        assert unit.data.startswith(b"\x00\x00\x00\x01") or unit.data.startswith(b"\x00\x00\x01")
        is_idr = (n - 1) % gop == 0
        assert unit.keyframe == is_idr, n
        if is_idr:
            assert types[:2] == [7, 8] and 5 in types and 1 not in types, (n, types)
            sps = unit.data[unit.data.index(b"\x00\x00\x01\x67") + 4:]
            assert sps[0] == profile_idc
        else:
            assert 5 not in types and 7 not in types and 1 in types, (n, types)
    planes, errors = decode_all([u.data for u in units])
    assert errors == []
    assert [decode_frame_number(p) for p in planes] == list(range(1, len(units) + 1))


def test_one_thread_encoder_is_bit_exact_run_to_run():
    """The faults test below re-encodes to check every byte; that needs threads=1."""
    scene = Scene(W, H)
    pictures = [scene.render(n) for n in range(1, 31)]

    def encode_all() -> list[bytes]:
        encoder = H264Encoder(W, H, fps=FPS, bitrate_kbps=1000, gop=15, threads=1)
        try:
            return [hashlib.sha1(encoder.encode(p, n).data).hexdigest()
                    for n, p in enumerate(pictures, start=1)]
        finally:
            encoder.close()

    assert encode_all() == encode_all()


# --- streaming through shared memory ------------------------------------------------


def test_live_stream_is_paced_numbered_decodable_with_matching_detections(segments):
    started_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    run = run_and_read(config(segments, duration=1.5, gop=15, detect_fps=10))
    stats = run.stats
    assert stats.mode == "live"
    frames = run.frames
    numbers = [f.header.frame_number for f in frames]
    assert numbers == list(range(1, stats.frames + 1))
    assert stats.frames <= 1.5 * FPS + 1
    if stats.late == 0:  # a loaded machine may make it skip; that is counted as late
        assert stats.frames >= 1.5 * FPS - 1
    assert run.reader.stats.skipped == {} and run.reader.stats.overwritten == 0

    stamps = [timestamp_ns(f) for f in frames]
    assert (np.diff(stamps) > 0).all()
    assert stamps[0] >= started_ns
    # CLOCK_MONOTONIC, stamped at write time: the reader saw each within a moment.
    assert all(0 <= f.read_ns - timestamp_ns(f) < 0.5e9 for f in frames[:-1])
    mean_interval = (stamps[-1] - stamps[0]) / (len(stamps) - 1) / 1e9
    assert 0.97 / FPS <= mean_interval <= (1.03 if stats.late == 0 else 1.5) / FPS

    for f in frames:
        assert (f.header.width, f.header.height, f.header.format) == (W, H, 3)
        assert (5 in nal_types(f.data)) == ((f.header.frame_number - 1) % 15 == 0)
    planes, errors = decode_all([f.data for f in frames])
    assert errors == []
    assert [decode_frame_number(p) for p in planes] == numbers

    by_number = {f.header.frame_number: f for f in frames}
    assert len(run.records) == stats.detections == len(range(1, stats.frames + 1, 3))
    for record in run.records:
        assert_detection_matches(record, record.frame_number)
        assert record.timestamp_ns == timestamp_ns(by_number[record.frame_number])
    assert [r.frame_number for r in run.records][:4] == [1, 4, 7, 10]  # 10/s of 30 fps


def test_loop_mode_replays_with_fresh_numbers_and_loop_position_pictures(segments):
    cfg = config(segments, encode="loop", loop_seconds=0.5, gop=10, duration=1.4)
    assert cfg.loop_frames == 20  # 15 frames rounded up to whole GOPs
    run = run_and_read(cfg)
    stats = run.stats
    assert stats.mode == "loop" and stats.loop_frames == 20
    numbers = [f.header.frame_number for f in run.frames]
    assert numbers == list(range(1, stats.frames + 1)) and stats.frames > 40
    planes, errors = decode_all([f.data for f in run.frames])
    assert errors == []  # the wrap lands on an IDR
    assert [decode_frame_number(p) for p in planes] == [(n - 1) % 20 + 1 for n in numbers]
    for record in run.records:
        assert_detection_matches(record, (record.frame_number - 1) % 20 + 1)


def test_auto_goes_live_when_fast_enough_and_loops_otherwise(segments):
    fast = CameraSimulator(config(segments, encode="auto", duration=0.2))
    assert fast.run().mode == "live" and fast.stats.calibration_ms > 0
    # An impossible margin makes the same measurement too slow: it must loop.
    slow = CameraSimulator(config(segments, encode="auto", duration=0.2, auto_margin=1e-6,
                                  loop_seconds=0.5))
    stats = slow.run()
    assert stats.mode == "loop" and stats.loop_frames == 15 and stats.frames >= 5


def test_faults_mode_writes_every_kind_and_the_reader_counts_them(segments):
    cfg = config(segments, faults=True, fault_every=2, duration=2.0, torn_pause=0.02,
                 encoder_threads=1)
    run = run_and_read(cfg)
    stats = run.stats
    written = stats.faults
    assert set(written) == set(FAULT_KINDS) and all(written[k] >= 2 for k in FAULT_KINDS)

    skipped = run.reader.stats.skipped
    for kind in STREAM_FAULTS:
        if kind != "torn":
            assert skipped.get(kind, 0) == written[kind], kind
    assert set(skipped) <= set(STREAM_FAULTS) - {"torn"}
    # Torn slots are good frames caught mid-copy: yielded only once complete.
    assert run.reader.stats.frames_read == stats.frames
    assert run.reader.stats.overwritten == 0
    # One-thread x264 is deterministic: re-encoding the same pictures gives the same
    # bytes, so every yielded access unit can be checked whole (a torn one differs
    # in its tail). With sliced threads it is not (VBV follows thread timing).
    scene = Scene(W, H)
    encoder = H264Encoder(W, H, fps=FPS, bitrate_kbps=cfg.bitrate_kbps, gop=cfg.gop,
                          threads=cfg.encoder_threads)
    expected = [encoder.encode(scene.render(n), n).data for n in range(1, stats.frames + 1)]
    encoder.close()
    assert [f.data for f in run.frames] == expected
    planes, errors = decode_all([f.data for f in run.frames])
    assert errors == []
    assert [decode_frame_number(p) for p in planes] == list(range(1, stats.frames + 1))

    seen = dict.fromkeys(DETECTION_FAULTS, 0)
    good = 0
    for record in run.records:
        if not 0 <= record.count <= MAX_DETECTIONS:
            seen["det_bad_count"] += 1
            continue
        (det,) = record.detections
        if not (math.isfinite(det.confidence) and 0 <= det.confidence <= 1):
            seen["det_nan_confidence"] += 1
        elif det.w <= 0 or det.h <= 0 or det.x < 0 or det.y < 0 or det.x + det.w > W \
                or det.y + det.h > H:
            seen["det_box_outside"] += 1
        else:
            good += 1
    assert seen == {k: written[k] for k in DETECTION_FAULTS}
    assert good == stats.detections


def test_config_rejects_bad_options(segments):
    for bad, message in [
        (dict(width=321), "even"),
        (dict(width=160, height=120), "at least"),
        (dict(fps=0), "fps"),
        (dict(profile="extended"), "profile"),
        (dict(detect_fps=60), "detect-fps"),
        (dict(encode="fast"), "encode"),
        (dict(gop=0), "gop"),
        (dict(encoder_threads=-1), "encoder threads"),
        (dict(bitrate_kbps=50_000), "bitrate"),
        (dict(stream_segment="/../etc/passwd"), "invalid"),
        (dict(detections_segment=segments[0]), "different"),
        (dict(camera_id=2), "camera id"),
        (dict(switch_every=-1), "switch-every"),
        (dict(switch_every=math.nan), "switch-every"),
        (dict(night_width=640), "both"),
        (dict(night_width=641, night_height=480), "even"),
        (dict(night_width=4096, night_height=2160), "night frame"),
    ]:
        with pytest.raises(ValueError, match=message):
            config(segments, **bad).validate()


def test_day_night_switches_change_camera_id_and_size_with_an_idr_each_time(segments):
    """--switch-every: camera_id 0 -> 1 -> 0 at 0.5 s, the night camera at its own size
    and grey; each camera starts with an IDR carrying its own SPS/PPS; frame numbers,
    the frame code and the detections (in the night camera's pixels) carry on."""
    run = run_and_read(config(segments, duration=1.4, gop=60, switch_every=0.5,
                              night_width=480, night_height=360))
    frames = run.frames
    ids = [f.header.camera_id for f in frames]
    changes = [i for i in range(1, len(ids)) if ids[i] != ids[i - 1]]
    assert run.stats.camera_switches == len(changes) == 2, ids
    assert ids[0] == 0 and ids[changes[0]] == 1 and ids[changes[1]] == 0
    for f in frames:
        size = (480, 360) if f.header.camera_id == 1 else (W, H)
        assert (f.header.width, f.header.height) == size
    for i in [0, *changes]:
        types = nal_types(frames[i].data)  # SPS, PPS (x264's SEI maybe), IDR
        assert 5 in types and types.index(7) < types.index(8) < types.index(5), (i, types)
    numbers = [f.header.frame_number for f in frames]
    assert numbers == list(range(1, len(frames) + 1))
    # Each camera's run decodes on its own, at its size; the night one has no colour.
    runs = [frames[:changes[0]], frames[changes[0]:changes[1]], frames[changes[1]:]]
    for part in runs:
        planes, errors = decode_all([f.data for f in part])
        assert errors == [] and len(planes) == len(part)
        assert [decode_frame_number(p) for p in planes] == [f.header.frame_number
                                                           for f in part]
    night = runs[1]
    codec = av.CodecContext.create("h264", "r")
    codec.thread_count = 1
    pictures = [pic for f in night for pic in codec.decode(av.Packet(f.data))]
    chroma = pictures[-1].to_ndarray(format="yuv420p")[360:]
    assert abs(float(chroma.mean()) - 128) < 2
    by_number = {f.header.frame_number: f for f in frames}
    for record in run.records:
        frame = by_number[record.frame_number]
        (box,) = record.detections
        assert (box.x, box.y, box.w, box.h) == pet_box(record.frame_number,
                                                       frame.header.width, frame.header.height)


def test_a_switch_on_request_like_sigusr1(segments):
    sim = CameraSimulator(config(segments, duration=0.6, switch_every=0, keep_segments=False))
    timer = threading.Timer(0.3, sim.request_switch)
    timer.start()
    stats = sim.run()
    timer.join()
    assert stats.camera_switches == 1 and sim.camera_id == 1 and stats.mode == "live"
