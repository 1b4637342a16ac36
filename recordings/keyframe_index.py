"""Keyframe index of a fragmented MP4: time -> byte range of the fragment that holds it.

recordings/media/writers.py writes `ftyp moov (moof mdat)* [mfra]`, one fragment per GOP,
each starting at a keyframe. Walking the top-level boxes and reading only the small
`moov`/`moof` boxes (never the media data) gives, per fragment, its decode time
(`tfdt`), its duration (sum of the `trun` sample durations, or the `tfhd`/`trex`
default) and its byte range. That is everything a player needs to seek (the HLS
playlist is made from it) and what the playback page asks for "where is second t".

The index is built once and stored as a JSON sidecar next to the recording
(`<stem>.index.json`, see recordings/sidecars.py). It carries the file size it was
made from: a file that grew (still recording) or was trimmed (repaired) is indexed
again instead of trusted.
"""

from __future__ import annotations

import bisect
import json
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from . import sidecars
from .models import media_path

log = logging.getLogger("petcam.recordings")

INDEX_VERSION = 1
_CONTAINERS = {b"moov", b"trak", b"mdia", b"mvex", b"moof", b"traf"}
_MAX_META_BOX = 16 * 1024 * 1024  # a moov/moof bigger than this is not one of ours


class NotFragmented(ValueError):  # noqa: N818 - reads as the answer: "not fragmented"
    """The file is not a fragmented MP4 (raw .h264, empty, or unreadable boxes)."""


class Fragment(NamedTuple):
    """One moof+mdat pair: a GOP, starting with a keyframe. (A tuple: an hour's 7,200 of
    them load from the sidecar in a few ms.)"""

    start: float  # seconds on the track's timeline (the player's currentTime)
    duration: float
    offset: int  # byte offset of the moof
    size: int  # bytes of moof + mdat
    frames: int
    keyframe: bool  # its first sample is a sync sample

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass
class KeyframeIndex:
    timescale: int
    init_size: int  # ftyp + moov: bytes [0, init_size) are the HLS init segment
    file_size: int
    fragments: list[Fragment]
    _starts: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._starts = [f.start for f in self.fragments]

    @property
    def duration(self) -> float:
        if not self.fragments:
            return 0.0
        return self.fragments[-1].end - self.fragments[0].start

    @property
    def frames(self) -> int:
        return sum(f.frames for f in self.fragments)

    def position(self, t: float) -> int | None:
        """Number of the fragment holding time t (clamped to the file); None if empty."""
        if not self.fragments:
            return None
        return max(0, bisect.bisect_right(self._starts, t) - 1)

    def at(self, t: float) -> Fragment | None:
        """The fragment holding time t: its keyframe is where a seek to t starts decoding."""
        i = self.position(t)
        return None if i is None else self.fragments[i]

    def to_json(self) -> dict:
        return {
            "version": INDEX_VERSION,
            "timescale": self.timescale,
            "init_size": self.init_size,
            "file_size": self.file_size,
            "duration": round(self.duration, 6),
            "frames": self.frames,
            # compact rows: an hour at a 0.5 s GOP is 7200 of them
            "fields": ["start", "duration", "offset", "size", "frames", "keyframe"],
            "fragments": [list(f) for f in self.fragments],  # exact: ticks / timescale
        }

    @classmethod
    def from_json(cls, data: dict) -> KeyframeIndex:
        if data.get("version") != INDEX_VERSION:
            raise ValueError("index version differs")
        rows = data["fragments"]
        if not all(len(row) == 6 for row in rows):
            raise ValueError("fragment rows of the wrong length")
        return cls(int(data["timescale"]), int(data["init_size"]), int(data["file_size"]),
                   list(map(Fragment._make, rows)))


# --- parsing ---------------------------------------------------------------------------------


def _boxes(buf: bytes, start: int = 0, end: int | None = None):
    """(type, payload start, box end) of the boxes in buf[start:end]."""
    end = len(buf) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size, header = struct.unpack_from(">Q", buf, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def _find(buf: bytes, path: tuple[bytes, ...], start: int = 0, end: int | None = None):
    """Payload (start, end) of the first box along `path`, or None."""
    for kind, body, box_end in _boxes(buf, start, end):
        if kind == path[0]:
            if len(path) == 1:
                return body, box_end
            if kind in _CONTAINERS:
                return _find(buf, path[1:], body, box_end)
    return None


def _timescale_and_default_duration(moov: bytes) -> tuple[int, int]:
    found = _find(moov, (b"trak", b"mdia", b"mdhd"))
    if found is None:
        raise NotFragmented("no mdhd in moov")
    body = found[0]
    version = moov[body]
    timescale = struct.unpack_from(">I", moov, body + (20 if version == 1 else 12))[0]
    default_duration = 0
    trex = _find(moov, (b"mvex", b"trex"))
    if trex is not None:
        default_duration = struct.unpack_from(">I", moov, trex[0] + 12)[0]
    if not timescale:
        raise NotFragmented("timescale 0")
    return timescale, default_duration


def _fragment_times(moof: bytes, default_duration: int) -> tuple[int, int, int, bool]:
    """(decode time, duration, samples, first sample is sync) of a moof, in timescale units."""
    traf = _find(moof, (b"traf",))
    if traf is None:
        raise NotFragmented("moof without traf")
    tfhd = _find(moof, (b"tfhd",), *traf)
    tfdt = _find(moof, (b"tfdt",), *traf)
    trun = _find(moof, (b"trun",), *traf)
    if tfhd is None or trun is None:
        raise NotFragmented("traf without tfhd/trun")
    # tfhd: optional fields in flag order after the track id
    flags = struct.unpack_from(">I", moof, tfhd[0])[0] & 0xFFFFFF
    pos = tfhd[0] + 8
    pos += 8 if flags & 0x01 else 0  # base data offset
    pos += 4 if flags & 0x02 else 0  # sample description index
    if flags & 0x08:
        default_duration = struct.unpack_from(">I", moof, pos)[0]
        pos += 4
    pos += 4 if flags & 0x10 else 0  # default sample size
    default_flags = struct.unpack_from(">I", moof, pos)[0] if flags & 0x20 else 0
    decode_time = 0
    if tfdt is not None:
        version = moof[tfdt[0]]
        decode_time = struct.unpack_from(">Q" if version == 1 else ">I", moof, tfdt[0] + 4)[0]
    # trun: per-sample fields, each present for all samples or none
    head = struct.unpack_from(">I", moof, trun[0])[0]
    tflags = head & 0xFFFFFF
    count = struct.unpack_from(">I", moof, trun[0] + 4)[0]
    pos = trun[0] + 8
    pos += 4 if tflags & 0x01 else 0  # data offset
    first_flags = None
    if tflags & 0x04:
        first_flags = struct.unpack_from(">I", moof, pos)[0]
        pos += 4
    per_sample = [bit for bit in (0x100, 0x200, 0x400, 0x800) if tflags & bit]
    stride = 4 * len(per_sample)
    if pos + stride * count > trun[1]:
        raise NotFragmented("trun shorter than its sample count")
    duration = 0
    for i in range(count):
        sample = pos + i * stride
        if tflags & 0x100:
            duration += struct.unpack_from(">I", moof, sample)[0]
        else:
            duration += default_duration
        if i == 0 and first_flags is None:
            if tflags & 0x400:
                first_flags = struct.unpack_from(
                    ">I", moof, sample + 4 * per_sample.index(0x400))[0]
            else:
                first_flags = default_flags
    # sample_is_non_sync_sample is bit 16 of the sample flags
    keyframe = first_flags is not None and not (first_flags >> 16) & 1
    return decode_time, duration, count, keyframe


def build(path: Path) -> KeyframeIndex:
    """Read the boxes of `path`; NotFragmented if it is not a fragmented MP4.

    A torn tail (a box running past the end, a moof without its mdat) ends the index
    at the last whole fragment, as recordings/media/writers.py repair_mp4() would trim it.
    """
    try:
        return _build(path)
    except (struct.error, IndexError) as exc:  # a box shorter than its fields
        raise NotFragmented(f"malformed box: {exc}") from None


def _build(path: Path) -> KeyframeIndex:
    size = path.stat().st_size
    timescale = default_duration = 0
    init_size = 0
    fragments: list[Fragment] = []
    pending: tuple[int, int, int, int, bool] | None = None  # moof offset, times, flags
    with open(path, "rb") as f:
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            header = f.read(16)
            box_size, kind = struct.unpack_from(">I4s", header)
            header_len = 8
            if box_size == 1 and len(header) >= 16:
                box_size, header_len = struct.unpack_from(">Q", header, 8)[0], 16
            elif box_size == 0:
                box_size = size - pos
            if box_size < header_len or pos + box_size > size:
                break  # torn tail
            if kind in (b"moov", b"moof"):
                if box_size > _MAX_META_BOX:
                    raise NotFragmented(f"{kind.decode()} box of {box_size} bytes")
                f.seek(pos)
                body = f.read(box_size)
                if kind == b"moov":
                    timescale, default_duration = _timescale_and_default_duration(
                        body[header_len:])
                    init_size = pos + box_size
                else:
                    if not timescale:
                        raise NotFragmented("moof before moov")
                    decode_time, ticks, count, key = _fragment_times(
                        body[header_len:], default_duration)
                    pending = (pos, decode_time, ticks, count, key)
            elif kind == b"mdat" and pending is not None:
                offset, decode_time, ticks, count, key = pending
                fragments.append(Fragment(decode_time / timescale, ticks / timescale, offset,
                                          pos + box_size - offset, count, key))
                pending = None
            elif pos == 0 and kind != b"ftyp":
                raise NotFragmented("no ftyp box at the start")
            pos += box_size
    if not init_size:
        raise NotFragmented("no moov box")
    return KeyframeIndex(timescale, init_size, size, fragments)


# --- the stored index --------------------------------------------------------------------------

MEMO_SIZE = 32  # indexes kept in memory per process (an hour at a 0.5 s GOP: ~1 MB)
_memo: dict[str, KeyframeIndex] = {}


def _remember(key: str, index: KeyframeIndex) -> None:
    _memo.pop(key, None)
    _memo[key] = index
    while len(_memo) > MEMO_SIZE:
        _memo.pop(next(iter(_memo)))  # the least recently stored


def load(file_name: str, *, store: bool) -> KeyframeIndex:
    """The index of a recording's file (relative to MEDIA_ROOT), from its sidecar when that
    was made from the file as it is now; otherwise built, and stored if `store`
    (a finished recording; a growing one is indexed on each call instead).

    Raises FileNotFoundError, NotFragmented, ValueError (path outside MEDIA_ROOT).
    """
    path = media_path(file_name)
    size = path.stat().st_size
    remembered = _memo.get(str(path))
    if remembered is not None and remembered.file_size == size:
        return remembered  # no JSON parse per request: the page asks often
    cache = sidecars.sidecar_path(file_name, sidecars.KEYFRAME_INDEX)
    try:
        index = KeyframeIndex.from_json(json.loads(cache.read_bytes()))
        if index.file_size == size:
            _remember(str(path), index)
            return index
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("keyframe index %s unreadable (%s): building it again", cache.name, exc)
    index = build(path)
    if store:
        _remember(str(path), index)
        sidecars.write_atomically(cache, json.dumps(index.to_json(),
                                                    separators=(",", ":")).encode())
        log.info("keyframe index of %s: %d fragments, %.1f s", path.name,
                 len(index.fragments), index.duration)
    return index
