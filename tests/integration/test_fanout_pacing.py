"""IDR pacing on the real send path: a live IDR leaves as many small bursts, not one.

Times nothing: a real aiortc viewer on loopback, the lean sender's sends recorded
as they are handed to the socket (how many datagrams each). Paced, a ~125-packet
IDR must go out in bursts of at most PACE_BURST (a 208 KiB receive buffer holds
~90 datagrams) while P-frames still go out at once; unpaced it is one burst of
the whole frame, which the same check refuses (so it can fail). The spacing of
the bursts over the frame interval is pace_schedule's, tested in
tests/unit/test_fanout_packets.py.
"""

from __future__ import annotations

import asyncio

from streaming.media.webrtc.aiortc_compat import h264_payloads
from streaming.media.webrtc.fanout import PACE_BURST
from tests.support.inprocess_fanout import access_unit, fanout, wait_received

FRAMES = 4  # an IDR then P-frames


async def sends_per_frame(pacing: bool) -> list[list[int]]:
    """Datagrams per send, grouped by frame, for FRAMES live frames (GOP not replayed)."""
    async with fanout(1, replay_gop=False, pacing=pacing) as f:
        session = next(iter(f.viewers.sessions.values()))
        sender = session.sender
        assert sender is not None
        batches: list[tuple[int, int]] = []  # (frames the track handed over, datagrams)
        send = sender._send

        async def recording(datagrams: list[bytes]) -> None:
            batches.append((session.track.frames_sent, len(datagrams)))
            await send(datagrams)

        sender._send = recording
        for n in range(FRAMES):
            f.hub.publish(access_unit(n))
            await asyncio.sleep(1 / 30)
        await wait_received(f.clients, FRAMES)
        assert sender.packets == sum(len(h264_payloads(access_unit(n).data))
                                     for n in range(FRAMES))
        return [[size for frame, size in batches if frame == n + 1] for n in range(FRAMES)]


def idr_is_paced(frames: list[list[int]]) -> bool:
    idr_packets = len(h264_payloads(access_unit(0).data))
    idr = frames[0]
    return (sum(idr) == idr_packets and len(idr) >= idr_packets // PACE_BURST
            and max(idr) <= PACE_BURST)


def test_a_live_idr_leaves_in_bursts_of_at_most_pace_burst():
    frames = asyncio.run(sends_per_frame(pacing=True))
    assert len(h264_payloads(access_unit(0).data)) > 100  # a real IDR's size (~150 KB)
    assert idr_is_paced(frames), frames[0]
    # P-frames (~30 packets) are not slowed down: one send each.
    assert all(len(sends) == 1 for sends in frames[1:]), frames


def test_unpaced_the_idr_is_one_burst():
    """PETCAM_PACING off: the check above refuses the send pattern."""
    frames = asyncio.run(sends_per_frame(pacing=False))
    assert frames[0] == [len(h264_payloads(access_unit(0).data))]
    assert not idr_is_paced(frames)
