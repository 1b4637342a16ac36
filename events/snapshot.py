"""An event's still, Django-free: decode the GOP up to the peak frame once, draw the box.

The hub's GOP cache holds the latest IDR and the frames after it; the frame nearest the
peak detection is decoded by feeding the decoder the IDR and the frames up to it (no
other decode happens on this path), the box is drawn into the RGB picture with numpy
and the result is encoded as JPEG with FFmpeg's mjpeg encoder (no extra image library).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import av
import numpy as np

from streaming.media.types import AccessUnit

BOX_COLOUR = (255, 64, 0)  # orange: visible on a pet and on a floor
BOX_WIDTH = 3


def frames_to_peak(gop: Sequence[AccessUnit], frame_number: int) -> list[AccessUnit]:
    """The IDR and the units after it up to the one nearest `frame_number`."""
    if not gop:
        return []
    nearest = min(range(len(gop)), key=lambda i: abs(gop[i].frame_number - frame_number))
    return list(gop[:nearest + 1])


def decode_last(units: Sequence[AccessUnit]) -> np.ndarray | None:
    """RGB picture of the last unit (decoding from the first, an IDR); None if undecodable."""
    codec = av.CodecContext.create("h264", "r")
    picture = None
    try:
        for au in units:
            for frame in codec.decode(av.Packet(au.data)):
                picture = frame
        for frame in codec.decode(None):  # flush: the decoder may hold the last frame back
            picture = frame
    except (av.error.FFmpegError, ValueError):
        return None
    return None if picture is None else picture.to_ndarray(format="rgb24")


def draw_box(rgb: np.ndarray, box: tuple[float, float, float, float],
             colour: tuple[int, int, int] = BOX_COLOUR, width: int = BOX_WIDTH) -> np.ndarray:
    """Outline `box` (x, y, w, h as fractions of the picture) in place."""
    height, wide = rgb.shape[:2]
    x0 = int(np.clip(round(box[0] * wide), 0, wide - 1))
    y0 = int(np.clip(round(box[1] * height), 0, height - 1))
    x1 = int(np.clip(round((box[0] + box[2]) * wide) - 1, x0, wide - 1))
    y1 = int(np.clip(round((box[1] + box[3]) * height) - 1, y0, height - 1))
    c = np.array(colour, dtype=np.uint8)
    rgb[y0:min(y0 + width, y1 + 1), x0:x1 + 1] = c
    rgb[max(y1 - width + 1, y0):y1 + 1, x0:x1 + 1] = c
    rgb[y0:y1 + 1, x0:min(x0 + width, x1 + 1)] = c
    rgb[y0:y1 + 1, max(x1 - width + 1, x0):x1 + 1] = c
    return rgb


def encode_jpeg(rgb: np.ndarray, quality: int = 4) -> bytes:
    """JPEG bytes of an RGB picture (`quality`: mjpeg qscale, 2 best .. 31)."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    # 4:2:0 needs even sizes
    width, height = frame.width - frame.width % 2, frame.height - frame.height % 2
    frame = frame.reformat(width=width, height=height, format="yuvj420p")
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"qmin": str(quality), "qmax": str(quality)}
    frame.pts = 0
    return b"".join(bytes(p) for p in [*encoder.encode(frame), *encoder.encode(None)])


def event_snapshot(gop: Sequence[AccessUnit], frame_number: int,
                   box: tuple[float, float, float, float] | None) -> bytes | None:
    """JPEG of the frame nearest `frame_number` with `box` drawn; None without a picture."""
    rgb = decode_last(frames_to_peak(gop, frame_number))
    if rgb is None:
        return None
    if box is not None:
        draw_box(rgb, box)
    return encode_jpeg(rgb)
