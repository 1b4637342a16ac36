"""Scrubbing thumbnails: one sprite JPEG of keyframes across a recording, plus their times.

Made once per recording, lazily (first request), and cached next to it
(`<stem>.strip.jpg` + `<stem>.strip.json`). Only keyframes are decoded and only the
fragments chosen are read: the keyframe index gives each fragment's byte range, and
init segment + that one `moof`+`mdat` is a tiny MP4 PyAV opens from memory, whose
first frame is the keyframe. An hour-long recording reads ~MAX_TILES fragments,
not the whole file.
"""

from __future__ import annotations

import bisect
import io
import json
import logging
from fractions import Fraction

import av
import numpy as np

from . import sidecars
from .keyframe_index import Fragment, KeyframeIndex
from .models import media_path

log = logging.getLogger("petcam.recordings")

STRIP_VERSION = 1
MAX_TILES = 120
TILE_WIDTH = 160
COLUMNS = 10


def choose(fragments: list[Fragment], max_tiles: int = MAX_TILES) -> list[Fragment]:
    """Keyframe fragments spread evenly: at most max_tiles, the nearest to equal steps."""
    keyed = [f for f in fragments if f.keyframe]
    if len(keyed) <= max_tiles:
        return keyed
    starts = [f.start for f in keyed]
    step = (starts[-1] - starts[0]) / (max_tiles - 1)
    picked: list[int] = []
    for k in range(max_tiles):
        target = starts[0] + k * step
        i = bisect.bisect_left(starts, target)
        if i == len(starts) or (i > 0 and target - starts[i - 1] <= starts[i] - target):
            i -= 1
        if not picked or i > picked[-1]:
            picked.append(i)
    return [keyed[i] for i in picked]


def _keyframe(init: bytes, fragment: bytes) -> av.VideoFrame | None:
    """The first picture of one fragment, decoded from an MP4 made of init + fragment."""
    with av.open(io.BytesIO(init + fragment), format="mp4") as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        stream.thread_type = "SLICE"  # frame threads would hold the picture back
        for packet in container.demux(stream):
            for frame in packet.decode():  # packet.decode(): the flush packet too
                return frame
    return None


def _jpeg(rgb: np.ndarray) -> bytes:
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = frame.width, frame.height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"qmin": "3", "qmax": "8"}
    frame.pts = 0
    return b"".join(bytes(p) for p in [*encoder.encode(frame), *encoder.encode(None)])


def make(file_name: str, index: KeyframeIndex, *, max_tiles: int = MAX_TILES,
         tile_width: int = TILE_WIDTH, columns: int = COLUMNS) -> tuple[bytes, dict] | None:
    """(sprite JPEG, JSON index) of a recording, or None if no keyframe decodes."""
    path = media_path(file_name)
    tiles: list[tuple[float, np.ndarray]] = []
    tile_height = 0
    with open(path, "rb") as f:
        init = f.read(index.init_size)
        for fragment in choose(index.fragments, max_tiles):
            f.seek(fragment.offset)
            try:
                frame = _keyframe(init, f.read(fragment.size))
            except (av.error.FFmpegError, IndexError) as exc:
                log.info("%s: fragment at %d gave no thumbnail: %s", path.name,
                         fragment.offset, exc)
                continue
            if frame is None:
                continue
            if not tile_height:
                tile_height = max(2, round(frame.height * tile_width / frame.width / 2) * 2)
            small = frame.reformat(width=tile_width, height=tile_height, format="rgb24")
            tiles.append((fragment.start, small.to_ndarray()))
    if not tiles:
        return None
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    sprite = np.zeros((rows * tile_height, columns * tile_width, 3), np.uint8)
    entries = []
    for i, (start, pixels) in enumerate(tiles):
        x, y = (i % columns) * tile_width, (i // columns) * tile_height
        sprite[y:y + tile_height, x:x + tile_width] = pixels
        entries.append({"time": round(start, 3), "x": x, "y": y})
    meta = {"version": STRIP_VERSION, "tile_width": tile_width, "tile_height": tile_height,
            "columns": columns, "rows": rows, "count": len(entries),
            "sprite_width": columns * tile_width, "sprite_height": rows * tile_height,
            "file_size": index.file_size, "thumbnails": entries}
    return _jpeg(sprite), meta


def load(file_name: str, index: KeyframeIndex) -> dict | None:
    """The strip's JSON index, making and caching sprite + index first if needed.

    None when the recording has no decodable keyframe. A cached strip made from a
    different file size (the file was repaired since) is made again.
    """
    meta_path = sidecars.sidecar_path(file_name, sidecars.STRIP_INDEX)
    image_path = sidecars.sidecar_path(file_name, sidecars.STRIP_IMAGE)
    try:
        meta = json.loads(meta_path.read_bytes())
        if (meta.get("version") == STRIP_VERSION and meta.get("file_size") == index.file_size
                and image_path.is_file()):
            return meta
    except FileNotFoundError:
        pass
    except ValueError as exc:
        log.warning("thumbnail strip %s unreadable (%s): making it again", meta_path.name, exc)
    made = make(file_name, index)
    if made is None:
        return None
    image, meta = made
    sidecars.write_atomically(image_path, image)  # the image first: the index points at it
    sidecars.write_atomically(meta_path, json.dumps(meta, separators=(",", ":")).encode())
    log.info("thumbnail strip of %s: %d keyframes, %d bytes", media_path(file_name).name,
             meta["count"], len(image))
    return meta
