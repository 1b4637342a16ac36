"""The fan-out hub, GOP cache, viewer timestamps and codec choice, on exact inputs."""

from __future__ import annotations

import asyncio
import time

import pytest

from streaming.media.gop_cache import GopCache
from streaming.media.hub import Hub, SinkClosed
from streaming.media.types import AccessUnit
from streaming.media.webrtc.codecs import codec_preferences
from streaming.media.webrtc.session import drop_mdns_candidates
from streaming.media.webrtc.track import FRAME_TICKS, PtsClock


def now_ts() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def au(n: int, idr: bool = False, ts: float | None = None) -> AccessUnit:
    return AccessUnit(data=bytes([n % 256]) * 10, is_idr=idr, frame_number=n,
                      timestamp=now_ts() if ts is None else ts, nal_types=(5,) if idr else (1,))


def gop_stream(start: int, count: int, gop: int = 5):
    return [au(n, idr=(n % gop == 0)) for n in range(start, start + count)]


# --- GOP cache ---------------------------------------------------------------------

def test_gop_cache_keeps_frames_since_the_latest_idr():
    cache = GopCache()
    for unit in gop_stream(1, 12):  # IDRs at 5 and 10
        cache.add(unit)
    assert [u.frame_number for u in cache.snapshot()] == [10, 11, 12]
    assert cache.snapshot()[0].is_idr


def test_gop_cache_before_any_idr_is_empty():
    cache = GopCache()
    for unit in gop_stream(1, 4):
        cache.add(unit)
    assert cache.snapshot() == []


def test_gop_cache_overflow_abandons_the_gop_until_the_next_idr():
    cache = GopCache(max_frames=3)
    for unit in [au(1, True), au(2), au(3), au(4)]:
        cache.add(unit)
    assert cache.snapshot() == [] and cache.overflowed
    cache.add(au(5, True))
    assert [u.frame_number for u in cache.snapshot()] == [5]


def test_a_stale_gop_is_not_replayed():
    cache = GopCache()
    cache.add(au(1, True, ts=now_ts() - 10))
    assert cache.snapshot() == []
    assert len(cache.snapshot(max_age=None)) == 1


# --- hub and sink queues -------------------------------------------------------------

def test_new_sink_starts_with_the_cached_gop_then_live():
    async def run():
        hub = Hub("cam")
        for unit in gop_stream(1, 7):  # IDR at 5
            hub.publish(unit)
        sink = hub.subscribe("viewer")
        hub.publish(au(8))
        got = [await sink.get() for _ in range(4)]
        assert [(i.au.frame_number, i.catch_up) for i in got] == [
            (5, True), (6, True), (7, True), (8, False)]
    asyncio.run(run())


def test_a_sink_without_replay_waits_for_an_idr():
    hub = Hub("cam")
    sink = hub.subscribe("viewer", from_gop=False)
    for unit in gop_stream(1, 7):
        hub.publish(unit)
    assert [sink._items[i].au.frame_number for i in range(len(sink))] == [5, 6, 7]
    assert sink.stats.skipped_waiting_idr == 4


def test_overflow_drops_to_the_next_idr_without_touching_other_sinks():
    hub = Hub("cam")
    slow = hub.subscribe("slow", maxsize=3, from_gop=False)
    fast = hub.subscribe("fast", maxsize=100, from_gop=False)
    for unit in gop_stream(5, 12):  # IDRs at 5, 10, 15
        hub.publish(unit)
    # slow: 5,6,7 queued; 8 overflows (drops 3 + 8); 9 skipped; 10 IDR restarts; 11,12 queued;
    # 13 overflows again; 14 skipped; 15 restarts; 16 queued.
    assert [i.au.frame_number for i in slow._items] == [15, 16]
    assert slow.stats.overflows == 2
    assert all(i.au.frame_number not in (8, 9, 13, 14) for i in slow._items)
    assert [i.au.frame_number for i in fast._items] == list(range(5, 17))
    assert fast.stats.overflows == 0


def test_closing_a_sink_wakes_its_consumer():
    async def run():
        hub = Hub("cam")
        sink = hub.subscribe("viewer")
        waiter = asyncio.create_task(sink.get())
        await asyncio.sleep(0)
        hub.unsubscribe(sink)
        with pytest.raises(SinkClosed):
            await waiter
        assert sink not in hub.sinks
    asyncio.run(run())


# --- viewer timestamps ------------------------------------------------------------

def test_live_timestamps_follow_the_camera_clock():
    clock = PtsClock()
    assert clock.pts(100.0, False) == 0
    assert clock.pts(100.0 + 1 / 30, False) == 3000
    assert clock.pts(100.0 + 2 / 30, False) == 6000


def test_catch_up_frames_get_one_tick_then_live_resumes_a_frame_later():
    clock = PtsClock()
    replay = [clock.pts(50.0 + i / 30, True) for i in range(5)]
    assert replay == [0, 1, 2, 3, 4]
    live = clock.pts(50.0 + 5 / 30, False)
    assert 4 + FRAME_TICKS <= live < 4 + FRAME_TICKS + 900  # + what really elapsed
    assert clock.pts(50.0 + 6 / 30, False) == live + 3000


def test_a_camera_restart_keeps_timestamps_monotonic_and_counts_real_time():
    clock = PtsClock()
    clock.pts(100.0, False)
    before = clock.pts(100.0 + 1 / 30, False)
    time.sleep(0.2)  # the camera was off
    after = clock.pts(5.0, False)  # a restarted daemon's clock may even be lower
    assert after - before >= 0.2 * 90_000 * 0.9


# --- codec choice -------------------------------------------------------------------

def offer(*profile_level_ids: str) -> str:
    pts = " ".join(str(96 + i) for i in range(len(profile_level_ids)))
    lines = ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0",
             f"m=video 9 UDP/TLS/RTP/SAVPF {pts}", "c=IN IP4 0.0.0.0"]
    for i, pli in enumerate(profile_level_ids):
        lines += [f"a=rtpmap:{96 + i} H264/90000",
                  f"a=fmtp:{96 + i} packetization-mode=1;profile-level-id={pli}"]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize(("offered", "stream", "answered", "warned"), [
    (("42e01f", "640c1f", "64001f"), "640028", "640028", False),  # the truth, level included
    (("42e01f", "640c1f"), "640c28", "640c28", False),  # constrained high
    (("42001f", "42e01f", "4d001f", "f4001f"), "640028", "4d001f", True),  # no High offered
    (("42e01f",), "42c01e", "42c01e", False),  # x264's constrained baseline flags
    (("42e01f", "4d001f"), None, "4d001f", False),  # no SPS yet: highest offered
])
def test_answer_profile_follows_the_stream(offered, stream, answered, warned):
    preferences, warning = codec_preferences(offer(*offered), stream)
    h264 = [c.parameters["profile-level-id"] for c in preferences if c.mimeType == "video/H264"]
    assert h264 == [answered]
    assert any(c.mimeType == "video/rtx" for c in preferences)
    assert bool(warning) is warned


def test_an_offer_without_h264_is_refused():
    vp8_only = offer().replace("m=video 9 UDP/TLS/RTP/SAVPF ", "m=video 9 UDP/TLS/RTP/SAVPF 96")
    vp8_only += "a=rtpmap:96 VP8/90000\r\n"
    with pytest.raises(ValueError, match="no H.264"):
        codec_preferences(vp8_only, "640028")


def test_mdns_candidates_are_dropped_and_the_rest_kept():
    sdp = ("v=0\r\na=candidate:1 1 udp 2122260223 3f0c-uuid.local 54321 typ host\r\n"
           "a=candidate:2 1 udp 2122260223 192.0.2.7 54321 typ host\r\na=end-of-candidates\r\n")
    assert drop_mdns_candidates(sdp) == ("v=0\r\na=candidate:2 1 udp 2122260223 192.0.2.7 54321 "
                                         "typ host\r\na=end-of-candidates\r\n")
