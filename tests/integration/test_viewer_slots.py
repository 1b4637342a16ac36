"""Live viewer slots cannot be hoarded (issue 14 item 4).

The probe: a viewer posting 10 offers that never complete ICE (and re-offering) kept
everyone else, root included, at 503 max_viewers. Now one user holds at most
PETCAM_MAX_VIEWERS_PER_USER sessions per camera, an offer that would be refused replaces
the same user's oldest session not connected yet, sessions not connected yet ("pending")
are counted apart and dropped after PETCAM_ICE_TIMEOUT, and on a full camera a newcomer
takes the place of the oldest pending session of a user who has several.

One real site (daphne + in-process worker + simulator) with 5 slots and 3 per user;
mallory and mike (viewers) offer and never connect: their candidates lead into a UDP
socket that never answers. root (the admin), alice and bob watch for real.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from tests.support.processes import manage, site_env, wait_for
from tests.support.webrtc_client import (
    SignalingError,
    UdpBlackHole,
    WebRtcClient,
    close_all,
    dangling_offer,
    http,
    running_site,
    simulated_camera,
)

MAX_VIEWERS = 5
PER_USER = 3
ICE_TIMEOUT = 10.0
WATCHDOG_PERIOD = 1.0

MAKE_USERS = """
import json
from tests.support.tokens import make_token
from tests.support.roles import make_user
names = ("mallory", "mike", "alice", "bob")
print(json.dumps({n: make_token(make_user(n, "viewers")) for n in names}))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slots")
    env = site_env(tmp, PETCAM_MAX_VIEWERS=str(MAX_VIEWERS),
                   PETCAM_MAX_VIEWERS_PER_USER=str(PER_USER),
                   PETCAM_ICE_TIMEOUT=str(ICE_TIMEOUT), PETCAM_PEER_SILENCE_TIMEOUT="5")
    logs = tmp / "logs"
    with running_site(env, logs) as running:
        out = manage(env, "shell", "-c", MAKE_USERS)
        running.tokens = {**json.loads(out.strip().splitlines()[-1]), "root": running.token}
        with simulated_camera(running):
            yield running


@pytest.fixture
def hole():
    sink = UdpBlackHole()
    yield sink
    sink.close()


@pytest.fixture(autouse=True)
def empty_camera(site):
    """Every test starts and ends with no session: root (who may end any) ends the rest."""
    yield
    for session in site.viewers()["sessions"]:
        http("DELETE", f"{site.base}/api/cameras/default/webrtc/{session['session']}/",
             headers={"Authorization": f"Bearer {site.token}"})
    wait_for(lambda: site.viewers()["count"] == 0, 10, "an empty camera")


def live(site) -> set[str]:
    return {s["session"] for s in site.viewers()["sessions"]}


async def aviewers(site) -> dict:
    return await asyncio.to_thread(site.viewers)


async def watch(site, user: str) -> WebRtcClient:
    client = WebRtcClient(site.base, site.tokens[user], name=user)
    await client.connect()
    await client.wait_frames(5)
    return client


async def still_playing(clients: list[WebRtcClient], frames: int = 10) -> None:
    counts = [len(c.frames) for c in clients]
    await asyncio.gather(*(c.wait_frames(n + frames) for c, n in zip(clients, counts,
                                                                      strict=True)))


def test_ten_offers_that_never_connect_hold_three_slots_and_the_others_get_in(site, hole):
    async def run() -> None:
        before = await aviewers(site)
        mallory: list[WebRtcClient] = []
        watching: list[WebRtcClient] = []
        try:
            for i in range(10):  # the probe's input
                mallory.append(await dangling_offer(site.base, site.tokens["mallory"], hole,
                                                    name=f"mallory{i}"))
                assert mallory[-1].offer_reply.status == 200, mallory[-1].offer_reply
            server = await aviewers(site)
            # Each offer past the third replaced her oldest: only the newest three live.
            assert {s["session"] for s in server["sessions"]} == {
                c.session for c in mallory[-PER_USER:]}
            assert (server["count"], server["pending"]) == (PER_USER, PER_USER)
            assert server["replaced"] - before["replaced"] == 10 - PER_USER
            assert server["rejected_full"] == before["rejected_full"]

            # root and alice get in (and see video) while she keeps re-offering.
            async def reoffer() -> None:
                for i in range(5):
                    client = await dangling_offer(site.base, site.tokens["mallory"], hole,
                                                  name=f"again{i}")
                    mallory.append(client)
                    assert client.offer_reply.status == 200, client.offer_reply

            *_, root, alice = await asyncio.gather(reoffer(), watch(site, "root"),
                                                   watch(site, "alice"))
            watching += [root, alice]
            server = await aviewers(site)
            assert (server["count"], server["pending"]) == (MAX_VIEWERS, PER_USER)

            # Full now. Her next offer still only replaces one of her own ...
            mallory.append(await dangling_offer(site.base, site.tokens["mallory"], hole))
            assert mallory[-1].offer_reply.status == 200
            assert mallory[-1].session in await asyncio.to_thread(live, site)
            # ... and bob, a newcomer, takes the place of her oldest (she has three pending).
            oldest = mallory[-PER_USER].session
            watching.append(await watch(site, "bob"))
            sessions = await asyncio.to_thread(live, site)
            assert oldest not in sessions and len(sessions) == MAX_VIEWERS
            await still_playing(watching)
            assert hole.received() > 0  # the server did try her candidates
        finally:
            await close_all(watching)
            await close_all(mallory, delete=False)

    asyncio.run(run())


def test_a_fourth_session_of_one_user_is_429_and_the_three_keep_playing(site):
    port = site.base.rsplit(":", 1)[1]

    async def run() -> None:
        alice = [await watch(site, "alice") for _ in range(PER_USER)]
        try:
            before = await aviewers(site)
            fourth = WebRtcClient(site.base, site.tokens["alice"], name="alice4")
            with pytest.raises(SignalingError) as refused:
                await fourth.connect()
            await fourth.close()
            assert refused.value.status == 429
            assert refused.value.body == {
                "error": "too_many_sessions",
                "detail": f"You already have {PER_USER} live sessions on camera 'default' "
                          f"(at most {PER_USER} per user); end one first."}
            # The same over the WebSocket.
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/cameras/default/"
                                          f"?token={site.tokens['alice']}") as ws:
                await ws.send(json.dumps({"type": "offer",
                                          "sdp": await fourth.create_offer()}))
                while (message := json.loads(await asyncio.wait_for(ws.recv(), 10)))[
                        "type"] != "error":
                    pass
                assert message["error"] == "too_many_sessions", message
            server = await aviewers(site)
            assert server["rejected_per_user"] == before["rejected_per_user"] + 2
            assert server["count"] == PER_USER and server["rejected_full"] == \
                before["rejected_full"]
            await still_playing(alice)
            # Ending one frees her place at once.
            assert (await alice.pop(0).close()).status == 204
            alice.append(await watch(site, "alice"))
            await still_playing(alice)
        finally:
            await close_all(alice)

    asyncio.run(run())


def test_pending_sessions_are_counted_apart_and_dropped_at_the_ice_deadline(site, hole):
    async def run() -> None:
        clients = []
        try:
            root = await watch(site, "root")
            clients.append(root)
            for i in range(2):
                clients.append(await dangling_offer(site.base, site.tokens["mike"], hole,
                                                    name=f"mike{i}"))
            started = time.monotonic()
            server = await aviewers(site)
            assert (server["count"], server["pending"]) == (3, 2)
            states = {s["session"]: s["state"] for s in server["sessions"]}
            assert states[root.session] == "connected"
            assert {states[c.session] for c in clients[1:]} <= {"new", "connecting"}
            deadline = ICE_TIMEOUT + WATCHDOG_PERIOD + 5
            while (await aviewers(site))["pending"]:
                assert time.monotonic() - started < deadline, "pending sessions outlived " \
                                                              "the ICE deadline"
                await asyncio.sleep(0.2)
            assert time.monotonic() - started >= ICE_TIMEOUT - 1.5  # not before it either
            assert await asyncio.to_thread(live, site) == {root.session}
            # Gone for good: the server stopped sending STUN into the hole.
            sent = hole.received()
            await asyncio.sleep(2)
            assert hole.received() == sent
            await still_playing([root])
        finally:
            await close_all(clients[:1])
            await close_all(clients[1:], delete=False)

    asyncio.run(run())


def test_a_lone_pending_session_is_not_taken_and_a_full_camera_is_503(site, hole):
    async def run() -> None:
        watching, dangling = [], []
        try:
            watching.append(await watch(site, "root"))
            watching += [await watch(site, "alice") for _ in range(PER_USER)]
            dangling.append(await dangling_offer(site.base, site.tokens["mike"], hole))
            assert (await aviewers(site))["count"] == MAX_VIEWERS
            bob = WebRtcClient(site.base, site.tokens["bob"], name="bob")
            with pytest.raises(SignalingError) as refused:
                await bob.connect()
            await bob.close()
            assert (refused.value.status, refused.value.body["error"]) == (503, "max_viewers")
            # mike's one connecting session was left alone; his retry replaces it.
            assert dangling[0].session in await asyncio.to_thread(live, site)
            dangling.append(await dangling_offer(site.base, site.tokens["mike"], hole))
            assert dangling[-1].offer_reply.status == 200
            sessions = await asyncio.to_thread(live, site)
            assert dangling[0].session not in sessions and dangling[-1].session in sessions
            await still_playing(watching)
        finally:
            await close_all(watching)
            await close_all(dangling, delete=False)

    asyncio.run(run())
