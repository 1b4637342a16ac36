"""WS /ws/cameras/{camera}/ on a real site: auth, status events, offer/answer, bad input."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from aiortc import RTCPeerConnection

from tests.support.processes import (
    Client,
    create_token,
    start_install,
    start_simulator,
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ws")
    install = start_install(tmp)
    env, port, proc = install.env, install.port, install.site
    token = create_token(env, install.username)
    sim = start_simulator(env, tmp / "logs")
    client = Client(install.base)
    client.login(install.username, install.password)
    yield {"port": port, "token": token, "client": client, "proc": proc}
    sim.stop()
    proc.stop()


def ws_url(site, camera: str = "default", token: str | None = None) -> str:
    query = f"?token={token}" if token else ""
    return f"ws://127.0.0.1:{site['port']}/ws/cameras/{camera}/{query}"


async def next_of_type(ws, kind: str, timeout: float = 5.0) -> dict:
    async def wait() -> dict:
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message
    return await asyncio.wait_for(wait(), timeout)


async def browser_offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def viewer_count(site) -> int:
    return site["client"].get_json("/api/cameras/default/")[1]["viewers"]["count"]


def test_anonymous_socket_is_told_and_closed(site):
    async def run():
        async with websockets.connect(ws_url(site)) as ws:
            message = json.loads(await ws.recv())
            assert message == {"type": "error", "error": "not_authenticated",
                               "detail": "Log in or pass ?token=<api token>."}
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4401
    asyncio.run(run())


def test_bad_token_and_unknown_camera(site):
    async def run():
        async with websockets.connect(ws_url(site, token="nope")) as ws:
            assert json.loads(await ws.recv())["error"] == "not_authenticated"
        async with websockets.connect(ws_url(site, "attic", token=site["token"])) as ws:
            assert json.loads(await ws.recv())["error"] == "unknown_camera"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4404
    asyncio.run(run())


def test_a_foreign_browser_origin_is_refused(site):
    async def run():
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(ws_url(site, token=site["token"]),
                                          additional_headers={"Origin": "https://evil.example"}):
                pass
        assert refused.value.response.status_code == 403
    asyncio.run(run())


def test_status_events_and_offer_answer_with_session_cookie(site):
    cookie = "; ".join(f"{c.name}={c.value}" for c in site["client"].jar)
    origin = f"http://127.0.0.1:{site['port']}"

    async def run():
        async with websockets.connect(ws_url(site), additional_headers={
                "Cookie": cookie, "Origin": origin}) as ws:
            status = await next_of_type(ws, "status")
            for _ in range(10):  # the first IDR (and so the SPS) may be a GOP away
                if status["width"]:
                    break
                status = await next_of_type(ws, "status")
            assert status["camera"] == "default" and status["live"] is True
            assert (status["width"], status["height"]) == (320, 240)
            pc, sdp = await browser_offer()
            await ws.send(json.dumps({"type": "offer", "sdp": sdp}))
            answer = await next_of_type(ws, "answer")
            assert answer["sdp"].startswith("v=0") and "H264" in answer["sdp"]
            assert viewer_count(site) == 1
            await ws.send(json.dumps({"type": "close", "session": answer["session"]}))
            assert (await next_of_type(ws, "closed"))["session"] == answer["session"]
            assert viewer_count(site) == 0
            await pc.close()
    asyncio.run(run())


def test_sessions_end_with_their_socket(site):
    async def run():
        async with websockets.connect(ws_url(site, token=site["token"])) as ws:
            pcs = []
            for _ in range(2):
                pc, sdp = await browser_offer()
                pcs.append(pc)
                await ws.send(json.dumps({"type": "offer", "sdp": sdp}))
                await next_of_type(ws, "answer")
            assert viewer_count(site) == 2
        for _ in range(50):
            if viewer_count(site) == 0:
                break
            await asyncio.sleep(0.1)
        assert viewer_count(site) == 0
        for pc in pcs:
            await pc.close()
    asyncio.run(run())


@pytest.mark.parametrize(("message", "error"), [
    ("not json", "invalid_json"),
    ("[1, 2]", "invalid_json"),
    (json.dumps({"type": "dance"}), "unknown_type"),
    (json.dumps({"type": "offer"}), "invalid_sdp"),
    (json.dumps({"type": "offer", "sdp": 42}), "invalid_sdp"),
    (json.dumps({"type": "offer", "sdp": "v=0\r\nm=audio 9 UDP 0\r\n"}), "invalid_sdp"),
    (json.dumps({"type": "offer", "sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nzzz"}),
     "invalid_sdp"),
    (json.dumps({"type": "offer", "sdp": "v=0\r\nm=video " + "x" * 70_000}), "too_large"),
    (json.dumps({"type": "close", "session": "../../etc"}), "unknown_session"),
])
def test_bad_messages_get_an_error_and_the_socket_stays_usable(site, message, error):
    async def run():
        async with websockets.connect(ws_url(site, token=site["token"]),
                                      max_size=2**20) as ws:
            await ws.send(message)
            reply = await next_of_type(ws, "error")
            assert reply["error"] == error and reply["detail"]
            await ws.send(json.dumps({"type": "ping"}))
            await next_of_type(ws, "pong")
        assert viewer_count(site) == 0
    asyncio.run(run())
