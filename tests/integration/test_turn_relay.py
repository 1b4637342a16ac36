"""Watching through a real coturn with the credentials GET /api/webrtc/ice-servers/ hands out.

One coturn (REST-API secret, 127.0.0.1, free port) and one site told its URL and secret,
with PETCAM_WORKER_TURN on so the media worker relays too. coturn accepts the API's
credential and refuses a wrong or an expired one (401); an aiortc viewer restricted to
the relay (iceTransportPolicy relay) gets the camera's frames through it; the mobile
client script does the same and, given a credential coturn refuses, says why (and sends
no offer).
tests/browser/test_browser_turn_relay.py has Chromium do it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest
from aioice.stun import TransactionFailed
from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransportPolicy

from streaming.ice_servers import turn_credential
from tests.support.processes import ROOT, site_env
from tests.support.turn_server import allocate, running_coturn
from tests.support.webrtc_client import WebRtcClient, http, running_site, simulated_camera


@pytest.fixture(scope="module")
def turn(tmp_path_factory):
    with running_coturn(tmp_path_factory.mktemp("coturn")) as server:
        yield server


@pytest.fixture(scope="module")
def site(turn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("turn-site")
    env = site_env(tmp, **turn.site_env(PETCAM_WORKER_TURN="1", PETCAM_TURN_TTL="300"))
    with running_site(env, tmp / "logs") as running, simulated_camera(running):
        yield running


def ice_servers(site, token: str | None = None) -> dict:
    reply = http("GET", site.base + "/api/webrtc/ice-servers/",
                 headers={"Authorization": f"Bearer {token or site.token}"})
    assert reply.status == 200, reply.body
    return reply.json()


def turn_entry(body: dict) -> dict:
    return next(s for s in body["iceServers"] if str(s["urls"]).find("turn:") >= 0)


def test_coturn_takes_the_apis_credential_and_refuses_wrong_or_expired_ones(site, turn):
    body = ice_servers(site)
    assert body["ttl"] == 300 and body["iceTransportPolicy"] == "all"
    entry = turn_entry(body)
    assert entry["urls"] == [turn.url]
    expiry = int(entry["username"].split(":")[0])
    assert time.time() + 250 < expiry <= time.time() + 300
    relayed = asyncio.run(allocate(turn, entry["username"], entry["credential"]))
    assert relayed[0] == "127.0.0.1"

    expired = turn_credential(turn.secret, "1", int(time.time()) - 5)
    for username, credential in [(entry["username"], "not-the-credential"), expired]:
        with pytest.raises(TransactionFailed) as refused:
            asyncio.run(allocate(turn, username, credential))
        assert refused.value.response.attributes["ERROR-CODE"][0] == 401
    # and the endpoint itself needs a login
    assert http("GET", site.base + "/api/webrtc/ice-servers/").status in (401, 403)


def test_an_api_client_restricted_to_the_relay_gets_the_video(site):
    body = ice_servers(site)
    config = RTCConfiguration(iceServers=[RTCIceServer(**s) for s in body["iceServers"]],
                              iceTransportPolicy=RTCIceTransportPolicy.RELAY)

    async def watch() -> WebRtcClient:
        async with WebRtcClient(site.base, site.token, configuration=config) as client:
            await client.connect()
            await client.wait_frames(15)
            return client

    client = asyncio.run(watch())
    offered = [line for line in client.pc.localDescription.sdp.splitlines()
               if line.startswith("a=candidate:")]
    assert offered and all(" typ relay " in line for line in offered), offered
    # PETCAM_WORKER_TURN: the worker's answer names its own relay address too
    assert " typ relay " in client.answer_sdp, client.answer_sdp


def run_mobile_client(site, *args: str) -> tuple[int, str]:
    run = subprocess.run([sys.executable, "-m", "benchmarks.mobile_client", "--url", site.base,
                          "--username", site.username, f"--password={site.password}",
                          "--frames", "10", "--relay", *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    return run.returncode, run.stdout + run.stderr


def test_the_mobile_client_watches_through_the_relay(site, turn):
    code, output = run_mobile_client(site)
    # it goes on to download a recording, which this site has none of: the live step counts
    assert "policy relay" in output and f"TURN ['{turn.url}']" in output, output
    assert "frames decoded" in output, output
    assert code == 1 and "no complete recording" in output, output


def test_the_mobile_client_says_why_when_coturn_refuses_its_credential(site, turn):
    from benchmarks.mobile_client import Api, StepFailed, rtc_configuration, watch_live

    body = ice_servers(site)
    turn_entry(body)["credential"] = "not-the-credential"
    api = Api(site.base, site.token)
    with pytest.raises(StepFailed) as failed:
        asyncio.run(watch_live(api, "default", 5, 10, rtc_configuration(body, relay=True)))
    assert str(failed.value) == (f"no TURN relay address: {turn.url} refused the credential: "
                                 "401 Unauthorized")


@pytest.mark.parametrize("credential", ["right", "wrong"])
def test_the_worker_takes_a_relay_address_or_says_why_not(turn, caplog, credential):
    """PETCAM_WORKER_TURN's session side, in-process: with a credential coturn takes, the
    answer names a relay address; with one it refuses, a warning says so (aioice alone
    would drop the error) and the answer keeps the direct candidates."""
    from aiortc import RTCPeerConnection

    from streaming.media.hub import Hub
    from streaming.media.webrtc.session import ViewerSession

    username, good = turn_credential(turn.secret, "petcam-worker-t", int(time.time()) + 60)
    server = {"urls": turn.url, "username": username,
              "credential": good if credential == "right" else "not-the-credential"}

    async def answer() -> str:
        session = ViewerSession("t", Hub("t"), ice_servers=[server], queue_frames=10,
                                on_closed=lambda s: None)
        viewer = RTCPeerConnection()
        viewer.addTransceiver("video", direction="recvonly")
        try:
            await viewer.setLocalDescription(await viewer.createOffer())
            return await session.accept(viewer.localDescription.sdp, None)
        finally:
            await session.close("test over")
            await viewer.close()

    sdp = asyncio.run(answer())
    warned = "the TURN server gave the worker no relay address" in caplog.text
    if credential == "right":
        assert " typ relay" in sdp and not warned, caplog.text
    else:
        assert " typ relay" not in sdp and " typ host" in sdp and warned, sdp
