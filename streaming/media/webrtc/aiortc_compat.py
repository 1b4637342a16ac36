"""Every use of aiortc's private names, in one place (checked against aiortc 1.16.0).

Passthrough needs a few things aiortc does not offer publicly. Each hook says
why. When the pinned aiortc changes, tests/unit/test_aiortc_compat.py fails until
someone re-reads these against the new source and updates CHECKED_AGAINST.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aioice.ice
import aiortc
import aiortc.codecs
import aiortc.codecs.h264
import pylibsrtp
from aiortc import RTCRtpSender
from aiortc.codecs.h264 import H264Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import HeaderExtensionsMap

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


def drop_receive_estimator(receiver: Any) -> None:
    """A send-only viewer never sends us video, yet aiortc gives its transceiver's
    receiver a remote bitrate estimator: two 1000-bucket rate counters, ~95 KB of Python
    objects per viewer (tracemalloc). Its RTP handler skips the estimator when None."""
    receiver._RTCRtpReceiver__remote_bitrate_estimator = None


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


# --- the lean fan-out sender (streaming/media/webrtc/fanout.py) ---------------------------
#
# aiortc's RTCRtpSender._run_rtp builds an RtpPacket object per packet, reads the wall
# clock twice per packet, and awaits three coroutine layers (DTLS transport -> aioice
# Connection -> protocol) to reach sendto. The lean sender replaces that one loop and
# keeps everything else of the sender: RTCP (_run_rtcp, reading the counters below),
# NACK handling (_handle_rtcp_packet -> our _retransmit), stop(), DTLS, ICE.


def replace_rtp_loop(sender: RTCRtpSender,
                     run: Callable[[RTCRtpCodecParameters], Awaitable[None]]) -> None:
    """Make sender.send() start `run(codec)` instead of aiortc's per-packet loop. send()
    calls `self._run_rtp(codecs[0])`; an instance attribute wins over the method. Call
    before the connection starts the sender (i.e. right after setLocalDescription)."""
    sender._run_rtp = run


def replace_retransmit(sender: RTCRtpSender, retransmit: Callable[[int], Awaitable[None]]
                       ) -> None:
    """NACKs reach `retransmit(sequence_number)`: aiortc's own looks in its private
    per-packet history, which the lean loop does not fill."""
    sender._retransmit = retransmit


@dataclass
class SenderInternals:
    """What the lean loop needs of one RTCRtpSender, all private in aiortc 1.16.0."""

    ssrc: int
    rtx_ssrc: int
    mid: str | None
    extensions: HeaderExtensionsMap  # ids of the header extensions the answer negotiated
    rtx_payload_type: int | None
    started: asyncio.Event  # stop() waits for both; the loop must set them
    exited: asyncio.Event


def sender_internals(sender: RTCRtpSender) -> SenderInternals:
    return SenderInternals(
        ssrc=sender._ssrc, rtx_ssrc=sender._rtx_ssrc, mid=sender._RTCRtpSender__mid,
        extensions=sender._RTCRtpSender__rtp_header_extensions_map,
        rtx_payload_type=sender._RTCRtpSender__rtx_payload_type,
        started=sender._RTCRtpSender__rtp_started, exited=sender._RTCRtpSender__rtp_exited)


def sender_enabled(sender: RTCRtpSender) -> bool:
    return sender._enabled


def next_rtx_sequence_number(sender: RTCRtpSender) -> int:
    """The RTX stream's next sequence number (aiortc keeps it in the sender)."""
    seq = sender._RTCRtpSender__rtx_sequence_number
    sender._RTCRtpSender__rtx_sequence_number = (seq + 1) & 0xFFFF
    return seq


def set_sender_counters(sender: RTCRtpSender, *, ntp_timestamp: int, rtp_timestamp: int,
                        octets: int, packets: int) -> None:
    """What aiortc's _run_rtcp puts in each sender report (and getStats shows): the NTP
    and RTP time of the last packet, payload octets and packets sent so far."""
    sender._RTCRtpSender__ntp_timestamp = ntp_timestamp
    sender._RTCRtpSender__rtp_timestamp = rtp_timestamp
    sender._RTCRtpSender__octet_count = octets
    sender._RTCRtpSender__packet_count = packets


def srtp_protect(sender: RTCRtpSender) -> Callable[[bytes], bytes]:
    """The viewer's SRTP session (set up by DTLS): RTP bytes in, SRTP bytes out.

    pylibsrtp's Session.protect is ~10 Python calls around one C call (type and size
    checks, a new int* per packet); this does the same C call on a buffer of our own,
    exactly as pylibsrtp 1.0's Session.__process does (its private `_srtp` handle and
    `_binding` module). Falls back to Session.protect when those are not there."""
    session = sender.transport._tx_srtp
    try:
        from pylibsrtp._binding import ffi, lib

        handle = session._srtp[0]
        c_protect = lib.srtp_protect
    except (ImportError, AttributeError, TypeError):
        return session.protect
    capacity = 1500 - pylibsrtp.SRTP_MAX_TRAILER_LEN  # pylibsrtp's own limit
    cdata = ffi.new("char[]", 1500)
    buffer = ffi.buffer(cdata)
    length = ffi.new("int *")
    slow = session.protect

    def protect(packet: bytes) -> bytes:
        n = len(packet)
        if n > capacity:
            return slow(packet)  # raises pylibsrtp's "packet is too long"
        buffer[0:n] = packet
        length[0] = n
        if c_protect(handle, cdata, length):
            return slow(packet)  # raises pylibsrtp's error for that status
        return buffer[0:length[0]]

    return protect


@dataclass
class InPlaceSrtp:
    """The viewer's SRTP session as one C call on memory of the caller's: protect(handle,
    pointer, length) encrypts the `length[0]` bytes of RTP at `pointer` where they are,
    appends the auth tag, sets `length[0]` to the SRTP size, and returns 0 (else a
    libsrtp error status: `protect_bytes` of the packet then raises pylibsrtp's error)."""

    protect: Callable[[Any, Any, Any], int]
    handle: Any
    length: Any  # int*, shared by the calls
    capacity: int  # the biggest RTP packet that leaves room for the trailer in 1500 bytes
    pointer: Callable[[int], Any]  # address -> the pointer protect takes
    protect_bytes: Callable[[bytes], bytes]  # pylibsrtp's own Session.protect


def srtp_in_place(sender: RTCRtpSender) -> InPlaceSrtp | None:
    """The viewer's SRTP session for protecting in a buffer of our own (a sendmmsg slot:
    no bytes object in or out), through pylibsrtp 1.0's private `_srtp` handle and
    `_binding` module as srtp_protect above; None when those are not there."""
    session = sender.transport._tx_srtp
    try:
        from pylibsrtp._binding import ffi, lib

        handle = session._srtp[0]
        c_protect = lib.srtp_protect
    except (ImportError, AttributeError, TypeError):
        return None
    return InPlaceSrtp(protect=c_protect, handle=handle, length=ffi.new("int *"),
                       capacity=1500 - pylibsrtp.SRTP_MAX_TRAILER_LEN,
                       pointer=lambda address: ffi.cast("char *", address),
                       protect_bytes=session.protect)


def count_dtls_sent(sender: RTCRtpSender, datagrams: int, octets: int) -> None:
    """The DTLS transport's own tx counters (its getStats), which _send_rtp keeps."""
    dtls = sender.transport
    dtls._RTCDtlsTransport__tx_packets += datagrams
    dtls._RTCDtlsTransport__tx_bytes += octets


async def send_rtp(sender: RTCRtpSender, data: bytes) -> None:
    """aiortc's own way out (SRTP protect + ICE send): for the rare retransmission."""
    await sender.transport._send_rtp(data)


def ice_send(sender: RTCRtpSender) -> Callable[[bytes], Awaitable[None]]:
    """aioice's public send on the viewer's ICE connection (any pair, TURN included)."""
    return sender.transport.transport._connection.send


def ice_udp_pair(sender: RTCRtpSender) -> tuple[Any, asyncio.DatagramTransport,
                                                 tuple[str, int]] | None:
    """(pair, UDP transport, peer address) of the ICE-selected candidate pair when it is
    a plain UDP one (host or server-reflexive: aioice's StunProtocol sends the datagram
    as is); None when not selected yet or relayed (TURN wraps datagrams). aioice keeps
    the selected pair private (Connection._nominated)."""
    connection = sender.transport.transport._connection
    pair = getattr(connection, "_nominated", {}).get(1)
    if pair is None or type(pair.protocol) is not aioice.ice.StunProtocol:
        return None
    transport = pair.protocol.transport
    if transport is None or transport.is_closing():
        return None
    return pair, transport, pair.remote_addr


def video_codec_table() -> list[RTCRtpCodecParameters]:
    """aiortc's table of video codecs it may negotiate (a module global, mutable): it only
    knows H.264 42001f and 42e01f, so the stream's real profile is added here."""
    return aiortc.codecs.CODECS["video"]


def version() -> str:
    return aiortc.__version__


# --- ICE through a TURN relay (aioice) --------------------------------------------------------

AIOICE_CHECKED_AGAINST = "0.13.0"


def install_prompt_triggered_checks() -> None:
    """Resend our own check on a pair at once when the peer's check arrives on it.

    RFC 8445 section 7.3.1.4: a check received on a pair whose own check is In-Progress
    triggers a new check of it. aioice 0.13's Connection.check_incoming triggers only
    Waiting/Frozen/Failed pairs, so such a pair waits for its STUN retransmission, 500 ms
    later. Behind a TURN relay that is every viewer: our first check to the browser's
    relay address is dropped by the TURN server until the browser installs a permission
    for us, which it does as it sends its own check. Resending our request then (same
    transaction, through its private request and address) connects at once
    (benchmarks/browser_latency_bench.py --relay). Once per transaction; idempotent."""
    original = aioice.ice.Connection.check_incoming
    if getattr(original, "petcam_prompt", False):
        return
    in_progress = aioice.ice.CandidatePair.State.IN_PROGRESS

    def check_incoming(self, message, addr, protocol) -> None:
        for pair in self._check_list:
            if (pair.protocol is protocol and pair.state == in_progress
                    and pair.remote_addr == addr):
                for transaction in list(protocol.transactions.values()):
                    if (transaction._Transaction__addr == addr
                            and not getattr(transaction, "petcam_resent", False)):
                        transaction.petcam_resent = True
                        protocol.send_stun(transaction._Transaction__request, addr)
        original(self, message, addr, protocol)

    check_incoming.petcam_prompt = True
    aioice.ice.Connection.check_incoming = check_incoming


def aioice_version() -> str:
    from importlib.metadata import version as dist_version

    return dist_version("aioice")
