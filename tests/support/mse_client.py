"""A WebSocket + MSE viewer for tests and benchmarks: WS /ws/cameras/{camera}/mse/.

Keeps the init message, the init segment and every fragment, acknowledges like the
page does (or not at all, to play a stalled browser), and decodes what it got with PyAV.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import struct
import time

import av
import websockets

from tests.support.processes import Client

ACK_EVERY = 5  # like mse_player.js


def mse_url(base: str, camera: str = "default", token: str | None = None) -> str:
    url = base.replace("http://", "ws://") + f"/ws/cameras/{camera}/mse/"
    return url + (f"?token={token}" if token else "")


def fragment_time(fragment: bytes) -> int:
    """baseMediaDecodeTime (90 kHz) of one of our moof+mdat fragments."""
    at = fragment.find(b"tfdt")
    version = fragment[at + 4]
    return (struct.unpack_from(">Q", fragment, at + 8)[0] if version == 1
            else struct.unpack_from(">I", fragment, at + 8)[0])


def fragment_is_sync(fragment: bytes) -> bool:
    at = fragment.find(b"trun")
    flags = struct.unpack_from(">I", fragment, at + 4 + 4 + 4 + 4 + 4 + 4)[0]
    return not flags & 0x00010000


class MseClient:
    def __init__(self, base: str, token: str | None = None, *, camera: str = "default",
                 cookies: Client | None = None, ack: bool = True, keep: bool = True) -> None:
        self.url = mse_url(base, camera, token)
        self.origin = base
        self.cookies = cookies
        self.ack = ack
        self.keep = keep  # False: count fragments and bytes only (benchmarks)
        self.count = 0
        self.inits = 0
        self.bytes = 0
        self.texts: list[dict] = []  # every text message
        self.init: dict | None = None
        self.init_segment: bytes | None = None
        self.fragments: list[bytes] = []
        self.received_at: list[float] = []  # time.monotonic() of each fragment
        self.seq = 0
        self.opened_at = 0.0
        self.close_code: int | None = None
        self._ws = None
        self._reader: asyncio.Task | None = None

    async def connect(self) -> MseClient:
        headers = {}
        if self.cookies is not None:
            headers = {"Cookie": "; ".join(f"{c.name}={c.value}" for c in self.cookies.jar),
                       "Origin": self.origin}
        self.opened_at = time.monotonic()
        self._ws = await websockets.connect(self.url, additional_headers=headers,
                                            max_size=None)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        expect_init = False
        try:
            async for message in self._ws:
                if isinstance(message, str):
                    text = json.loads(message)
                    self.texts.append(text)
                    if text["type"] == "init":
                        self.init, self.seq = text, text["seq"] - 1
                        self.inits += 1
                        expect_init = True
                    continue
                self.seq += 1
                self.bytes += len(message)
                if expect_init:
                    expect_init = False
                    if self.init_segment is None:  # a new stream's init is only counted
                        self.init_segment = message
                else:
                    self.count += 1
                    if self.keep:
                        self.fragments.append(message)
                        self.received_at.append(time.monotonic())
                if self.ack and self.seq % ACK_EVERY == 0:
                    await self.send({"type": "ack", "seq": self.seq})
        except websockets.ConnectionClosed:
            pass
        self.close_code = self._ws.close_code

    async def send(self, message: dict | str) -> None:
        await self._ws.send(message if isinstance(message, str) else json.dumps(message))

    async def wait_fragments(self, n: int, timeout: float = 20.0) -> None:
        async def wait() -> None:
            while len(self.fragments) < n:
                if self._reader.done():
                    raise AssertionError(f"socket closed ({self.close_code}) after "
                                         f"{len(self.fragments)} fragments: {self.texts[-3:]}")
                await asyncio.sleep(0.02)
        await asyncio.wait_for(wait(), timeout)

    async def wait_text(self, kind: str, timeout: float = 10.0) -> dict:
        async def wait() -> dict:
            while True:
                for text in self.texts:
                    if text["type"] in (kind, "error"):
                        return text
                if self._reader.done():
                    raise AssertionError(f"socket closed ({self.close_code}): {self.texts}")
                await asyncio.sleep(0.02)
        return await asyncio.wait_for(wait(), timeout)

    async def ended(self, timeout: float = 10.0) -> int | None:
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            with contextlib.suppress(Exception):
                await self._reader

    def mp4(self) -> bytes:
        return (self.init_segment or b"") + b"".join(self.fragments)

    def decode(self) -> list[av.VideoFrame]:
        """Every frame of what arrived, decoded by FFmpeg; raises on a broken stream."""
        with av.open(io.BytesIO(self.mp4()), "r", format="mp4") as container:
            return list(container.decode(video=0))
