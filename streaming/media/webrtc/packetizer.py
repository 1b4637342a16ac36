"""Packetizes each access unit once for all viewers (aiortc does it once per viewer).

aiortc's sender calls `encoder.pack(packet)` right after `track.recv()`, so a
per-sender stand-in encoder can look up which access unit the track just
returned and reuse the RTP payloads another viewer's sender already made.
Each viewer still does its own RTP header, SRTP and sendto.
"""

from __future__ import annotations

import weakref

import av
from aiortc.codecs.base import Encoder
from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase

from streaming.media.types import AccessUnit
from streaming.media.webrtc.aiortc_compat import h264_payloads, sender_rtp_timestamp


class PayloadCache:
    """RTP payloads of the access units alive now, keyed by identity.

    An entry goes when its unit is freed (a weak reference's callback), so the payloads
    are kept exactly as long as something still holds the unit: the hub's GOP cache, a
    viewer's queue, a track. A bound by count kept 160 units and their payloads alive
    (~11 MB at 8 Mbit/s) as soon as one viewer watched."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref, list[bytes]]] = {}
        self.hits = 0
        self.misses = 0

    def payloads(self, au: AccessUnit) -> list[bytes]:
        key = id(au)
        entry = self._entries.get(key)
        if entry is not None and entry[0]() is au:
            self.hits += 1
            return entry[1]
        self.misses += 1
        payloads = h264_payloads(au.data)
        entries = self._entries

        def forget(ref: weakref.ref, key: int = key) -> None:
            if entries.get(key, (None,))[0] is ref:
                del entries[key]

        entries[key] = (weakref.ref(au, forget), payloads)
        return payloads

    def __len__(self) -> int:
        return len(self._entries)


PAYLOADS = PayloadCache()


class SharedPacketizer(Encoder):
    """Stands in for aiortc's H264Encoder on one sender; never encodes.

    It also learns the sender's random RTP timestamp origin: when pack() runs
    for a frame, the previous frame has been sent whole, so the sender's last
    wire timestamp minus that frame's media timestamp is the origin. With it a
    browser can map a frame's RTP timestamp back to the camera clock.
    """

    def __init__(self, track, sender=None, cache: PayloadCache = PAYLOADS,
                 shared: bool = True) -> None:
        self.track = track  # has .last_unit: the AccessUnit behind the last packet
        self.sender = sender
        self.cache = cache
        self.shared = shared
        self.target_bitrate = 0  # REMB lands here; passthrough has no bitrate to steer
        self.rtp_origin: int | None = None
        self._previous_ts: int | None = None

    def encode(self, frame, force_keyframe: bool = False):
        raise TypeError("passthrough sender got a decoded frame")

    def pack(self, packet: av.Packet) -> tuple[list[bytes], int]:
        au = self.track.last_unit
        if not self.shared or au is None or packet.size != len(au.data):
            payloads = h264_payloads(bytes(packet))
        else:
            payloads = self.cache.payloads(au)
        timestamp = convert_timebase(packet.pts, packet.time_base, VIDEO_TIME_BASE)
        if self.rtp_origin is None and self._previous_ts is not None and self.sender:
            wire = sender_rtp_timestamp(self.sender)
            self.rtp_origin = (wire - self._previous_ts) % 2**32
        self._previous_ts = timestamp
        return payloads, timestamp
