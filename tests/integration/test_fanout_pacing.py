"""IDR pacing on the real send path: a live IDR leaves as many small bursts, not one.

Times nothing: a real aiortc viewer on loopback, the lean sender's sends recorded
as they are handed to the kernel (how many datagrams each sendmmsg call took, or,
with PETCAM_BATCH_SEND off, each list handed to the sendto loop). Paced, a ~125-packet
IDR must go out in bursts of at most PACE_BURST (a 208 KiB receive buffer holds
~90 datagrams) while P-frames still go out at once; unpaced it is one burst of
the whole frame, which the same check refuses (so it can fail). The spacing of
the bursts over the frame interval is pace_schedule's, tested in
tests/unit/test_fanout_packets.py.
"""

from __future__ import annotations

import asyncio

import pytest

from streaming.media.webrtc.aiortc_compat import h264_payloads
from streaming.media.webrtc.fanout import BATCH_SLOTS, PACE_BURST
from streaming.media.webrtc.udp_batch import DatagramBatch
from tests.support.inprocess_fanout import access_unit, fanout, wait_received

FRAMES = 4  # an IDR then P-frames


async def sends_per_frame(pacing: bool, batch_send: bool) -> list[list[int]]:
    """Datagrams per send, grouped by frame, for FRAMES live frames (GOP not replayed):
    per sendmmsg call when batched, per list handed to the sendto loop when not."""
    async with fanout(1, replay_gop=False, pacing=pacing, batch_send=batch_send) as f:
        session = next(iter(f.viewers.sessions.values()))
        sender = session.sender
        assert sender is not None
        batches: list[tuple[int, int]] = []  # (frames the track handed over, datagrams)
        send, batch_send_call = sender._send, DatagramBatch.send

        async def recording(datagrams: list[bytes], path) -> None:
            batches.append((session.track.frames_sent, len(datagrams)))
            await send(datagrams, path)

        def recording_batch(batch, fd: int, count: int, first: int = 0) -> int:
            took = batch_send_call(batch, fd, count, first)
            batches.append((session.track.frames_sent, took))
            return took

        sender._send = recording
        DatagramBatch.send = recording_batch
        try:
            for n in range(FRAMES):
                f.hub.publish(access_unit(n))
                await asyncio.sleep(1 / 30)
            await wait_received(f.clients, FRAMES)
        finally:
            DatagramBatch.send = batch_send_call
        assert sender.packets == sum(len(h264_payloads(access_unit(n).data))
                                     for n in range(FRAMES))
        assert (sender.batch_calls > 0) == batch_send  # the path under test was taken
        return [[size for frame, size in batches if frame == n + 1] for n in range(FRAMES)]


def idr_is_paced(frames: list[list[int]]) -> bool:
    idr_packets = len(h264_payloads(access_unit(0).data))
    idr = frames[0]
    return (sum(idr) == idr_packets and len(idr) >= idr_packets // PACE_BURST
            and max(idr) <= PACE_BURST)


@pytest.mark.parametrize("batch_send", [True, False], ids=["sendmmsg", "sendto"])
def test_a_live_idr_leaves_in_bursts_of_at_most_pace_burst(batch_send):
    frames = asyncio.run(sends_per_frame(pacing=True, batch_send=batch_send))
    assert len(h264_payloads(access_unit(0).data)) > 100  # a real IDR's size (~150 KB)
    assert idr_is_paced(frames), frames[0]
    # P-frames (~30 packets) are not slowed down: one send each.
    assert all(len(sends) == 1 for sends in frames[1:]), frames


@pytest.mark.parametrize("batch_send", [True, False], ids=["sendmmsg", "sendto"])
def test_unpaced_the_idr_is_one_burst(batch_send):
    """PETCAM_PACING off: the check above refuses the send pattern (batched, the IDR
    leaves in sendmmsg calls of BATCH_SLOTS back to back)."""
    frames = asyncio.run(sends_per_frame(pacing=False, batch_send=batch_send))
    idr_packets = len(h264_payloads(access_unit(0).data))
    if batch_send:
        assert frames[0] == [min(BATCH_SLOTS, idr_packets - i)
                             for i in range(0, idr_packets, BATCH_SLOTS)]
    else:
        assert frames[0] == [idr_packets]
    assert not idr_is_paced(frames)


def test_auto_paces_a_viewer_only_after_it_lost_a_packet_of_a_big_frame():
    """PETCAM_PACING=auto (the default): IDRs leave at once (the lowest latency) until the
    viewer NACKs a packet of one; a lost P-frame packet does not count. From then on its
    IDRs are paced. (Bursts as the sender cuts a frame: one of the whole frame unpaced,
    several of at most PACE_BURST paced.)"""
    gop = 4

    async def run() -> tuple[list[int], list[int], bool, dict]:
        async with fanout(1, replay_gop=False, pacing="auto") as f:
            session = next(iter(f.viewers.sessions.values()))
            sender = session.sender
            assert sender is not None
            assert (session.stats()["paced"], session.stats()["retransmitted"]) == (False, 0)
            bursts: list[tuple[int, int]] = []
            send_batched = sender._send_batched

            def record(path, srtp, header, payloads, start, end, seq):
                bursts.append((sender.track.frames_sent, end - start))
                return send_batched(path, srtp, header, payloads, start, end, seq)

            sender._send_batched = record
            for n in range(gop):  # an IDR and P-frames: nothing lost
                f.hub.publish(access_unit(n, gop))
                await asyncio.sleep(1 / 30)
            await wait_received(f.clients, gop)
            # NACKs as a viewer that lost them would send (this one has every packet: the
            # answers are kept off the wire, an old packet would upset its jitter buffer).
            answered: list[bytes] = []

            async def keep(_sender, packet: bytes) -> None:
                answered.append(packet)

            with pytest.MonkeyPatch.context() as mp:
                mp.setattr("streaming.media.webrtc.fanout.compat.send_rtp", keep)
                await sender.retransmit(sender._history[-1].first_seq)  # a P-frame's
                p_frame_switched = sender.pacing
                idr = next(fr for fr in sender._history if len(fr.payloads) > 100)
                await sender.retransmit((idr.first_seq + 7) & 0xFFFF)
            assert len(answered) == 2  # both were answered
            for n in range(gop, 2 * gop):  # the next IDR
                f.hub.publish(access_unit(n, gop))
                await asyncio.sleep(1 / 30)
            await wait_received(f.clients, 2 * gop)
            return ([size for fr, size in bursts if fr == 1],
                    [size for fr, size in bursts if fr == gop + 1], p_frame_switched,
                    session.stats())

    before, after, p_frame_switched, stats = asyncio.run(run())
    assert (stats["paced"], stats["retransmitted"]) == (True, 2)  # what the status shows
    idr_packets = len(h264_payloads(access_unit(0).data))
    assert not p_frame_switched
    assert before == [idr_packets], before  # at once
    assert sum(after) == idr_packets and max(after) <= PACE_BURST, after  # paced
