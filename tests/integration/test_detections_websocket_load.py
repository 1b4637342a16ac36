"""50 WebSocket clients get every detection at 30 Hz; one that stops reading is dropped alone,
and is never sent a backlog meanwhile.

A real site (`manage.py serve`, the embedded worker and the in-memory channel
layer) and the simulator writing the pet's box for every frame
(--detect-fps 30). The clients are the `websockets` library with token auth.
Messages carry the frame's CLOCK_MONOTONIC stamp, the same clock as this
process's time.monotonic(), so each client's delivery delay is measured too.

The stalled client is a raw TCP socket with a small receive buffer that
completes the WebSocket handshake and then never reads again: the server's
writes to it back up, and it never answers a ping. `manage.py serve` runs
daphne with ping_interval=5, ping_timeout=10 (daphne's own defaults are
20 s / 30 s), so daphne drops it ~15 s after the handshake; its TCP state
(TCP_INFO, read without reading the socket) says when. Until then, once the kernel's
buffers are full, the server holds back what it would queue for it (only the newest
result is kept: streaming/live_fanout.py), which /metrics counts; the limit is set low
here (PETCAM_WS_BACKLOG_BYTES) so that happens well within those ~15 s.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import re
import socket
import struct
import termios
import time
import urllib.request
from collections.abc import Iterable

import pytest
import websockets

from tests.support.processes import (
    create_token,
    start_install,
    start_simulator,
)

CLIENTS = 50
RATE_HZ = 30
PHASE_SECONDS = 5.0
DROP_DEADLINE = 25.0  # ping_interval 5 + ping_timeout 10 + daphne's 2 s check period, + slack
TCP_ESTABLISHED = 1


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class Receiver:
    """One `websockets` client: (frame_number, camera timestamp, delivery delay) per result."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.got: list[tuple[int, float, float]] = []
        self.ws = None
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        self.ws = await websockets.connect(self.url, open_timeout=20, max_queue=None)
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            m = json.loads(raw)
            if m["type"] == "detections":
                self.got.append((m["frame_number"], m["timestamp"],
                                 time.monotonic() - m["timestamp"]))

    def caught_up(self, stamp: float) -> bool:
        return bool(self.got) and self.got[-1][1] >= stamp

    def window(self, start: float, end: float) -> list[tuple[int, float, float]]:
        return [g for g in self.got if start <= g[1] < end]

    async def close(self) -> None:
        await self.ws.close()
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


def stalled_client(port: int, token: str) -> socket.socket:
    """Handshake, then never read: a tiny receive buffer so the server's writes back up."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: sets the window
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws/cameras/default/?token={token} HTTP/1.1\r\n"
                  f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:  # only the HTTP response; frames after it stay unread
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def tcp_state(sock: socket.socket) -> int:
    """tcpi_state (first byte of struct tcp_info): 1 = established, 7 = closed (reset)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[0]


def unread_bytes(sock: socket.socket) -> int:
    buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


def check_phase(name: str, receivers: Iterable[Receiver], start: float, end: float) -> dict:
    """Every client got the same results in [start, end) (camera time), ~30/s, promptly."""
    per_client = [r.window(start, end) for r in receivers]
    sets = [frozenset(f for f, _, _ in got) for got in per_client]
    union = frozenset().union(*sets)
    assert union, f"{name}: no detections at all"
    span = end - start
    expected = max(union) - min(union) + 1  # the simulator detects every frame
    delays = [d * 1000 for got in per_client for _, _, d in got]
    rates = [len(s) / span for s in sets]
    stats = {"phase": name, "clients": len(sets), "results": len(union),
             "per_s": round(len(union) / span, 1), "min_client_per_s": round(min(rates), 1),
             "camera_per_s": round(expected / span, 1),
             "coverage": round(len(union) / expected, 3),
             "delay_p50_ms": round(percentile(delays, 50), 1),
             "delay_p95_ms": round(percentile(delays, 95), 1),
             "delay_max_ms": round(max(delays), 1)}
    # A frame the worker never published: the spacing of its neighbours' stamps tells
    # whether the simulator wrote it in a burst (the segment keeps only the latest result).
    stamps = {f: t for got in per_client for f, t, _ in got}
    holes = [f for f in range(min(union), max(union)) if f not in union]
    stats["missed_neighbour_gaps_ms"] = [
        round((stamps[f + 1] - stamps[f - 1]) * 1000) if f - 1 in stamps and f + 1 in stamps
        else None for f in holes][:10]
    print(stats)
    missing = [(i, len(union - s)) for i, s in enumerate(sets) if s != union]
    assert not missing, f"{name}: clients missing results (client, count): {missing}"
    for got in per_client:  # in order, no duplicates
        numbers = [f for f, _, _ in got]
        assert numbers == sorted(set(numbers)), f"{name}: out of order or duplicated"
    # The segment keeps only the latest result: when this 2-CPU machine starves the
    # worker's poll thread for a few frames, those results are lost for every client
    # alike (~0.3% with 1 client, 3-4% with 50 in the embedded process). The fan-out
    # itself must lose nothing: the sets above are identical.
    # Judged against the camera's own rate in the window, never a fixed 30/s: a loaded
    # machine slows the simulator (23 fps seen) without the fan-out losing anything.
    assert stats["coverage"] >= 0.9, stats
    assert stats["per_s"] >= 0.87 * stats["camera_per_s"], stats
    # No backlog building up: a server that waited for the stalled socket would hold
    # everyone back for its whole ~15 s. Loose bounds otherwise: this shared 2-CPU machine
    # is often overloaded, and the server's per-event cost makes 50 sockets near its limit
    # here (spikes of 1-2.5 s seen at load 6).
    assert stats["delay_p50_ms"] < 1000 and stats["delay_max_ms"] < 5000, stats
    return stats


async def settle(receivers: list[Receiver], end: float) -> None:
    """Until every client has a result stamped after `end` (what is in flight arrived)."""
    deadline = time.monotonic() + 5
    while not all(r.caught_up(end) for r in receivers) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ws-load")
    install = start_install(tmp, PETCAM_WS_BACKLOG_BYTES="32768")
    env, port, proc = install.env, install.port, install.site
    token = create_token(env, install.username)
    sim = start_simulator(env, tmp / "logs", "--fps", str(RATE_HZ), "--detect-fps", str(RATE_HZ))
    try:
        yield {"port": port, "token": token}
    finally:
        sim.stop()
        proc.stop()
        print(f"site log: {proc.log_path}")


def held_back(port: int) -> float:
    """petcam_ws_live_held_total of the default camera (/metrics, from loopback)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=20) as r:
        text = r.read().decode()
    found = re.search(r'^petcam_ws_live_held_total\{camera="default"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_fifty_clients_get_every_result_and_a_stalled_one_is_dropped_alone(site):
    url = f"ws://127.0.0.1:{site['port']}/ws/cameras/default/?token={site['token']}"

    async def run() -> None:
        receivers = [Receiver(url) for _ in range(CLIENTS)]
        await asyncio.gather(*(r.start() for r in receivers))
        deadline = time.monotonic() + 20
        while not all(r.got for r in receivers):  # every socket is in the camera's group
            assert time.monotonic() < deadline, "not every client gets detections"
            await asyncio.sleep(0.1)

        # Phase 1: 50 readers.
        start = time.monotonic()
        await asyncio.sleep(PHASE_SECONDS)
        end = time.monotonic()
        await settle(receivers, end)
        alone = check_phase("50 clients", receivers, start, end)

        # Phase 2: the same 50 plus one that stopped reading, until the server drops it.
        held_before = await asyncio.to_thread(held_back, site["port"])
        stalled = await asyncio.to_thread(stalled_client, site["port"], site["token"])
        opened = start = time.monotonic()
        dropped_after = None
        backlog = 0
        while time.monotonic() - opened < DROP_DEADLINE:
            await asyncio.sleep(0.25)
            if tcp_state(stalled) != TCP_ESTABLISHED:
                dropped_after = time.monotonic() - opened
                break
            backlog = unread_bytes(stalled)
        end = time.monotonic()
        await settle(receivers, end)
        print(f"stalled client: {backlog} bytes unread in its socket; dropped by the server "
              f"{dropped_after and round(dropped_after, 1)} s after its handshake "
              f"(tcp state {tcp_state(stalled)})")
        held = await asyncio.to_thread(held_back, site["port"]) - held_before
        print(f"events held back from the stalled client (newest kept): {held:g}")
        stalled.close()
        assert backlog > 0, "the stalled client was never sent anything"
        assert held > 0, "the server queued everything for the stalled client"
        # Not slowed: all of it, ~30/s, no backlog, for the whole ~15 s the stalled one sat there.
        stalled_phase = check_phase("50 clients + 1 stalled", receivers, start, end)
        print(f"delivery delay p50 {alone['delay_p50_ms']} -> {stalled_phase['delay_p50_ms']} ms "
              f"with the stalled client")
        await asyncio.gather(*(r.close() for r in receivers))
        assert dropped_after is not None, (
            f"the stalled socket is still open {DROP_DEADLINE} s after its handshake")

    asyncio.run(run())
