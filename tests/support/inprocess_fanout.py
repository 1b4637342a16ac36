"""A camera hub and its viewer sessions on this thread's loop, with real receive-only aiortc
viewers on loopback in a thread of their own, signaled in-process (no site, no HTTP).

The server side is alone on its thread, so cProfile or a hook there sees only the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from streaming.media.hub import Hub
from streaming.media.types import AccessUnit
from streaming.media.webrtc.viewers import ViewerLimits, Viewers
from tests.support.webrtc_client import HttpReply, LoopThread, WebRtcClient

SPS = bytes.fromhex("000000016764001fac2b402802dd80a8101010140000030004000003007b")
PPS = bytes.fromhex("0000000168ee3cb0")


def access_unit(n: int, gop: int = 30) -> AccessUnit:
    """Frame n: 1080p30 8 Mbit/s sizes (IDR ~150 KB every `gop` frames, P ~35 KB) with the
    NAL structure of a real camera; the body is of no interest (viewers do not decode) and
    has no zero bytes, so no start code appears inside."""
    idr = n % gop == 0
    body = bytes(range(1, 256)) * ((150_000 if idr else 35_000) // 255)
    if idr:
        return AccessUnit(SPS + PPS + b"\0\0\0\1\x65" + body, True, n + 1, time.monotonic(),
                          (7, 8, 5))
    return AccessUnit(b"\0\0\0\1\x41" + body, False, n + 1, time.monotonic(), (1,))


class InProcessViewer(WebRtcClient):
    """A WebRtcClient whose offer goes straight to the server's Viewers, on its loop."""

    def __init__(self, viewers: Viewers, server_loop: asyncio.AbstractEventLoop,
                 **kw) -> None:
        super().__init__("http://unused", None, **kw)
        self._viewers = viewers
        self._server_loop = server_loop

    async def send_offer(self, sdp: str) -> HttpReply:
        future = asyncio.run_coroutine_threadsafe(self._viewers.open(sdp, None),
                                                  self._server_loop)
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


@dataclass
class Fanout:
    hub: Hub
    viewers: Viewers
    clients: list[InProcessViewer]
    clients_loop: LoopThread

    def in_clients(self, coro, timeout: float = 30):
        """Run a coroutine on the viewers' loop; await its result from the server's."""
        return asyncio.wait_for(asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(coro, self.clients_loop.loop)), timeout)


@contextlib.asynccontextmanager
async def fanout(n_viewers: int, **limits) -> AsyncIterator[Fanout]:
    hub = Hub("inprocess")
    # All viewers are one (anonymous) owner here: no per-user cap.
    viewers = Viewers("inprocess", hub, ViewerLimits(max_viewers=n_viewers, max_per_user=0,
                                                     **limits))
    viewers.start()
    clients_loop = LoopThread()
    loop = asyncio.get_running_loop()
    setup = Fanout(hub, viewers, [], clients_loop)
    try:
        async def connect_all() -> list[InProcessViewer]:
            made = [InProcessViewer(viewers, loop, name=f"v{i}") for i in range(n_viewers)]
            await asyncio.gather(*(c.connect() for c in made))
            return made

        setup.clients = await setup.in_clients(connect_all(), 60)
        yield setup
    finally:
        for c in setup.clients:
            asyncio.run_coroutine_threadsafe(c.close(delete=False), clients_loop.loop).result(20)
        clients_loop.close()
        await viewers.stop()
