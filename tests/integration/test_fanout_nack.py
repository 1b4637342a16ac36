"""NACK -> retransmission on the lean sender, with real aiortc viewers on loopback.

The viewer records every RTP packet as it arrives (before aiortc unwraps RTX),
then sends a real RTCP NACK for a packet it did get: the server must send that
packet again as RTX (original sequence number in front, same payload, same
RTP timestamp), as aiortc's own sender would.
"""

from __future__ import annotations

import asyncio
import struct
import time

from streaming.media.webrtc.aiortc_compat import h264_payloads
from tests.support.inprocess_fanout import access_unit, fanout, wait_received


def record_rtp(client) -> list:
    """Every RTP packet the client's receiver gets, as aiortc parsed it."""
    receiver = client.pc.getReceivers()[0]
    seen: list = []
    handle = receiver._handle_rtp_packet

    async def recording(packet, arrival_time_ms):
        seen.append(packet)
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = recording
    return seen


async def run() -> None:
    async with fanout(1, replay_gop=False) as f:
        client = f.clients[0]
        seen = record_rtp(client)
        for n in range(10):
            f.hub.publish(access_unit(n))
            await asyncio.sleep(1 / 30)
        await wait_received(f.clients, 10)
        session = next(iter(f.viewers.sessions.values()))
        assert session.sender is not None  # the lean sender is on by default
        media = [p for p in seen if p.ssrc == session.sender.sender._ssrc]
        assert len(media) >= sum(len(h264_payloads(access_unit(n).data)) for n in range(9))
        wanted = media[len(media) // 2]  # a P-frame packet a few frames back
        receiver = client.pc.getReceivers()[0]
        before = len(seen)
        await f.in_clients(receiver._send_rtcp_nack(wanted.ssrc, [wanted.sequence_number]))
        deadline = time.monotonic() + 10
        while True:
            rtx = [p for p in seen[before:] if p.ssrc != wanted.ssrc]
            if rtx:
                break
            assert time.monotonic() < deadline, "no retransmission"
            await asyncio.sleep(0.02)
        packet = rtx[0]
        assert packet.payload_type != wanted.payload_type  # RTX, as negotiated
        assert struct.unpack("!H", packet.payload[:2])[0] == wanted.sequence_number
        assert packet.payload[2:] == wanted.payload
        assert packet.timestamp == wanted.timestamp
        assert packet.marker == wanted.marker
        assert session.sender.retransmitted == 1


def test_a_nacked_packet_is_sent_again_as_rtx():
    asyncio.run(run())
