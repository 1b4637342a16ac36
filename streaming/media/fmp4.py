"""Fragmented MP4 for live H.264: an init segment (ftyp+moov) and one fragment (moof+mdat)
per access unit, built by hand from the camera's bytes (no decode, no re-encode).

What Media Source Extensions need and nothing more: one video track, 90 kHz timescale,
SPS/PPS in the `avcC` box, samples as length-prefixed NAL units. One fragment per frame
keeps latency at a frame; a box or two of ~100 bytes is the whole overhead.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from streaming.media.h264.nal import NalType, nal_unit_spans
from streaming.media.h264.sps import SpsError, parse_sps

TIMESCALE = 90_000  # like RTP: camera seconds * 90 kHz
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
# Parameter sets travel in avcC; an access unit delimiter has no place in an MP4 sample.
_NOT_IN_SAMPLES = (NalType.SPS, NalType.PPS, NalType.AUD)
_SYNC_FLAGS = 0x02000000  # sample_depends_on = 2: an IDR depends on nothing
_NON_SYNC_FLAGS = 0x01010000  # depends on others, sample_is_non_sync_sample


class Fmp4Error(ValueError):
    """The access unit cannot start or continue a fragmented MP4 stream."""


@dataclass(frozen=True)
class TrackInfo:
    """What the init segment says about the stream; a change needs a new init segment."""

    width: int
    height: int
    profile_level_id: str  # e.g. '640028'
    sps: bytes  # NAL units, no start code
    pps: bytes

    @property
    def mime(self) -> str:
        """The type for MediaSource.isTypeSupported / addSourceBuffer."""
        return f'video/mp4; codecs="avc1.{self.profile_level_id}"'


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def track_info(data: bytes) -> TrackInfo:
    """The TrackInfo of an IDR access unit (Annex-B) that carries SPS and PPS."""
    sps = pps = None
    for start, end in nal_unit_spans(data):
        kind = data[start] & 0x1F
        if kind == NalType.SPS and sps is None:
            sps = data[start:end]
        elif kind == NalType.PPS and pps is None:
            pps = data[start:end]
    if sps is None or pps is None:
        raise Fmp4Error("the access unit carries no SPS and PPS")
    try:
        info = parse_sps(sps)
    except SpsError as exc:
        raise Fmp4Error(f"unreadable SPS: {exc}") from exc
    return TrackInfo(info.width, info.height, info.profile_level_id, sps, pps)


def avcc_sample(data: bytes) -> bytes:
    """An Annex-B access unit as an MP4 sample: 4-byte lengths, no SPS/PPS/AUD."""
    parts = []
    for start, end in nal_unit_spans(data):
        if data[start] & 0x1F in _NOT_IN_SAMPLES:
            continue
        parts.append(struct.pack(">I", end - start))
        parts.append(data[start:end])
    if not parts:
        raise Fmp4Error("the access unit has no picture NAL units")
    return b"".join(parts)


def init_segment(track: TrackInfo) -> bytes:
    """ftyp + moov for one H.264 track with no samples (they come in fragments)."""
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso6", b"avc1", b"mp41")
    mvhd = _full_box(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, 1000, 0),
                     struct.pack(">IH", 0x10000, 0x100), bytes(10), _MATRIX, bytes(24),
                     struct.pack(">I", 2))
    tkhd = _full_box(b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, 1, 0, 0), bytes(8),
                     struct.pack(">hhhH", 0, 0, 0, 0), _MATRIX,
                     struct.pack(">II", track.width << 16, track.height << 16))
    mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, 0, 0x55C4, 0))
    hdlr = _full_box(b"hdlr", 0, 0, struct.pack(">I4s", 0, b"vide"), bytes(12),
                     b"petcam video\x00")
    sps, pps = track.sps, track.pps
    avcc = _box(b"avcC", bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]),
                struct.pack(">H", len(sps)), sps, b"\x01", struct.pack(">H", len(pps)), pps)
    avc1 = _box(b"avc1", bytes(6), struct.pack(">H", 1), bytes(16),
                struct.pack(">HHIIIH", track.width, track.height, 0x480000, 0x480000, 0, 1),
                bytes(32), struct.pack(">Hh", 0x18, -1), avcc)
    stbl = _box(b"stbl", _full_box(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
                _full_box(b"stts", 0, 0, struct.pack(">I", 0)),
                _full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
                _full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
                _full_box(b"stco", 0, 0, struct.pack(">I", 0)))
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1),
                                   _full_box(b"url ", 0, 1)))
    minf = _box(b"minf", _full_box(b"vmhd", 0, 1, bytes(8)), dinf, stbl)
    trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
    mvex = _box(b"mvex", _full_box(b"trex", 0, 0, struct.pack(">IIIII", 1, 1, 0, 0, 0)))
    return ftyp + _box(b"moov", mvhd, trak, mvex)


def fragment(sequence: int, decode_time: int, duration: int, sample: bytes,
             is_idr: bool) -> bytes:
    """moof + mdat holding one sample: `decode_time` and `duration` in TIMESCALE ticks."""
    if decode_time < 0 or duration <= 0:
        raise Fmp4Error(f"bad timing: decode_time={decode_time}, duration={duration}")
    mfhd = _full_box(b"mfhd", 0, 0, struct.pack(">I", sequence & 0xFFFFFFFF))
    tfhd = _full_box(b"tfhd", 0, 0x020000, struct.pack(">I", 1))  # default-base-is-moof
    tfdt = _full_box(b"tfdt", 1, 0, struct.pack(">Q", decode_time))
    trun_size = 8 + 4 + 4 + 4 + 12  # header, version/flags, count, data_offset, one sample
    moof_size = 8 + len(mfhd) + 8 + len(tfhd) + len(tfdt) + trun_size
    trun = _full_box(b"trun", 0, 0x000701, struct.pack(
        ">IiIII", 1, moof_size + 8, duration, len(sample),
        _SYNC_FLAGS if is_idr else _NON_SYNC_FLAGS))
    moof = _box(b"moof", mfhd, _box(b"traf", tfhd, tfdt, trun))
    return moof + struct.pack(">I4s", 8 + len(sample), b"mdat") + sample
