"""The lean send path of one viewer: per frame, not per packet, wherever it can.

aiortc's sender loop does per RTP packet: an RtpPacket object, two wall-clock
reads and datetime arithmetic (abs-send-time, the sender report's clock),
header extensions serialized from scratch, and three awaited coroutine layers
down to sendto (py-spy: 56 % of the worker at 10 viewers). This loop replaces
that one loop of aiortc's RTCRtpSender (see aiortc_compat); the rest of the
sender stays aiortc's: DTLS/SRTP keys, RTCP sender reports (fed the same
counters), NACK handling (answered from our history), stop().

Per frame: the payloads come from the shared packetizer (packetized once for
all viewers); the RTP header is built once per burst with aiortc's own
serializer (so the header extensions are exactly what aiortc negotiated and
would write, mid and abs-send-time with one clock read). Then, per burst
(PETCAM_BATCH_SEND, the default): each packet is written into a slot of a
buffer kept per viewer (header, its first four bytes, payload), SRTP-protected
there in place by libsrtp's C call, and the whole burst leaves in one
sendmmsg(2) on the ICE-selected pair's UDP socket (udp_batch: ctypes, no
compiled code; the message and iovec arrays are built once). Per packet no
bytes object, no socket call: two slice copies, a pack_into, the C protect.
What a full socket buffer leaves unsent goes to asyncio's queue in order (as
with a sendto that would block); after any other sendmmsg error, or where
there is no sendmmsg, the per-packet path: a bytes object per packet and one
sendto each (the path with PETCAM_BATCH_SEND=0). A relayed (TURN) pair goes
through aioice either way. A frame of more than PACE_ABOVE packets
(an IDR; live, or in a backlog after a stall, but not in a replayed GOP that
a new viewer waits on) leaves in bursts of at most PACE_BURST spread over
most of a frame interval (PETCAM_PACING, pace_schedule; "auto", the default: only
once the viewer has reported a lost packet of such a frame), so it does not overflow a
phone's receive buffer (208 KiB, Linux's default, holds ~90 such datagrams;
an IDR is 100-200). The packets on the wire are what aiortc's loop sends,
byte for byte before SRTP, except that abs-send-time is that of the burst
rather than of each packet.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import struct
import time
from collections import deque

from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket, wrap_rtx
from aiortc.utils import random32

from streaming.media.webrtc import aiortc_compat as compat
from streaming.media.webrtc import udp_batch
from streaming.media.webrtc.aiortc_compat import h264_payloads
from streaming.media.webrtc.packetizer import PAYLOADS, PayloadCache
from streaming.media.webrtc.track import PassthroughTrack
from streaming.media.webrtc.udp_batch import SLOT_SIZE, DatagramBatch

log = logging.getLogger("petcam.viewer")

FIRST_WORD = struct.Struct("!BBH")  # V/P/X/CC, M/PT, sequence number
BATCH_SLOTS = 64  # datagrams per sendmmsg (an unpaced IDR, 100-200 packets, takes a few)
HISTORY_FRAMES = 32  # NACK answers for ~1 s at 30 fps (aiortc keeps 128 packets: ~4 frames)
PACE_ABOVE = 32  # packets: a bigger live frame (an IDR; a P-frame at 8 Mbit/s is ~30) is paced
PACE_BURST = 16  # packets (~20 KB) back to back at most within a paced frame
PACE_SPREAD = 0.8  # of the frame interval: a paced frame's last burst leaves by then
DEFAULT_INTERVAL = 1 / 30  # s, until two live frames' camera stamps tell the cadence
MAX_INTERVAL = 0.1  # s: a slow camera's IDR is still spread over at most 80 ms


NTP_UNIX_OFFSET = 2208988800  # s from NTP's epoch (1900) to Unix's (1970)


def ntp_now() -> int:
    """What aiortc's clock.current_ntp_time() gives (64-bit NTP time of the wall clock),
    from one time.time() read rather than through datetime (~10 Python calls, 4 % of the
    worker at 10 viewers: it runs per viewer per burst)."""
    now = time.time()
    return ((int(now) + NTP_UNIX_OFFSET) << 32) | int((now % 1) * 4294967296)


def pace_schedule(count: int, interval: float = DEFAULT_INTERVAL, *, above: int = PACE_ABOVE,
                  burst: int = PACE_BURST, spread: float = PACE_SPREAD
                  ) -> list[tuple[float, int, int]]:
    """When each burst of a frame of `count` packets leaves: (seconds after the first
    burst, first packet, end). A frame of at most `above` packets leaves at once; a bigger
    one (an IDR, 100+ packets) as bursts of equal size (at most `burst`), evenly spaced so
    the last leaves `spread` of a frame `interval` after the first: a receiver then needs
    room for `burst` packets, not the whole frame, between two of its reads."""
    if count <= above:
        return [(0.0, 0, count)]
    chunks = -(-count // burst)
    size = -(-count // chunks)
    chunks = -(-count // size)
    if chunks < 2:  # `above` below `burst`: nothing to split
        return [(0.0, 0, count)]
    step = spread * interval / (chunks - 1)
    return [(i * step, i * size, min(count, (i + 1) * size)) for i in range(chunks)]


def rtp_header(*, payload_type: int, timestamp: int, ssrc: int, extensions: HeaderExtensions,
               extensions_map: HeaderExtensionsMap) -> bytes:
    """A frame's RTP header as aiortc serializes it (sequence number 0, no marker): its
    packets' headers differ only in the first four bytes."""
    template = RtpPacket(payload_type=payload_type, timestamp=timestamp, ssrc=ssrc)
    template.extensions = extensions
    return template.serialize(extensions_map)


def rtp_packets(payloads: list[bytes], *, payload_type: int, sequence_number: int,
                timestamp: int, ssrc: int, extensions: HeaderExtensions,
                extensions_map: HeaderExtensionsMap, ends_frame: bool = True) -> list[bytes]:
    """A frame's RTP packets (before SRTP), the bytes aiortc's RtpPacket.serialize makes
    for each: the header is serialized once by aiortc, then only the marker and the
    sequence number change from packet to packet. The last one carries the marker if
    `ends_frame` (false for a paced frame's earlier bursts)."""
    header = rtp_header(payload_type=payload_type, timestamp=timestamp, ssrc=ssrc,
                        extensions=extensions, extensions_map=extensions_map)
    first_byte, rest = header[0], header[4:]
    pack_first = FIRST_WORD.pack
    last = len(payloads) - 1 if ends_frame else -1
    packets = []
    seq = sequence_number
    for i, payload in enumerate(payloads):
        packets.append(pack_first(first_byte, (0x80 if i == last else 0) | payload_type, seq)
                       + rest + payload)
        seq = (seq + 1) & 0xFFFF
    return packets


class SentFrame:
    """What it takes to send a frame's packets again: they differ only in seq and marker."""

    __slots__ = ("first_seq", "timestamp", "extensions", "payloads")

    def __init__(self, first_seq: int, timestamp: int, extensions, payloads: list[bytes]):
        self.first_seq = first_seq
        self.timestamp = timestamp
        self.extensions = extensions  # aiortc HeaderExtensions as first sent
        self.payloads = payloads


class LeanSender:
    """Runs in place of one RTCRtpSender's RTP loop (for a PassthroughTrack)."""

    def __init__(self, sender: RTCRtpSender, track: PassthroughTrack,
                 cache: PayloadCache = PAYLOADS, shared: bool = True,
                 pacing: bool | str = True, batch_send: bool = True) -> None:
        self.sender = sender
        # "auto": unpaced (the lowest latency: a paced IDR's last packet leaves up to 0.8 of
        # a frame later, and a browser's jitter buffer then delays every frame by that)
        # until the viewer reports a lost packet of a big frame (a NACK), then paced.
        self.pacing_mode = pacing
        self.pacing = pacing is True
        self.batch_send = batch_send and udp_batch.available()
        self.track = track
        self.cache = cache
        self.shared = shared
        self.rtp_origin = random32()  # the random RTP timestamp origin (camera clock map)
        self.packets = 0
        self.octets = 0  # payload bytes, as RTCP sender reports count them
        self.fallback_sends = 0  # packets that went through aioice (TURN, full socket)
        self.retransmitted = 0
        self.batch_calls = 0  # bursts (or BATCH_SLOTS of one) handed to sendmmsg
        self.batch_failures = 0  # sendmmsg errors (not a full buffer): that burst per packet
        self._history: deque[SentFrame] = deque(maxlen=HISTORY_FRAMES)
        self._last_live_ts: float | None = None
        self._internals: compat.SenderInternals | None = None
        self._payload_type = 0
        self._sock: socket.socket | None = None
        self._sock_pair = None
        self._batch: DatagramBatch | None = None  # slots for the current pair's peer
        self._slot_pointers: list = []  # each slot's address as SRTP's C call takes it
        compat.replace_rtp_loop(sender, self.run)
        compat.replace_retransmit(sender, self.retransmit)

    # --- the loop --------------------------------------------------------------------

    async def run(self, codec: RTCRtpCodecParameters) -> None:
        internals = self._internals = compat.sender_internals(self.sender)
        internals.started.set()
        self._payload_type = codec.payloadType
        try:
            await self._loop(internals, codec.payloadType)
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:  # like aiortc: the sender must still report it exited
            log.exception("viewer RTP loop failed")
        finally:
            self.track.stop()
            self._close_socket()
            internals.exited.set()

    async def _loop(self, internals: compat.SenderInternals, payload_type: int) -> None:
        sender = self.sender
        protect = compat.srtp_protect(sender)
        in_place = compat.srtp_in_place(sender) if self.batch_send else None
        loop = asyncio.get_running_loop()
        seq = random_sequence_number()
        while True:
            au, pts = await self.track.next_unit()
            if not compat.sender_enabled(sender):
                continue
            if sender.transport.state != "connected":
                raise ConnectionError("DTLS transport not connected")
            payloads = self.cache.payloads(au) if self.shared else h264_payloads(au.data)
            if not payloads:
                continue
            timestamp = (self.rtp_origin + pts) & 0xFFFFFFFF
            ntp = ntp_now()  # once per frame, not twice per packet
            count = len(payloads)
            # Live frames, and a backlog after a stall (which the track spaces by its
            # catch-up rate, but each IDR would still leave as one burst) are paced; a
            # replayed GOP is not: the viewer's first picture waits on it.
            interval = self._interval(au.timestamp, not self.track.last_was_replay)
            schedule = (pace_schedule(count, interval)
                        if self.pacing and not self.track.last_was_replay
                        else [(0.0, 0, count)])
            sent_octets = 0
            started = loop.time()
            gap = schedule[1][0] / 2 if len(schedule) > 1 else 0.0
            for offset, start, end in schedule:
                if offset:
                    # Due against the frame's start (a late wake-up does not push the rest
                    # later), but never less than half a step after the previous burst:
                    # catching up must not rebuild the burst pacing is there to split.
                    await asyncio.sleep(max(started + offset - loop.time(), gap))
                    ntp = ntp_now()
                extensions = HeaderExtensions(abs_send_time=(ntp >> 14) & 0x00FFFFFF,
                                              mid=internals.mid)
                if not start:
                    self._history.append(SentFrame(seq, timestamp, extensions, payloads))
                path = compat.ice_udp_pair(sender)
                if (self.batch_send and in_place is not None and path is not None
                        and not path[1].get_write_buffer_size()):
                    header = rtp_header(payload_type=payload_type, timestamp=timestamp,
                                        ssrc=internals.ssrc, extensions=extensions,
                                        extensions_map=internals.extensions)
                    sent_octets += self._send_batched(path, in_place, header, payloads,
                                                      start, end, seq)
                    continue
                datagrams = [protect(packet) for packet in rtp_packets(
                    payloads[start:end], payload_type=payload_type,
                    sequence_number=(seq + start) & 0xFFFF, timestamp=timestamp,
                    ssrc=internals.ssrc, extensions=extensions,
                    extensions_map=internals.extensions, ends_frame=end >= count)]
                await self._send(datagrams, path)
                sent_octets += sum(map(len, datagrams))
            seq = (seq + count) & 0xFFFF

            self.packets += len(payloads)
            self.octets += sum(map(len, payloads))
            compat.set_sender_counters(sender, ntp_timestamp=ntp, rtp_timestamp=timestamp,
                                       octets=self.octets, packets=self.packets)
            compat.count_dtls_sent(sender, count, sent_octets)

    def _interval(self, camera_ts: float, camera_frame: bool) -> float:
        """The camera's frame interval as its stamps show it (what a paced frame is spread
        over); `camera_frame` false for a replayed one (its stamp is the past)."""
        step = camera_ts - self._last_live_ts if self._last_live_ts is not None else 0.0
        self._last_live_ts = camera_ts if camera_frame else None
        return min(step, MAX_INTERVAL) if step > 0.001 else DEFAULT_INTERVAL

    # --- sending ---------------------------------------------------------------------

    async def _send(self, datagrams: list[bytes], path) -> None:
        """One sendto per datagram on the selected pair's UDP socket (`path`, from
        compat.ice_udp_pair); through aioice when the pair is relayed (None), through
        asyncio when the socket is full (it then queues, in order)."""
        if path is None:
            await self._send_via_ice(datagrams)
            return
        pair, transport, addr = path
        if transport.get_write_buffer_size():  # asyncio is queueing: keep the order
            for data in datagrams:
                transport.sendto(data, addr)
            return
        self._sendto_each(datagrams, self._socket_for(pair, transport), transport, addr)

    def _sendto_each(self, datagrams: list[bytes], sock: socket.socket,
                     transport: asyncio.DatagramTransport, addr) -> None:
        sendto = sock.sendto
        for n, data in enumerate(datagrams):
            try:
                sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                self.fallback_sends += len(datagrams) - n
                for rest in datagrams[n:]:
                    transport.sendto(rest, addr)
                return
            except OSError as exc:  # as asyncio would: report, drop this datagram
                log.debug("viewer sendto %s failed: %s", addr, exc)

    def _send_batched(self, path, srtp: compat.InPlaceSrtp, header: bytes,
                      payloads: list[bytes], start: int, end: int, seq: int) -> int:
        """Packets start..end-1 of a frame (its first numbered `seq`), each written into
        a slot behind `header`, SRTP-protected there, and sent BATCH_SLOTS at a time by
        sendmmsg; per packet no bytes object is made and no socket call is made. Returns
        the SRTP octets. Falls back to the per-packet path as _flush says."""
        pair, transport, addr = path
        sock = self._socket_for(pair, transport)
        batch = self._batch_for(sock, addr, srtp)
        last = len(payloads) - 1
        if batch is None:  # no sockaddr for this peer: per packet from now on
            self.batch_send = False
            datagrams = [srtp.protect_bytes(
                FIRST_WORD.pack(header[0], self._payload_type | (0x80 if k == last else 0),
                                (seq + k) & 0xFFFF) + header[4:] + payloads[k])
                for k in range(start, end)]
            self._sendto_each(datagrams, sock, transport, addr)
            return sum(map(len, datagrams))
        buffer, lengths, pointers = batch.buffer, batch.lengths, self._slot_pointers
        c_protect, handle, length, capacity = srtp.protect, srtp.handle, srtp.length, srtp.capacity
        pack_first = FIRST_WORD.pack_into
        first_byte, payload_type, size = header[0], self._payload_type, len(header)
        fd = sock.fileno()
        octets = slot = 0
        for k in range(start, end):
            payload = payloads[k]
            at = slot * SLOT_SIZE
            n = size + len(payload)
            if n > capacity:
                srtp.protect_bytes(header + payload)  # raises pylibsrtp's "packet is too long"
            buffer[at:at + size] = header
            pack_first(buffer, at, first_byte, payload_type | 0x80 if k == last else payload_type,
                       (seq + k) & 0xFFFF)
            buffer[at + size:at + n] = payload
            length[0] = n
            if c_protect(handle, pointers[slot], length):
                # pylibsrtp's own call on the clear packet (the slot may be half done):
                # it raises libsrtp's error, or returns the packet protected after all.
                data = srtp.protect_bytes(buffer[at:at + 4].tobytes() + header[4:] + payload)
                buffer[at:at + len(data)] = data
                length[0] = len(data)
            n = length[0]
            lengths[slot] = n
            octets += n
            slot += 1
            if slot == BATCH_SLOTS:
                self._flush(batch, slot, fd, sock, transport, addr)
                slot = 0
        if slot:
            self._flush(batch, slot, fd, sock, transport, addr)
        return octets

    def _flush(self, batch: DatagramBatch, count: int, fd: int, sock: socket.socket,
               transport: asyncio.DatagramTransport, addr) -> None:
        """Send the batch's first `count` slots. What a full socket buffer leaves goes to
        asyncio's queue, in order (as _sendto_each does; counted in fallback_sends); after
        any other sendmmsg error the rest goes per packet (_sendto_each: each datagram's
        own error dropped and logged, as asyncio would)."""
        sent, queued, error = udp_batch.send_or_queue(batch, count, fd, transport, addr)
        self.batch_calls += 1
        self.fallback_sends += queued
        if error is not None:
            self.batch_failures += 1
            if error.errno in (errno.ENOSYS, errno.EPERM, errno.EOPNOTSUPP):
                self.batch_send = False  # not for this process: per packet from now on
            log.debug("viewer sendmmsg to %s failed: %s; sending per packet", addr, error)
            self._sendto_each([batch.datagram(i) for i in range(sent, count)], sock,
                              transport, addr)

    def _batch_for(self, sock: socket.socket, addr, srtp: compat.InPlaceSrtp
                   ) -> DatagramBatch | None:
        """The slots for this peer (made again when the selected pair's peer changes)."""
        batch = self._batch
        if batch is not None and batch.peer == addr:
            return batch
        try:
            batch = DatagramBatch(addr, sock.family, BATCH_SLOTS)
        except (ValueError, OSError) as exc:
            log.warning("viewer peer %s: no batched sends (%s)", addr, exc)
            return None
        self._batch = batch
        self._slot_pointers = [srtp.pointer(batch.address + i * SLOT_SIZE)
                               for i in range(BATCH_SLOTS)]
        return batch

    async def _send_via_ice(self, datagrams: list[bytes]) -> None:
        send = compat.ice_send(self.sender)
        self.fallback_sends += len(datagrams)
        for data in datagrams:
            await send(data)

    def _socket_for(self, pair, transport: asyncio.DatagramTransport) -> socket.socket:
        """A socket object of our own on the pair's UDP socket (a dup of its descriptor:
        asyncio does not hand out its own), so a send is one C call."""
        if self._sock is None or self._sock_pair is not pair:
            self._close_socket()
            fd = transport.get_extra_info("socket").fileno()
            self._sock = socket.socket(fileno=os.dup(fd))
            self._sock_pair = pair
        return self._sock

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._sock_pair = None

    # --- NACK ------------------------------------------------------------------------

    def _lookup(self, seq: int) -> tuple[SentFrame, int] | None:
        for frame in reversed(self._history):
            index = (seq - frame.first_seq) & 0xFFFF
            if index < len(frame.payloads):
                return frame, index
        return None

    async def retransmit(self, sequence_number: int) -> None:
        """Send a packet the viewer reported lost again (as RTX when negotiated), as
        aiortc's own _retransmit does, from the frames we sent recently."""
        found = self._lookup(sequence_number)
        internals = self._internals
        if found is None or internals is None:
            return
        frame, index = found
        if (self.pacing_mode == "auto" and not self.pacing
                and len(frame.payloads) > PACE_ABOVE):
            self.pacing = True  # a big frame's burst overflowed something on the way
            log.info("viewer lost packet %d of a %d-packet frame: its big frames are paced "
                     "from now on", index, len(frame.payloads))
        packet = RtpPacket(payload_type=self._payload_type,
                           marker=int(index == len(frame.payloads) - 1),
                           sequence_number=sequence_number, timestamp=frame.timestamp,
                           ssrc=internals.ssrc, payload=frame.payloads[index])
        packet.extensions = frame.extensions
        if internals.rtx_payload_type is not None:
            packet = wrap_rtx(packet, payload_type=internals.rtx_payload_type,
                              sequence_number=compat.next_rtx_sequence_number(self.sender),
                              ssrc=internals.rtx_ssrc)
        self.retransmitted += 1
        await compat.send_rtp(self.sender, packet.serialize(internals.extensions))

