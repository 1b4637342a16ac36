"""A slow send path cannot sneak back: Python function calls per RTP packet sent.

Times nothing. The server side (hub -> viewer sessions -> RTP/SRTP/UDP) runs
on this thread's event loop under cProfile; the viewers are real receive-only
aiortc peers on loopback in another thread (cProfile sees only this one),
signaled in-process. A fixed sequence of access units (one ~150 KB IDR and
~35 KB P-frames, 1080p30 8 Mbit/s sizes) goes to a fixed number of viewers,
and the profile's call count divided by the packets sent must stay under
CALLS_PER_PACKET. The packet count is what the payloads make (the same for
any send path), so a path that does more per packet shows up here.

Figures when the bound was set (2026-12-04, 4 viewers, 60 frames): aiortc's
own per-packet loop 64.3 calls/packet (PETCAM_LEAN_SENDER off); the lean
sender 18.5 with pylibsrtp's Session.protect, 11.6 calling srtp_protect directly,
11.9 with IDR pacing on (the default: an asyncio sleep and loop turn per burst of
32 packets; 15.6 with bursts of 16, which paced every P-frame too). 2026-12-04 later:
13.1 with an IDR spread over 0.8 of a frame interval in bursts of at most 16 (P-frames
of up to 32 packets still leave at once). 2026-12-04 night: 9.7 with a burst's packets
written into per-viewer slots, SRTP-protected in place and sent by one sendmmsg
(PETCAM_BATCH_SEND, the default; 12.6 with it off). The run checks that the batched
path is the one measured (ctypes' call of sendmmsg is not a Python call cProfile
counts, nor is its syscall: the budget is about Python work, not syscalls).
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats

from streaming.media.webrtc.aiortc_compat import h264_payloads
from tests.support.inprocess_fanout import access_unit, fanout, wait_received

VIEWERS = 4
FRAMES = 60  # two GOPs at 30 fps
CALLS_PER_PACKET = 11  # see the module docstring; lower it when the path gets leaner


async def run_fanout(lean: bool = True) -> tuple[int, int]:
    """(profiled calls, RTP packets sent) for FRAMES frames to VIEWERS viewers."""
    async with fanout(VIEWERS, replay_gop=False, lean_sender=lean) as f:
        # Warm up (DTLS done, first frames through) outside the profile.
        for n in range(30):
            f.hub.publish(access_unit(n))
            await asyncio.sleep(1 / 30)
        await wait_received(f.clients, 30)

        units = [access_unit(30 + n) for n in range(FRAMES)]
        packets = VIEWERS * sum(len(h264_payloads(au.data)) for au in units)
        profile = cProfile.Profile()
        profile.enable()
        for au in units:
            f.hub.publish(au)
            await asyncio.sleep(1 / 30)
        await wait_received(f.clients, 30 + FRAMES)
        profile.disable()
        sent = sum(s.track.frames_sent for s in f.viewers.sessions.values())
        assert sent == VIEWERS * (30 + FRAMES)
        if lean:  # the path measured is the default one: bursts through sendmmsg
            assert all(s.sender.batch_calls >= 30 + FRAMES and not s.sender.batch_failures
                       for s in f.viewers.sessions.values())
        return pstats.Stats(profile).total_calls, packets


def test_python_calls_per_rtp_packet_stay_under_the_budget():
    calls, packets = asyncio.run(run_fanout())
    per_packet = calls / packets
    print(f"{calls} calls for {packets} RTP packets: {per_packet:.1f} per packet")
    assert packets > VIEWERS * FRAMES * 20  # the frames really are multi-packet
    assert per_packet < CALLS_PER_PACKET, (
        f"{per_packet:.1f} Python calls per RTP packet (budget {CALLS_PER_PACKET}): "
        "something on the per-packet send path got slower")


def test_the_budget_catches_the_per_packet_loop():
    """The guard can fail: aiortc's own per-packet loop is far over the budget."""
    calls, packets = asyncio.run(run_fanout(lean=False))
    print(f"aiortc's loop: {calls / packets:.1f} calls per packet")
    assert calls / packets > 2 * CALLS_PER_PACKET
