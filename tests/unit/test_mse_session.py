"""MseSession (streaming/media/mse.py) on a real hub: the order of what it sends, exact
durations, the acknowledgement window, and a full way to the socket as backpressure."""

from __future__ import annotations

import asyncio

from streaming.media.hub import Hub
from streaming.media.mse import MseSession, SocketBusy
from tests.support.mse_client import fragment_is_sync, fragment_time
from tests.support.recordings import camera_units


def trun_duration(fragment: bytes) -> int:
    at = fragment.find(b"trun")
    return int.from_bytes(fragment[at + 16:at + 20], "big")


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_init_then_fragments_with_exact_durations_from_the_cached_gop():
    async def run() -> None:
        hub = Hub("cam")
        units = camera_units(320, 240, n=40, gop=30, jitter=True)
        for au in units[:35]:
            hub.publish(au)  # the GOP cache now holds units[30:35]
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        session = MseSession("cam", hub, send, queue_frames=90, on_closed=lambda s: None,
                             window_frames=100)
        session.start()
        for au in units[35:]:
            hub.publish(au)
        await settle()
        await session.close("test")
        kinds = [m["type"] for m in sent]
        assert kinds == ["mse.init"] + ["mse.fragment"] * 9 + ["mse.closed"]
        assert [m["seq"] for m in sent[:-1]] == list(range(1, 11))
        fragments = [m["data"] for m in sent[1:-1]]
        assert fragment_is_sync(fragments[0]) and not fragment_is_sync(fragments[1])
        times = [fragment_time(f) for f in fragments]
        # Each frame's duration is the distance to the next one: no gap, no overlap.
        assert [trun_duration(f) for f in fragments[:-1]] == [
            b - a for a, b in zip(times, times[1:], strict=False)]
        base = sent[0]["camera_base"]
        assert abs(base + times[0] / 90_000 - units[30].timestamp) < 1e-4

    asyncio.run(run())


def test_window_and_a_busy_socket_hold_the_pump_while_the_queue_skips_to_an_idr():
    async def run() -> None:
        hub = Hub("cam")
        units = camera_units(320, 240, n=90, gop=30)
        hub.publish(units[0])
        sent: list[dict] = []
        busy = {"left": 3}

        async def send(message: dict) -> None:
            if busy["left"]:
                busy["left"] -= 1
                raise SocketBusy("full")
            sent.append(message)

        session = MseSession("cam", hub, send, queue_frames=10, on_closed=lambda s: None,
                             window_frames=4)
        session.start()
        for au in units[1:6]:
            hub.publish(au)
        await asyncio.sleep(0.15)  # the three busy retries of the init message
        await settle()
        assert len(sent) == 4 and session.busy_waits == 3  # the window: init + 3 fragments
        for au in units[6:36]:  # no acknowledgement: the queue overflows at 16, waits for 30
            hub.publish(au)
            await asyncio.sleep(0)
        assert len(sent) == 4
        assert session.sink.stats.overflows == 1 and session.sink.stats.dropped >= 10
        session.ack(4)
        await settle()
        resumed = [m["data"] for m in sent[4:]]
        # The frame held for its duration (taken before the overflow), then the IDR.
        assert len(resumed) >= 2 and fragment_is_sync(resumed[1])
        assert fragment_time(resumed[1]) - fragment_time(resumed[0]) == trun_duration(resumed[0])
        await session.close("test")

    asyncio.run(run())
