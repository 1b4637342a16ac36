"""Batched sends (PETCAM_BATCH_SEND) when something fails, with a real aiortc viewer.

A real receive-only aiortc peer on loopback records every RTP packet it decrypts.
When sendmmsg fails with an error other than a full buffer, that burst goes per
packet and the viewer still gets every packet, in order; when libsrtp's in-place
call reports an error for a packet, pylibsrtp's own call protects it (or raises)
and the viewer gets it, never a packet in clear. The failure is injected by
wrapping the real C calls (the rest of the path stays real).
"""

from __future__ import annotations

import asyncio
import errno

from streaming.media.webrtc import aiortc_compat
from streaming.media.webrtc.aiortc_compat import h264_payloads
from streaming.media.webrtc.udp_batch import DatagramBatch
from tests.integration.test_fanout_nack import record_rtp
from tests.support.inprocess_fanout import access_unit, fanout, wait_received

FRAMES = 6  # an IDR then P-frames


async def send_frames(f) -> None:
    for n in range(FRAMES):
        f.hub.publish(access_unit(n))
        await asyncio.sleep(1 / 30)
    await wait_received(f.clients, FRAMES)


def media_sequence(seen: list, ssrc: int) -> list[int]:
    return [p.sequence_number for p in seen if p.ssrc == ssrc]


def expected_packets() -> int:
    return sum(len(h264_payloads(access_unit(n).data)) for n in range(FRAMES - 1))


def assert_in_order_without_gaps(seqs: list[int]) -> None:
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False)), seqs


async def run_with_failing_sendmmsg() -> None:
    real_send = DatagramBatch.send
    failures = {"left": 3}

    def failing(batch, fd: int, count: int, first: int = 0) -> int:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(errno.EINVAL, "injected")
        return real_send(batch, fd, count, first)

    DatagramBatch.send = failing
    try:
        async with fanout(1, replay_gop=False) as f:
            seen = record_rtp(f.clients[0])
            sender = next(iter(f.viewers.sessions.values())).sender
            await send_frames(f)
            seqs = media_sequence(seen, sender.sender._ssrc)
            assert sender.batch_failures == 3  # those bursts went per packet
            assert sender.batch_send  # EINVAL is not "no sendmmsg here": stays on
            assert sender.batch_calls > 3
    finally:
        DatagramBatch.send = real_send
    assert len(seqs) >= expected_packets()
    assert_in_order_without_gaps(seqs)


def test_a_sendmmsg_error_sends_that_burst_per_packet():
    asyncio.run(run_with_failing_sendmmsg())


async def run_with_failing_srtp() -> None:
    real = aiortc_compat.srtp_in_place
    calls = {"n": 0}

    def failing_in_place(sender):
        srtp = real(sender)
        c_protect = srtp.protect

        def protect(handle, pointer, length) -> int:
            calls["n"] += 1
            if calls["n"] in (5, 40):  # mid-IDR, and in a later frame
                return 1  # libsrtp's srtp_err_status_fail, buffer untouched
            return c_protect(handle, pointer, length)

        srtp.protect = protect
        return srtp

    aiortc_compat.srtp_in_place = failing_in_place
    try:
        async with fanout(1, replay_gop=False) as f:
            seen = record_rtp(f.clients[0])
            sender = next(iter(f.viewers.sessions.values())).sender
            await send_frames(f)
            seqs = media_sequence(seen, sender.sender._ssrc)
    finally:
        aiortc_compat.srtp_in_place = real
    assert calls["n"] > 40
    # aiortc only hands over packets that decrypted: all of them arrived protected.
    assert len(seqs) >= expected_packets()
    assert_in_order_without_gaps(seqs)


def test_an_srtp_error_on_one_packet_protects_it_the_slow_way():
    asyncio.run(run_with_failing_srtp())
