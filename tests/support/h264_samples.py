"""Real H.264 for tests: encode synthetic frames with libx264, decode access units with FFmpeg."""

from __future__ import annotations

import functools
from fractions import Fraction

import av
import av.logging
import numpy as np

# x264's `profile` is only a ceiling: with preset ultrafast (no CABAC, no 8x8 transform)
# it writes a Constrained Baseline SPS even when asked for high. These turn the tools back
# on so the stream really is the profile asked for.
_PROFILE_PARAMS = {
    "baseline": "",
    "main": "cabac=1",
    "high": "cabac=1:8x8dct=1",
    "high10": "cabac=1:8x8dct=1",
    "high422": "cabac=1:8x8dct=1",
    "high444": "cabac=1:8x8dct=1",
}


def encode_frames(
    width: int,
    height: int,
    n: int,
    profile: str = "high",
    gop: int = 30,
    fps: int = 30,
    pix_fmt: str = "yuv420p",
    x264_params: str = "",
) -> list[bytes]:
    """n Annex-B access units, one per frame, in decode order; an IDR every `gop` frames.

    No global-header flag is set, so x264 writes Annex-B with SPS/PPS in front of
    every IDR. Results are cached, so reuse across tests is free.
    """
    return list(_encode(width, height, n, profile, gop, fps, pix_fmt, x264_params))


@functools.lru_cache(maxsize=64)
def _encode(
    width: int, height: int, n: int, profile: str, gop: int, fps: int, pix_fmt: str, extra: str
) -> tuple[bytes, ...]:
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, pix_fmt
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = fps
    ctx.gop_size = gop
    params = ":".join(p for p in (_PROFILE_PARAMS[profile], "scenecut=0", extra) if p)
    ctx.options = {
        "profile": profile,
        "preset": "ultrafast",
        "tune": "zerolatency",  # no B-frames, no lookahead: one packet out per frame in
        "x264-params": params,
    }
    packets: list[bytes] = []
    for i in range(n):
        packets += [bytes(p) for p in ctx.encode(_frame(width, height, pix_fmt, i))]
    packets += [bytes(p) for p in ctx.encode(None)]
    assert len(packets) == n, f"expected {n} packets, got {len(packets)}"
    return tuple(packets)


def _frame(width: int, height: int, pix_fmt: str, i: int) -> av.VideoFrame:
    """A moving diagonal gradient: cheap to make, compresses like real video, not like noise."""
    frame = av.VideoFrame(width, height, pix_fmt)
    dtype = np.uint16 if "10" in pix_fmt else np.uint8
    for p, plane in enumerate(frame.planes):
        rows = np.arange(plane.height)[:, None]
        cols = np.arange(plane.line_size // dtype().itemsize)[None, :]
        values = ((rows + cols + 4 * i + 50 * p) % 200 + 20).astype(dtype)
        plane.update(values.tobytes())
    frame.pts = i
    return frame


def decode(access_units: list[bytes]) -> tuple[list[av.VideoFrame], list[str]]:
    """Decode each access unit as one packet, the way a browser gets them.

    Returns the frames and every error FFmpeg raised or logged (warnings and worse).
    """
    ctx = av.CodecContext.create("h264", "r")
    ctx.thread_count = 1  # errors logged by FFmpeg's worker threads would be easy to miss
    frames: list[av.VideoFrame] = []
    errors: list[str] = []
    previous_level = av.logging.get_level()
    av.logging.set_level(av.logging.WARNING)  # FFmpeg logging is off by default in PyAV
    try:
        with av.logging.Capture(local=False) as logs:
            for au in [*access_units, None]:
                try:
                    frames += ctx.decode(None if au is None else av.Packet(au))
                except av.error.FFmpegError as exc:
                    errors.append(str(exc))
    finally:
        av.logging.set_level(previous_level)
    errors += [f"{name}: {message.strip()}" for _level, name, message in logs]
    return frames, errors
