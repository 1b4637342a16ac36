"""The server sends STUN only where a viewer may legitimately be (issue 14 item 7).

The probe: an offer with 1000 candidates was accepted, and 50 candidates on 127.0.0.1
ports got 266 STUN packets from the server. On a real site with the production default
(PETCAM_ALLOW_LOCAL_CANDIDATES off) the same inputs: the 1000 are refused with 400
invalid_sdp on every signaling path; the 50 loopback ports (the cap raised above 50 for
this, the default 32 refuses such an offer outright) get nothing at all, while a
candidate on this machine's LAN address in the same offer does get the server's checks
(so the counting works). The exact rules: tests/unit/test_offer_candidates.py.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets
from aioice.ice import get_host_addresses

from tests.support.processes import site_env, wait_for
from tests.support.webrtc_client import (
    UdpBlackHole,
    WebRtcClient,
    http,
    running_site,
    simulated_camera,
    with_candidates,
)

ICE_TIMEOUT = 3.0
MAX_CANDIDATES = 64  # above the default 32, so that the 50 loopback ones reach the filter


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stun")
    env = site_env(tmp, PETCAM_ALLOW_LOCAL_CANDIDATES="0", PETCAM_ICE_TIMEOUT=str(ICE_TIMEOUT),
                   PETCAM_MAX_OFFER_CANDIDATES=str(MAX_CANDIDATES))
    logs = tmp / "logs"
    with running_site(env, logs) as running, simulated_camera(running):
        yield running


def base_offer() -> str:
    async def make() -> str:
        client = WebRtcClient("http://unused", None)
        sdp = await client.create_offer()
        await client.pc.close()
        return sdp

    return asyncio.run(make())


def post_offer(site, sdp: str, signaling: str = "json"):
    auth = {"Authorization": f"Bearer {site.token}"}
    if signaling == "whep":
        return http("POST", f"{site.base}/whep/default", sdp.encode(),
                    {"Content-Type": "application/sdp", **auth})
    return http("POST", f"{site.base}/api/cameras/default/webrtc/offer/",
                json.dumps({"type": "offer", "sdp": sdp}).encode(),
                {"Content-Type": "application/json", **auth})


def test_50_loopback_candidates_get_no_stun_while_a_lan_one_does(site):
    loopback = UdpBlackHole("127.0.0.1", count=50)
    lan_addresses = get_host_addresses(use_ipv4=True, use_ipv6=False)
    lan = UdpBlackHole(lan_addresses[0]) if lan_addresses else None
    try:
        candidates = loopback.candidates() + (lan.candidates() if lan else [])
        reply = post_offer(site, with_candidates(base_offer(), candidates))
        assert reply.status == 200, reply  # answered: the forbidden ones were only dropped
        session = reply.json()["session"]
        started = time.monotonic()
        wait_for(lambda: session not in {s["session"] for s in site.viewers()["sessions"]},
                 ICE_TIMEOUT + 10, "the never-connecting session to be dropped")
        assert time.monotonic() - started >= ICE_TIMEOUT - 1.5
        assert loopback.received() == 0
        if lan is not None:
            assert lan.received() > 0, "the server sent no check to an allowed candidate"
    finally:
        loopback.close()
        if lan is not None:
            lan.close()


@pytest.mark.parametrize("signaling", ["json", "whep", "websocket"])
def test_an_offer_with_1000_candidates_is_400_invalid_sdp(site, signaling):
    candidates = [f"a=candidate:{i} 1 udp 1 10.0.{i // 250}.{i % 250 + 1} {1024 + i} typ host"
                  for i in range(1000)]
    sdp = with_candidates(base_offer(), candidates)
    # Under the size limit (as JSON too): the count is what is refused.
    assert len(json.dumps({"type": "offer", "sdp": sdp})) < 64 * 1024
    detail = f"An offer may carry at most {MAX_CANDIDATES} ICE candidates; this one has 1000."
    if signaling == "websocket":
        async def over_socket() -> dict:
            port = site.base.rsplit(":", 1)[1]
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/cameras/default/"
                                          f"?token={site.token}", max_size=None) as ws:
                await ws.send(json.dumps({"type": "offer", "sdp": sdp}))
                while (message := json.loads(await asyncio.wait_for(ws.recv(), 10)))[
                        "type"] != "error":
                    pass
                return message

        assert asyncio.run(over_socket()) == {"type": "error", "error": "invalid_sdp",
                                              "detail": detail}
    else:
        reply = post_offer(site, sdp, signaling)
        assert (reply.status, reply.json()) == (400, {"error": "invalid_sdp",
                                                      "detail": detail})
    assert site.viewers()["count"] == 0


def test_no_path_takes_trickled_candidates(site):
    candidate = "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host"
    reply = http("PATCH", f"{site.base}/whep/default/anything", candidate.encode(),
                 {"Content-Type": "application/trickle-ice-sdpfrag",
                  "Authorization": f"Bearer {site.token}"})
    assert (reply.status, reply.json()["error"]) == (405, "trickle_not_supported")

    async def over_socket() -> dict:
        port = site.base.rsplit(":", 1)[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/cameras/default/"
                                      f"?token={site.token}") as ws:
            await ws.send(json.dumps({"type": "candidate", "candidate": candidate}))
            while (message := json.loads(await asyncio.wait_for(ws.recv(), 10)))[
                    "type"] != "error":
                pass
            return message

    assert asyncio.run(over_socket())["error"] == "unknown_type"
