"""Every use of aiortc's private names, in one place (checked against aiortc 1.16.0).

Passthrough needs a few things aiortc does not offer publicly. Each hook says
why. When the pinned aiortc changes, tests/unit/test_aiortc_compat.py fails until
someone re-reads these against the new source and updates CHECKED_AGAINST.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiortc
import aiortc.codecs
import aiortc.codecs.h264
from aiortc import RTCRtpSender
from aiortc.codecs.h264 import H264Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

CHECKED_AGAINST = "1.16.0"


def set_packet_max(size: int) -> None:
    """H.264 RTP payload size. aiortc's module global (1300) gives ~1336-byte datagrams,
    above a 1280-byte VPN MTU; there is no per-sender option."""
    aiortc.codecs.h264.PACKET_MAX = size


def h264_payloads(access_unit: bytes) -> list[bytes]:
    """RTP payloads (FU-A / STAP-A) of one Annex-B access unit, exactly as aiortc's sender
    would make them: its packetizer is private (`_split_bitstream`, `_packetize`)."""
    return H264Encoder._packetize(h264_nal_units(access_unit))


def h264_nal_units(access_unit: bytes) -> list[bytes]:
    """The NAL units of an Annex-B access unit, split by aiortc's own (private) splitter."""
    return [nal for nal in H264Encoder._split_bitstream(access_unit) if nal]


def install_encoder(sender: RTCRtpSender, encoder: Any) -> None:
    """Give a sender our stand-in encoder (packets in, payloads out, never encodes).
    aiortc creates the encoder itself from the negotiated codec, into a private slot;
    filling the slot first makes it keep ours."""
    sender._RTCRtpSender__encoder = encoder


def sender_rtp_timestamp(sender: RTCRtpSender) -> int:
    """The RTP timestamp of the sender's last packet (private): with it the browser can
    map a frame's RTP timestamp back to the camera clock."""
    return sender._RTCRtpSender__rtp_timestamp


def on_sender_rtcp(sender: RTCRtpSender, callback: Callable[[Any], None]) -> None:
    """Call `callback(packet)` for each RTCP packet the sender receives, before aiortc
    handles it. In passthrough aiortc swallows PLI/FIR (they only set a flag for its
    encoder) and tells the app nothing; RTCP is also our liveness signal."""
    handle: Callable[[Any], Awaitable[None]] = sender._handle_rtcp_packet

    async def wrapped(packet: Any) -> None:
        callback(packet)
        await handle(packet)

    sender._handle_rtcp_packet = wrapped


def video_codec_table() -> list[RTCRtpCodecParameters]:
    """aiortc's table of video codecs it may negotiate (a module global, mutable): it only
    knows H.264 42001f and 42e01f, so the stream's real profile is added here."""
    return aiortc.codecs.CODECS["video"]


def version() -> str:
    return aiortc.__version__
