"""Recordings for tests: camera-like access units, and what is in a recorded file.

`camera_units` runs libx264 samples (h264_samples.py) through the H.264 processor as the
camera pipeline does; `decode_file` and `ffprobe` read a recording back; `small_disk` is
a size-capped filesystem for disk-full tests.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import av
import av.logging
import numpy as np
import pytest

from streaming.media.h264.nal import NalType, nal_unit_spans
from streaming.media.h264.processor import H264Processor
from streaming.media.types import AccessUnit
from tests.support.h264_samples import encode_frames

FPS = 30


def camera_units(width: int = 320, height: int = 240, n: int = 90, gop: int = 30, *,
                 first_number: int = 1, t0: float | None = None, jitter: bool = False,
                 x264_params: str = "", camera_id: int | None = None) -> list[AccessUnit]:
    """Access units as the processor hands them to the hub, with camera timestamps from a
    second ago on (the hub's GOP cache ignores a stale GOP). jitter: uneven intervals.
    camera_id: the frame header's (day 0, night 1), as shm cameras carry it."""
    raw = encode_frames(width, height, n, gop=gop, x264_params=x264_params)
    if t0 is None:
        t0 = time.clock_gettime(time.CLOCK_MONOTONIC) - 1.0
    processor = H264Processor()
    units, ts = [], t0
    for i, data in enumerate(raw):
        units.append(processor.process(data, first_number + i, ts, camera_id))
        ts += (1 / FPS) + ((0.007 if i % 3 == 0 else -0.003) if jitter else 0.0)
    assert all(u is not None for u in units)
    return units


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=nb_read_frames,width,height,codec_name,duration", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)["streams"][0]


def decode_file(path: Path) -> tuple[list[av.VideoFrame], list[str], list[av.Packet]]:
    """Every frame of a recording, every error FFmpeg raised or logged, and the packets."""
    frames: list[av.VideoFrame] = []
    packets: list[av.Packet] = []
    errors: list[str] = []
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.WARNING)
    try:
        with av.logging.Capture(local=False) as logs, av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            for packet in container.demux(stream):
                if packet.size:
                    packets.append(packet)
                try:
                    frames += stream.codec_context.decode(packet if packet.size else None)
                except av.error.FFmpegError as exc:
                    errors.append(str(exc))
    finally:
        av.logging.set_level(previous)
    errors += [f"{name}: {message.strip()}" for _level, name, message in logs]
    return frames, errors, packets


def same_pictures(recorded: list[av.VideoFrame], reference: list[av.VideoFrame]) -> bool:
    return len(recorded) == len(reference) and all(
        np.array_equal(a.to_ndarray(format="gray"), b.to_ndarray(format="gray"))
        for a, b in zip(recorded, reference, strict=True))


def idrs_lack_parameter_sets(data: bytes) -> int:
    """IDR access units in an Annex-B file without an SPS and a PPS since the last picture."""
    missing, seen = 0, set()
    in_idr = False
    for start, _end in nal_unit_spans(data):
        kind = data[start] & 0x1F
        if kind == NalType.IDR:
            if not in_idr and not {NalType.SPS, NalType.PPS} <= seen:
                missing += 1
            in_idr = True
            seen.clear()
        elif kind == NalType.SLICE:
            in_idr = False
            seen.clear()
        else:
            in_idr = in_idr and kind not in (NalType.SPS, NalType.PPS, NalType.AUD)
            seen.add(kind)
    return missing


@contextlib.contextmanager
def small_disk(directory: Path, size_kb: int):
    """A filesystem of `size_kb` at `directory`: tmpfs, else an ext4 loop device, else skip."""
    directory.mkdir(parents=True, exist_ok=True)
    tried = []
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs",
                          str(directory)], capture_output=True, text=True)
    if out.returncode != 0:
        tried.append(f"tmpfs: {out.stderr.strip()}")
        image = directory.with_suffix(".img")
        steps = [["truncate", "-s", f"{max(size_kb, 1024)}k", str(image)],
                 ["mkfs.ext4", "-q", "-F", str(image)],
                 ["mount", "-o", "loop", str(image), str(directory)]]
        for step in steps:
            if shutil.which(step[0]) is None:
                pytest.skip(f"no size-capped filesystem: {tried}; {step[0]} not installed")
            out = subprocess.run(step, capture_output=True, text=True)
            if out.returncode != 0:
                tried.append(f"{step[0]}: {out.stderr.strip()}")
                pytest.skip(f"cannot mount a size-capped filesystem here: {tried}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True)
