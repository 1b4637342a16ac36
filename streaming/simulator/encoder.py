"""libx264 (PyAV) encoder that turns I420 pictures into one Annex-B access unit each.

Configured like a camera's hardware encoder: no B-frames, no lookahead
(`tune=zerolatency`), so every input picture comes straight back as exactly
one access unit; an IDR exactly every `gop` frames (`min-keyint`, no scene-cut
keyframes); SPS/PPS in-band in front of every IDR.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

PROFILES = ("baseline", "main", "high")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")

NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8

# x264 reports the *lowest* profile its enabled tools need, and ultrafast turns
# CABAC and the 8x8 transform off, so "high" alone would still produce a
# Constrained Baseline SPS. Turning the profile's defining tool back on makes
# the SPS say what was asked for (what the board's encoder sends).
_PROFILE_TOOLS = {
    "baseline": "",
    "main": ":cabac=1",
    "high": ":cabac=1:8x8dct=1",
}


def nal_units(data: bytes) -> list[tuple[int, int]]:
    """(start, nal_type) for each NAL unit of an Annex-B buffer (start = header byte)."""
    found = []
    pos = data.find(b"\x00\x00\x01")
    while pos != -1 and pos + 3 < len(data):
        found.append((pos + 3, data[pos + 3] & 0x1F))
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return found


def nal_types(data: bytes) -> list[int]:
    return [t for _, t in nal_units(data)]


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One Annex-B access unit and what it shows."""

    data: bytes
    keyframe: bool  # an IDR, with SPS and PPS in front
    picture_number: int  # the number stamped into (and animated in) the picture
    encode_ns: int  # wall time spent in the encoder for this picture


class H264Encoder:
    """Encodes pictures one by one; `encode()` always returns the matching access unit."""

    def __init__(self, width: int, height: int, *, fps: int = 30, bitrate_kbps: int = 8000,
                 gop: int | None = None, profile: str = "high", preset: str = "ultrafast",
                 threads: int = 0) -> None:
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        if fps <= 0 or bitrate_kbps <= 0:
            raise ValueError("fps and bitrate must be positive")
        self.width = width
        self.height = height
        self.fps = fps
        self.gop = gop if gop is not None else 2 * fps
        if self.gop < 1:
            raise ValueError(f"gop must be at least 1 frame, got {self.gop}")
        self.profile = profile
        self.bitrate_kbps = bitrate_kbps

        ctx = av.CodecContext.create("libx264", "w")
        ctx.width = width
        ctx.height = height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, fps)
        ctx.framerate = Fraction(fps, 1)
        ctx.bit_rate = bitrate_kbps * 1000
        ctx.gop_size = self.gop
        ctx.max_b_frames = 0
        if threads:
            ctx.thread_count = threads
        # No AV_CODEC_FLAG_GLOBAL_HEADER: libavcodec then leaves x264's
        # repeat-headers on, which puts SPS/PPS in front of every IDR.
        x264_params = (f"keyint={self.gop}:min-keyint={self.gop}:scenecut=0:bframes=0"
                       f":repeat-headers=1{_PROFILE_TOOLS[profile]}")
        ctx.options = {
            "preset": preset,
            "tune": "zerolatency",
            "profile": profile,
            # A 1 s VBV buffer: bounded like a camera, yet room for a fat IDR.
            "maxrate": f"{bitrate_kbps}k",
            "bufsize": f"{bitrate_kbps}k",
            "x264-params": x264_params,
        }
        ctx.open()
        self._ctx = ctx
        self._pts = 0
        self._headers = b""  # last SPS+PPS seen, in case a keyframe came without them

    def encode(self, picture: np.ndarray, picture_number: int) -> EncodedFrame:
        """Encode one I420 picture (height*3/2 x width uint8) into one access unit."""
        t0 = time.perf_counter_ns()
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = self._pts
        self._pts += 1
        packets = self._ctx.encode(frame)
        elapsed = time.perf_counter_ns() - t0
        if len(packets) != 1:
            # Only possible if someone enabled lookahead/B-frames/frame threads.
            raise RuntimeError(f"encoder returned {len(packets)} packets for one picture; "
                               "it must be configured for zero delay")
        packet = packets[0]
        data = bytes(packet)
        keyframe = bool(packet.is_keyframe)
        if keyframe:
            data = self._with_headers(data)
        return EncodedFrame(data, keyframe, picture_number, elapsed)

    def _with_headers(self, data: bytes) -> bytes:
        """Remember SPS/PPS from this IDR, or put the remembered ones in front."""
        units = nal_units(data)
        types = [t for _, t in units]
        if NAL_SPS in types and NAL_PPS in types:
            first_slice = next((s for s, t in units if t in (1, NAL_IDR)), len(data) + 3)
            self._headers = data[:first_slice - 3].rstrip(b"\x00")
            return data
        if not self._headers:
            raise RuntimeError("x264 emitted an IDR without SPS/PPS and none were seen before")
        return self._headers + data

    def close(self) -> None:
        try:
            self._ctx.encode(None)  # flush; nothing is pending with zero delay
        except av.error.EOFError:
            pass
        self._ctx = None

    def __enter__(self) -> H264Encoder:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ctx is not None:
            self.close()
