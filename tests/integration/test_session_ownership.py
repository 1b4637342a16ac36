"""Live viewer sessions belong to the user who opened them.

Session ids are no secret (every socket on the camera sees them in "clock" events), so
ending a session is checked: its owner may, a user who may control the camera (operators,
admins, superusers) may, any other watcher gets exactly the answer an unknown session gets
(404 unknown_session; "error" unknown_session on the WebSocket). One real site (daphne +
in-process worker + simulator) for the module; users alice and bob (viewers) and olga
(operators) come from tests/support/roles.py. The last test checks the same over Redis, with
the worker in its own process (the user id travels in the RPC message).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from streaming.media.shm import segment as shm_segment
from tests.support.processes import manage, site_env, start_simulator, start_worker
from tests.support.services import redis_url_or_skip, scratch_postgres_database
from tests.support.webrtc_client import Site, WebRtcClient, http, running_site, wait_live

MAKE_USERS = """
import json
from tests.support.roles import make_user
users = {"alice": make_user("alice", "viewers"), "bob": make_user("bob", "viewers"),
         "olga": make_user("olga", "operators")}
from tests.support.tokens import make_token
print(json.dumps({n: make_token(u) for n, u in users.items()}))
"""


@contextlib.contextmanager
def ownership_site(tmp: Path, production: bool = False, **extra_env: str) -> Iterator[Site]:
    """A site with alice, bob and olga (`site.tokens`) and a live simulated camera;
    `production`: plain daphne + a separate `manage.py media_worker` over Redis."""
    env = site_env(tmp, **extra_env)
    logs = tmp / "logs"
    sim = worker = None
    try:
        with running_site(env, logs, plain_daphne=production) as running:
            out = manage(env, "shell", "-c", MAKE_USERS)
            running.tokens = json.loads(out.strip().splitlines()[-1])
            if production:
                worker = start_worker(env, logs)
            sim = start_simulator(env, logs, "--bitrate", "300")
            wait_live(running.base, running.token, width=320)
            yield running
    finally:
        for proc in (sim, worker):
            if proc is not None:
                proc.stop()
        shm_segment.unlink(env["PETCAM_SHM_STREAM"])
        shm_segment.unlink(env["PETCAM_SHM_DETECTIONS"])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with ownership_site(tmp_path_factory.mktemp("ownership")) as running:
        yield running


def delete(site, client: WebRtcClient, token: str):
    """DELETE `client`'s session (its JSON URL or WHEP resource) as the holder of `token`."""
    if client.signaling == "whep":
        url = site.base + client.location
    else:
        url = f"{site.base}/api/cameras/default/webrtc/{client.session}/"
    return http("DELETE", url, headers={"Authorization": f"Bearer {token}"})


async def ws_close(site, token: str, session: str) -> dict:
    """Send {"type": "close"} for `session` over a fresh socket; the reply to it."""
    port = site.base.rsplit(":", 1)[1]
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/cameras/default/?token={token}") \
            as ws:
        await ws.send(json.dumps({"type": "close", "session": session}))
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if message.get("type") in ("closed", "error"):
                return message


def live_sessions(site) -> set[str]:
    return {s["session"] for s in site.viewers()["sessions"]}


async def watch(site, user: str, signaling: str) -> WebRtcClient:
    client = WebRtcClient(site.base, site.tokens[user], signaling=signaling, name=user)
    await client.connect()
    await client.wait_frames(5)
    return client


def test_another_viewer_cannot_end_a_session_and_its_video_keeps_flowing(site):
    bob = site.tokens["bob"]

    async def run() -> None:
        json_client = await watch(site, "alice", "json")
        whep_client = await watch(site, "alice", "whep")
        try:
            ours = {json_client.session, whep_client.session}
            # What any unknown session gets, word for word: the refusal must look the same.
            unknown = http("DELETE", f"{site.base}/api/cameras/default/webrtc/"
                           f"{secrets.token_hex(8)}/", headers={"Authorization": f"Bearer {bob}"})
            assert (unknown.status, unknown.json()["error"]) == (404, "unknown_session")
            for client in (json_client, whep_client):
                reply = await asyncio.to_thread(delete, site, client, bob)
                assert (reply.status, reply.json()) == (404, unknown.json()), client
                message = await ws_close(site, bob, client.session)
                assert message == {"type": "error", **unknown.json()}, message
            assert ours <= live_sessions(site)
            # The refused attempts did not disturb the picture either.
            for client in (json_client, whep_client):
                await client.wait_frames(len(client.frames) + 10)
                assert client.pc.connectionState == "connected", client
            # The owner may: JSON DELETE (204), WHEP DELETE (200).
            assert (await asyncio.to_thread(delete, site, json_client,
                                            site.tokens["alice"])).status == 204
            assert (await asyncio.to_thread(delete, site, whep_client,
                                            site.tokens["alice"])).status == 200
            assert not ours & live_sessions(site)
        finally:
            for client in (json_client, whep_client):
                await client.close(delete=False)

    asyncio.run(run())


def test_the_owner_ends_a_session_over_another_socket(site):
    async def run() -> None:
        client = await watch(site, "alice", "json")
        try:
            message = await ws_close(site, site.tokens["alice"], client.session)
            assert message == {"type": "closed", "session": client.session}
            assert client.session not in live_sessions(site)
        finally:
            await client.close(delete=False)

    asyncio.run(run())


@pytest.mark.parametrize("how", ["json", "whep", "websocket"])
def test_an_operator_ends_anyones_session(site, how):
    olga = site.tokens["olga"]

    async def run() -> None:
        client = await watch(site, "alice", "whep" if how == "whep" else "json")
        try:
            if how == "websocket":
                message = await ws_close(site, olga, client.session)
                assert message == {"type": "closed", "session": client.session}
            else:
                reply = await asyncio.to_thread(delete, site, client, olga)
                assert reply.status == (200 if how == "whep" else 204), reply.body
            assert client.session not in live_sessions(site)
        finally:
            await client.close(delete=False)

    asyncio.run(run())


@pytest.mark.production
def test_ownership_holds_with_the_worker_in_another_process(tmp_path):
    redis_url = redis_url_or_skip()
    with scratch_postgres_database() as postgres_url, ownership_site(
            tmp_path, production=True, DATABASE_URL=postgres_url, REDIS_URL=redis_url,
            PETCAM_CHANNEL_PREFIX=f"petcam-test-{uuid.uuid4().hex[:6]}",
            PETCAM_HEALTH_TIMEOUT="1.0") as prod:  # /health answers before the worker runs
        async def run() -> None:
            client = await watch(prod, "alice", "json")
            try:
                reply = await asyncio.to_thread(delete, prod, client, prod.tokens["bob"])
                assert (reply.status, reply.json()["error"]) == (404, "unknown_session")
                await client.wait_frames(len(client.frames) + 10)
                reply = await asyncio.to_thread(delete, prod, client, prod.tokens["alice"])
                assert reply.status == 204, reply.body
                assert client.session not in live_sessions(prod)
            finally:
                await client.close(delete=False)

        asyncio.run(run())
