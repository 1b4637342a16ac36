"""WS /ws/cameras/{camera}/mse/ on a real embedded site with the simulator: fMP4 that
FFmpeg decodes from the first fragment, camera-clock media times, the WebRTC viewer
limit shared, a browser that stops acknowledging dropped to the next IDR and then ended,
and bad input refused."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.support.mse_client import MseClient, fragment_is_sync, fragment_time
from tests.support.processes import site_env
from tests.support.webrtc_client import WebRtcClient, http, running_site, simulated_camera

QUEUE_FRAMES = 10
SILENCE = 4


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mse")
    env = site_env(tmp, PETCAM_MAX_VIEWERS="2", PETCAM_VIEWER_QUEUE_FRAMES=str(QUEUE_FRAMES),
                   PETCAM_MSE_WINDOW_FRAMES="8", PETCAM_PEER_SILENCE_TIMEOUT=str(SILENCE),
                   PETCAM_ICE_TIMEOUT="3")
    with running_site(env, tmp / "logs") as running, simulated_camera(running):
        yield running


def sessions(site) -> list[dict]:
    return site.viewers()["sessions"]


def test_fragments_decode_from_the_first_and_carry_camera_time(site):
    async def run() -> None:
        client = await MseClient(site.base, site.token).connect()
        try:
            await client.wait_fragments(45)
            status = await asyncio.to_thread(site.status)
            live = [s for s in await asyncio.to_thread(sessions, site) if s["transport"] == "mse"]
        finally:
            await client.close()
        init = client.init
        assert init["mime"] == f'video/mp4; codecs="avc1.{status["profile_level_id"]}"'
        assert (init["width"], init["height"]) == (320, 240)
        assert client.texts[0] == init  # the first message, before any binary one
        assert client.init_segment[4:8] == b"ftyp" and b"moov" in client.init_segment
        # The cached GOP comes first: the very first fragment is a picture of its own.
        assert fragment_is_sync(client.fragments[0])
        frames = client.decode()
        assert len(frames) == len(client.fragments) >= 45
        assert {(f.width, f.height) for f in frames} == {(320, 240)}
        # Media time + camera_base is the simulator's CLOCK_MONOTONIC stamp of the frame.
        now = time.clock_gettime(time.CLOCK_MONOTONIC)
        first = init["camera_base"] + fragment_time(client.fragments[0]) / 90_000
        last = init["camera_base"] + fragment_time(client.fragments[-1]) / 90_000
        assert now - 5 < first < last < now
        times = [fragment_time(f) for f in client.fragments]
        assert times == sorted(set(times))
        assert [s["transport"] for s in live] == ["mse"] and live[0]["frames_sent"] >= 45
        await asyncio.sleep(0.3)
        assert await asyncio.to_thread(sessions, site) == []  # closed with its socket

    asyncio.run(run())


def test_mse_and_webrtc_share_the_viewer_limit(site):
    async def run() -> None:
        first = await MseClient(site.base, site.token).connect()
        rtc = WebRtcClient(site.base, site.token)
        try:
            await rtc.connect()
            third = await MseClient(site.base, site.token).connect()
            error = await third.wait_text("init")
            assert error["type"] == "error" and error["error"] == "max_viewers", error
            assert await third.ended() == 4503
            await first.wait_fragments(5)  # the others go on
        finally:
            await rtc.close()
            await first.close()

    asyncio.run(run())


def test_a_browser_that_stops_acknowledging_skips_to_an_idr_then_ends(site):
    async def run() -> None:
        client = await MseClient(site.base, site.token, ack=False).connect()
        try:
            await client.wait_fragments(7)  # the init segment is the window's 8th message
            # Window full: nothing more until an acknowledgement; the queue overflows.
            await asyncio.sleep(1.5)
            held = len(client.fragments)
            assert held == 7
            stats = next(s for s in await asyncio.to_thread(sessions, site)
                         if s["transport"] == "mse")
            assert stats["overflows"] >= 1 and stats["dropped"] >= QUEUE_FRAMES
            await client.send({"type": "ack", "seq": client.seq})
            await client.wait_fragments(held + 2)
            # The frame held for its duration (taken before the overflow), then an IDR.
            assert fragment_is_sync(client.fragments[held + 1])
            assert len(client.decode()) == len(client.fragments)
            # No acknowledgement any more: the worker ends the session, the socket closes.
            assert await client.ended(timeout=SILENCE + 5) == 4000
            assert client.texts[-1]["type"] == "closed"
            assert "acknowledgement" in client.texts[-1]["reason"]
        finally:
            await client.close()

    asyncio.run(run())


def test_ending_the_session_over_http_closes_the_socket(site):
    async def run() -> None:
        client = await MseClient(site.base, site.token).connect()
        try:
            await client.wait_fragments(3)
            session = next(s["session"] for s in await asyncio.to_thread(sessions, site)
                           if s["transport"] == "mse")
            reply = await asyncio.to_thread(
                http, "DELETE", f"{site.base}/api/cameras/default/webrtc/{session}/", None,
                {"Authorization": f"Bearer {site.token}"})
            assert reply.status == 204, reply.body
            assert await client.ended() == 4000
            assert client.texts[-1] == {"type": "closed", "reason": "closed by client"}
        finally:
            await client.close()

    asyncio.run(run())


def test_refusals_and_bad_messages(site):
    async def run() -> None:
        anonymous = await MseClient(site.base).connect()
        assert (await anonymous.wait_text("init"))["error"] == "not_authenticated"
        assert await anonymous.ended() == 4401
        attic = await MseClient(site.base, site.token, camera="attic").connect()
        assert (await attic.wait_text("init"))["error"] == "unknown_camera"
        assert await attic.ended() == 4404
        client = await MseClient(site.base, site.token).connect()
        try:
            await client.wait_fragments(1)
            for bad, code in (("not json", "invalid_json"), ("[1]", "invalid_json"),
                              ({"type": "ack", "seq": "x"}, "invalid_ack"),
                              ({"type": "ack", "seq": -1}, "invalid_ack"),
                              ({"type": "shout"}, "unknown_type")):
                await client.send(bad if isinstance(bad, str) else json.dumps(bad))
                error = await client.wait_text("error")
                assert error["error"] == code, (bad, error)
                client.texts.remove(error)
            await client.send({"type": "ping"})
            assert await client.wait_text("pong") == {"type": "pong"}
            await client.wait_fragments(len(client.fragments) + 5)  # still streaming
        finally:
            await client.close()

    asyncio.run(run())
