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
sender 18.5, of which ~10 are pylibsrtp's Python wrapper around srtp_protect.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import time

from streaming.media.hub import Hub
from streaming.media.types import AccessUnit
from streaming.media.webrtc.aiortc_compat import h264_payloads
from streaming.media.webrtc.viewers import ViewerLimits, Viewers
from tests.support.webrtc_client import HttpReply, LoopThread, WebRtcClient

VIEWERS = 4
FRAMES = 60  # two GOPs at 30 fps
CALLS_PER_PACKET = 25  # see the module docstring; lower it when the path gets leaner

SPS = bytes.fromhex("000000016764001fac2b402802dd80a8101010140000030004000003007b")
PPS = bytes.fromhex("0000000168ee3cb0")


def access_unit(n: int) -> AccessUnit:
    """Frame n of a 30-frame GOP: NAL structure of a real camera, body of no interest
    (the viewers do not decode; no zero bytes, so no start code appears inside)."""
    idr = n % 30 == 0
    body = bytes(range(1, 256)) * ((150_000 if idr else 35_000) // 255)
    if idr:
        data = SPS + PPS + b"\0\0\0\1\x65" + body
        types = (7, 8, 5)
    else:
        data = b"\0\0\0\1\x41" + body
        types = (1,)
    return AccessUnit(data, idr, n + 1, time.monotonic(), types)


class InProcessViewer(WebRtcClient):
    """A WebRtcClient whose offer goes straight to the server's Viewers, on its loop."""

    def __init__(self, viewers: Viewers, server_loop: asyncio.AbstractEventLoop,
                 **kw) -> None:
        super().__init__("http://unused", None, **kw)
        self._viewers = viewers
        self._server_loop = server_loop

    async def send_offer(self, sdp: str) -> HttpReply:
        future = asyncio.run_coroutine_threadsafe(
            self._viewers.open(sdp, None), self._server_loop)
        session = await asyncio.wrap_future(future)
        body = {"type": "answer", "sdp": session.pc.localDescription.sdp,
                "session": session.id}
        return HttpReply(200, {}, json.dumps(body).encode())


async def wait_received(clients: list[InProcessViewer], n: int, timeout: float = 60) -> None:
    """Until every viewer reassembled the first n frames. aiortc's jitter buffer hands a
    frame over when the next one's first packet arrives, so the newest is still inside."""
    deadline = time.monotonic() + timeout
    while min(len(c.frames) for c in clients) < n - 1:
        assert time.monotonic() < deadline, [len(c.frames) for c in clients]
        await asyncio.sleep(0.05)


async def run_fanout(lean: bool = True) -> tuple[int, int]:
    """(profiled calls, RTP packets sent) for FRAMES frames to VIEWERS viewers."""
    hub = Hub("budget")
    viewers = Viewers("budget", hub, ViewerLimits(max_viewers=VIEWERS, replay_gop=False,
                                                  lean_sender=lean))
    viewers.start()
    clients_loop = LoopThread()
    loop = asyncio.get_running_loop()
    clients: list[InProcessViewer] = []
    try:
        async def connect_all() -> list[InProcessViewer]:
            made = [InProcessViewer(viewers, loop, name=f"v{i}") for i in range(VIEWERS)]
            await asyncio.gather(*(c.connect() for c in made))
            return made

        clients = await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(connect_all(), clients_loop.loop))
        # Warm up (DTLS done, first frames through) outside the profile.
        for n in range(30):
            hub.publish(access_unit(n))
            await asyncio.sleep(1 / 30)
        await wait_received(clients, 30)

        units = [access_unit(30 + n) for n in range(FRAMES)]
        packets = VIEWERS * sum(len(h264_payloads(au.data)) for au in units)
        profile = cProfile.Profile()
        profile.enable()
        for au in units:
            hub.publish(au)
            await asyncio.sleep(1 / 30)
        await wait_received(clients, 30 + FRAMES)
        profile.disable()
        sent = sum(s.track.frames_sent for s in viewers.sessions.values())
        assert sent == VIEWERS * (30 + FRAMES)
        return pstats.Stats(profile).total_calls, packets
    finally:
        for c in clients:
            asyncio.run_coroutine_threadsafe(c.close(delete=False), clients_loop.loop).result(20)
        clients_loop.close()
        await viewers.stop()


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
