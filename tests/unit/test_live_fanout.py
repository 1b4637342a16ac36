"""streaming/live_fanout.py: one channel-layer member per camera writes each event to
every local socket (end to end through daphne: tests/integration/
test_detections_websocket_load.py). Real channel layers: in-memory, and Redis when it runs."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from channels.layers import InMemoryChannelLayer

from streaming.live_fanout import (
    CameraFanout,
    LiveFanouts,
    LiveSocket,
    live_event_texts,
    stamp_trace,
)
from tests.support.services import redis_url_or_skip

GROUP = "petcam.camera.default"
WAIT = 10.0  # a guard against hanging, not a measured duration


class Sink:
    """A socket's stand-in: keeps what it is sent; `backlog` says how far behind it is."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.texts: list[str] = []
        self.unsent = 0  # what the server would still hold for it
        self.closed = False
        self.changed = asyncio.Event()

    async def send(self, text: str) -> None:
        if self.closed:
            raise ConnectionResetError(self.name)
        self.texts.append(text)
        self.changed.set()

    def live_socket(self) -> LiveSocket:
        return LiveSocket(self.send, lambda: self.unsent, self.name)

    def frames(self) -> list[int]:
        return [m["frame_number"] for m in map(json.loads, self.texts)
                if m["type"] == "detections"]

    async def wait_for_frame(self, frame: int) -> None:
        async def wait() -> None:
            while frame not in self.frames():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(wait(), WAIT)


def detection_text(frame: int) -> str:
    return json.dumps({"type": "detections", "camera": "default", "frame_number": frame,
                       "detections": []})


def detections(frame: int) -> dict:
    """One result, the way a worker before batching sent it."""
    return {"type": "camera.detections", "text": detection_text(frame)}


def detection_batch(*frames: int) -> dict:
    """Results queued together (detections/feed.py)."""
    return {"type": "camera.detections", "texts": [detection_text(f) for f in frames]}


def status(n: int) -> dict:
    return {"type": "camera.status", "status": {"live": True, "n": n}}


def test_every_socket_gets_every_event_once_in_order_from_one_group_member():
    async def run() -> None:
        layer = InMemoryChannelLayer()
        fanout = CameraFanout("default", GROUP, layer=layer)
        sinks = [Sink(f"s{i}") for i in range(50)]
        for s in sinks:
            await fanout.join(s.live_socket())
        assert len(layer.groups[GROUP]) == 1  # not one member per socket
        await layer.group_send(GROUP, detection_batch(1, 2, 3))  # queued up in the worker
        for frame in range(4, 31):
            await layer.group_send(GROUP, detections(frame))
            if frame == 15:
                await layer.group_send(GROUP, status(1))
        for s in sinks:
            await s.wait_for_frame(30)
        first = sinks[0].texts
        assert sinks[0].frames() == list(range(1, 31))
        assert json.loads(first[15]) == {"type": "status", "live": True, "n": 1}
        for s in sinks[1:]:
            assert s.texts == first  # the very same text frames, in the same order
        assert all(a is b for a, b in zip(sinks[1].texts, first, strict=True))  # encoded once
        for s in sinks:
            await fanout.leave(s.live_socket())  # not a member: ignored
        assert len(fanout.sockets) == 50

    asyncio.run(run())


def test_a_stalled_socket_delays_nobody_and_then_gets_only_the_newest():
    async def run() -> None:
        layer = InMemoryChannelLayer()
        fanout = CameraFanout("default", GROUP, layer=layer, backlog_limit=1000)
        fast, stalled, late = Sink("fast"), Sink("stalled"), Sink("late")
        for s in (fast, stalled, late):
            await fanout.join(s.live_socket())
        await layer.group_send(GROUP, detections(1))
        await late.wait_for_frame(1)
        stalled.unsent = 5000  # its client stopped reading: the server's buffer filled
        await layer.group_send(GROUP, detection_batch(*range(2, 11)))
        for frame in range(11, 21):
            await layer.group_send(GROUP, detections(frame))
        await layer.group_send(GROUP, status(7))
        await late.wait_for_frame(20)
        assert fast.frames() == late.frames() == list(range(1, 21))  # nobody waited
        assert stalled.frames() == [1]  # nothing queued for it
        stalled.unsent = 0  # it drained
        await layer.group_send(GROUP, status(8))
        await stalled.wait_for_frame(20)
        # The newest held result (20), not 2..19; the status of the drain replaced its
        # held one (7) rather than following it.
        assert [json.loads(t) for t in stalled.texts[1:]] == [
            json.loads(detections(20)["text"]), {"type": "status", "live": True, "n": 8}]
        await layer.group_send(GROUP, detections(21))
        await stalled.wait_for_frame(21)
        assert stalled.frames() == [1, 20, 21]
        assert fanout.status()["held"] == 20 and fanout.status()["behind"] == 0

    asyncio.run(run())


def test_a_closed_socket_is_dropped_and_the_others_go_on():
    async def run() -> None:
        layer = InMemoryChannelLayer()
        fanout = CameraFanout("default", GROUP, layer=layer)
        a, gone, b = Sink("a"), Sink("gone"), Sink("b")
        for s in (a, gone, b):
            await fanout.join(s.live_socket())
        gone.closed = True
        await layer.group_send(GROUP, detections(1))
        await layer.group_send(GROUP, detections(2))
        await b.wait_for_frame(2)
        assert a.frames() == b.frames() == [1, 2] and gone.frames() == []
        assert [s.name for s in fanout.sockets] == ["a", "b"]
        assert fanout.status()["dropped_sockets"] == 1

    asyncio.run(run())


def test_the_last_socket_leaving_leaves_the_group_and_a_new_one_joins_again():
    async def run() -> None:
        layer = InMemoryChannelLayer()
        fanout = CameraFanout("default", GROUP, layer=layer)
        a, b = Sink("a").live_socket(), Sink("b").live_socket()
        await asyncio.gather(fanout.join(a), fanout.join(b))  # at once: one member
        assert len(layer.groups[GROUP]) == 1
        await fanout.leave(a)
        assert len(layer.groups[GROUP]) == 1
        await fanout.leave(b)
        assert not layer.groups.get(GROUP)
        c = Sink("c")
        await fanout.join(c.live_socket())
        await layer.group_send(GROUP, detections(5))
        await c.wait_for_frame(5)

    asyncio.run(run())


def test_event_texts_and_what_a_newer_one_replaces():
    assert live_event_texts({"type": "user.access_changed"}) is None
    assert live_event_texts(status(3)) == ("status",
                                           ['{"type": "status", "live": true, "n": 3}'])
    kind, (text,) = live_event_texts({"type": "camera.clock",
                                      "clock": {"session": "s1", "x": 1}})
    assert kind == "clock:s1" and json.loads(text) == {"type": "clock", "session": "s1", "x": 1}
    kind, (text,) = live_event_texts({"type": "camera.switch", "switch": {"camera": "default"}})
    assert kind == "camera_switch" and json.loads(text)["type"] == "camera_switch"
    traced = json.dumps({"type": "detections", "trace": {"read": 1.0}})
    kind, texts = live_event_texts({"type": "camera.detections", "texts": [traced, traced]},
                                   trace=True)
    assert kind == "detections" and len(texts) == 2
    assert set(json.loads(texts[1])["trace"]) == {"read", "web"}
    assert live_event_texts(detections(4))[1] == [detections(4)["text"]]  # one, older form
    assert stamp_trace('{"type": "detections"}', "web") == '{"type": "detections"}'


@pytest.mark.production
def test_over_redis_the_fanout_receives_next_to_the_sockets_own_channels():
    """channels_redis serves one process-local inbox at a time: the fan-out's channel must
    share the sockets' prefix, or it never receives while a socket waits on its own."""
    redis_url = redis_url_or_skip()
    from channels_redis.core import RedisChannelLayer

    async def run() -> None:
        layer = RedisChannelLayer(hosts=[redis_url], prefix=f"petcam-test-{uuid.uuid4().hex[:6]}")
        group = f"{GROUP}.{uuid.uuid4().hex[:6]}"
        own = await layer.new_channel()  # a consumer's own channel, waiting meanwhile
        waiting = asyncio.create_task(layer.receive(own))
        fanout = CameraFanout("default", group, layer=layer)
        sink = Sink("s")
        live = sink.live_socket()
        await fanout.join(live)
        try:
            for frame in (1, 2, 3):
                await layer.group_send(group, detections(frame))
            await sink.wait_for_frame(3)
            assert sink.frames() == [1, 2, 3]
            await layer.send(own, {"type": "ping"})
            assert (await asyncio.wait_for(waiting, WAIT)) == {"type": "ping"}
        finally:
            waiting.cancel()
            await fanout.leave(live)
            await layer.flush()

    asyncio.run(run())


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_fanout_leaves_by_a_message_to_itself_not_by_cancelling_its_receive(kind):
    """The fan-out usually holds the process's shared inbox (it receives the most); were it
    cancelled mid-pop, the message it had popped, maybe another socket's revocation, would
    be lost (django/channels_redis#366). It leaves by a message to itself instead, and the
    other channels of the process go on receiving."""
    if kind == "redis":
        from channels_redis.core import RedisChannelLayer
        layer = RedisChannelLayer(hosts=[redis_url_or_skip()],
                                  prefix=f"petcam-test-{uuid.uuid4().hex[:6]}")
    else:
        layer = InMemoryChannelLayer()

    async def run() -> None:
        group = f"{GROUP}.{uuid.uuid4().hex[:6]}"
        own = await layer.new_channel()  # a consumer's own channel
        fanout = CameraFanout("default", group, layer=layer)
        for n in range(3):
            live = Sink(f"s{n}").live_socket()
            await fanout.join(live)
            task = fanout._task
            await asyncio.sleep(0.02)  # the fan-out waits on the inbox
            await asyncio.gather(layer.send(own, {"type": "x", "n": n}), fanout.leave(live))
            assert task is not None and task.done() and not task.cancelled()
            assert await asyncio.wait_for(layer.receive(own), WAIT) == {"type": "x", "n": n}
        await layer.flush()

    asyncio.run(run())


@pytest.mark.production
def test_over_redis_a_worker_reply_is_not_queued_behind_fifty_quiet_sockets():
    """streaming/worker_rpc.py's reply channel shares the sockets' inbox (its prefix): with
    another prefix the reply waits while each idle socket in turn blocks on the inbox."""
    redis_url = redis_url_or_skip()
    from channels.layers import channel_layers
    from channels_redis.core import RedisChannelLayer

    from streaming.worker_rpc import call_worker, worker_channel

    async def run() -> None:
        prefix = f"petcam-test-{uuid.uuid4().hex[:6]}"
        web = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
        worker = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
        sockets = [await web.new_channel() for _ in range(50)]
        waiting = [asyncio.create_task(web.receive(c)) for c in sockets]  # quiet sockets

        async def answer() -> None:
            request = await worker.receive(worker_channel("default"))
            await worker.send(request["reply_to"], {"result": {"pong": request["op"]}})

        responder = asyncio.create_task(answer())
        saved = channel_layers.backends.get("default")
        channel_layers.backends["default"] = web
        try:
            await asyncio.sleep(0.2)  # every socket blocked on the inbox in turn
            assert await call_worker("default", "ping", timeout=WAIT) == {"pong": "ping"}
        finally:
            if saved is None:
                channel_layers.backends.pop("default", None)
            else:
                channel_layers.backends["default"] = saved
            for task in (*waiting, responder):
                task.cancel()
            await asyncio.gather(*waiting, responder, return_exceptions=True)
            await web.flush()

    asyncio.run(run())


def test_metrics_hold_one_family_per_name_with_every_camera():
    fanouts = LiveFanouts(lambda camera: f"petcam.camera.{camera}", layer=InMemoryChannelLayer())
    fanouts.camera("default").held = 3
    fanouts.camera("attic")
    families = {f.name: f for f in fanouts.metrics()}
    assert sorted(families) == ["petcam_ws_live_dropped_sockets", "petcam_ws_live_held",
                                "petcam_ws_live_sockets"]
    held = {s.labels["camera"]: s.value for s in families["petcam_ws_live_held"].samples
            if s.name.endswith("_total")}
    assert held == {"default": 3.0, "attic": 0.0}


def test_a_fanout_left_on_a_closed_loop_starts_afresh_on_the_next():
    layer = InMemoryChannelLayer()
    fanout = CameraFanout("default", GROUP, layer=layer)

    async def first() -> None:  # a socket never left: its loop simply ended
        await fanout.join(Sink("old").live_socket())

    async def second() -> list[int]:
        sink = Sink("new")
        await fanout.join(sink.live_socket())
        await layer.group_send(GROUP, detections(9))
        await sink.wait_for_frame(9)
        assert [s.name for s in fanout.sockets] == ["new"]
        return sink.frames()

    asyncio.run(first())
    assert asyncio.run(second()) == [9]
