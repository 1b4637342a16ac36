"""Revocation reaches open sockets and live video (issue 14 item 5).

The probe: after the token was revoked, the user deactivated and the group removed, the
open socket kept receiving boxes (253 messages in 20 s) and its offers were still
answered. Now a camera socket lives as long as the access it was opened with: a change
(token revoke, logout, deactivation, role or camera access change, password change)
closes the sockets it affects with the error a new connection would get, and ends the
user's live video that the change revokes; every offer/close checks again, and so does
each socket every PETCAM_WS_RECHECK_SECONDS for changes no signal reports.

Sites: the embedded one (changes made through the site itself: the API, the logout
form, the admin), a production stack (daphne + separate media worker over Redis and
PostgreSQL; changes made by `manage.py shell`, a third process), and a small embedded
one for the periodic check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import websockets

from streaming.media.shm import segment as shm_segment
from tests.support.mse_client import MseClient
from tests.support.processes import Client, manage, site_env, start_simulator, start_worker
from tests.support.services import redis_url_or_skip, scratch_postgres_database
from tests.support.webrtc_client import (
    Site,
    WebRtcClient,
    http,
    running_site,
    wait_live,
)

PASSWORD = "Correct-horse-battery-9"
USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
MAKE_USERS = f"""
import json
from tests.support.tokens import make_token
from tests.support.roles import make_user
users = {{n: make_user(n, "viewers", password={PASSWORD!r}) for n in {USERS!r}}}
print(json.dumps({{n: [u.pk, make_token(u)] for n, u in users.items()}}))
"""
CLOSE_WAIT = 10.0  # seconds a socket has to close once its access is gone


@contextlib.contextmanager
def revocation_site(tmp: Path, *, production: bool = False, simulate: bool = True,
                    **extra_env: str) -> Iterator[Site]:
    """A site with the users above (`site.users`: name -> (id, token)) and, if
    `simulate`, a live camera; `production`: plain daphne + a separate media worker."""
    env = site_env(tmp, PETCAM_ICE_TIMEOUT="5", PETCAM_PEER_SILENCE_TIMEOUT="5", **extra_env)
    logs = tmp / "logs"
    sim = worker = None
    try:
        with running_site(env, logs, plain_daphne=production) as running:
            out = manage(env, "shell", "-c", MAKE_USERS)
            running.users = {n: tuple(v) for n, v in
                             json.loads(out.strip().splitlines()[-1]).items()}
            if production:
                worker = start_worker(env, logs)
            if simulate:
                sim = start_simulator(env, logs, "--bitrate", "300")
                wait_live(running.base, running.token, width=320)
            yield running
    finally:
        for proc in (sim, worker):
            if proc is not None:
                proc.stop()
        shm_segment.unlink(env["PETCAM_SHM_STREAM"])
        shm_segment.unlink(env["PETCAM_SHM_DETECTIONS"])


def shell(site: Site, code: str) -> None:
    """Run `code` in `manage.py shell`: another process than the site's."""
    manage(site.env, "shell", "-c", "from django.contrib.auth.models import User, Group\n"
                                    + code)


def live_sessions(site: Site) -> set[str]:
    return {s["session"] for s in site.viewers()["sessions"]}


def browser(site: Site, user: str) -> Client:
    client = Client(site.base)
    client.login(user, PASSWORD)
    return client


class Socket:
    """A camera socket that keeps every message it gets and how it ended."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.messages: list[dict] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, site: Site, *, token: str | None = None,
                   cookies: Client | None = None) -> Socket:
        port = site.base.rsplit(":", 1)[1]
        url = f"ws://127.0.0.1:{port}/ws/cameras/default/"
        headers = {}
        if token:
            url += f"?token={token}"
        if cookies:
            headers = {"Cookie": "; ".join(f"{c.name}={c.value}" for c in cookies.jar),
                       "Origin": site.base}
        socket = cls(await websockets.connect(url, additional_headers=headers))
        await socket.next("status")  # live: the camera's events flow
        return socket

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                self.messages.append(json.loads(raw))

    async def next(self, *kinds: str, timeout: float = 10.0) -> dict:
        """The next message of one of `kinds` (or "error") from now on."""
        start = len(self.messages)

        async def wait() -> dict:
            while True:
                for message in self.messages[start:]:
                    if message["type"] in (*kinds, "error"):
                        return message
                if self._reader.done():
                    raise AssertionError(f"socket closed ({self.ws.close_code}) before "
                                         f"{kinds}: {self.messages[-3:]}")
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(wait(), timeout)

    async def offer(self) -> dict:
        """Send a real aiortc offer: the answer or the error."""
        client = WebRtcClient("http://unused", None)
        sdp = await client.create_offer()
        await client.pc.close()
        await self.ws.send(json.dumps({"type": "offer", "sdp": sdp}))
        return await self.next("answer")

    async def still_open(self) -> None:
        await self.ws.send(json.dumps({"type": "ping"}))
        assert await self.next("pong") == {"type": "pong"}

    async def ended(self, timeout: float = CLOSE_WAIT) -> tuple[int, dict]:
        """(close code, the last message) once the server closed it; nothing may follow
        the last message, which must be the refusal."""
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.ws.close_code, self.messages[-1]

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


async def watch(site: Site, token: str, signaling: str = "json") -> WebRtcClient:
    client = WebRtcClient(site.base, token, signaling=signaling)
    await client.connect()
    await client.wait_frames(5)
    return client


async def video_ended(site: Site, client: WebRtcClient, timeout: float = CLOSE_WAIT) -> None:
    """The server ended `client`'s session: gone from the worker, no more frames."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while client.session in await asyncio.to_thread(live_sessions, site):
        assert loop.time() < deadline, f"session {client.session} still live"
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # frames already on the wire
    seen = len(client.frames)
    await asyncio.sleep(1.0)
    assert len(client.frames) == seen, "frames still arrive after the session ended"


def ended_with(detail_reason: str, refusal: str, code: int) -> Callable[[tuple], None]:
    def check(result: tuple[int, dict]) -> None:
        close_code, last = result
        assert last["type"] == "error" and last["error"] == refusal, last
        assert last["detail"].startswith(f"Your access ended ({detail_reason})"), last
        assert close_code == code, close_code
    return check


# --- the embedded site: changes made through the site ------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with revocation_site(tmp_path_factory.mktemp("revocation"),
                         PETCAM_WS_RECHECK_SECONDS="0") as running:
        yield running


def test_a_revoked_token_closes_its_sockets_and_ends_its_video_only(site):
    _, token = site.users["alice"]
    page = browser(site, "alice")

    async def run() -> None:
        by_token = await Socket.open(site, token=token)
        by_cookie = await Socket.open(site, cookies=page)
        on_cookie = await by_cookie.offer()  # video opened over the page's socket
        video = await watch(site, token, "whep")
        mse_by_token = await MseClient(site.base, token).connect()  # live over WebSocket
        mse_by_cookie = await MseClient(site.base, cookies=page).connect()
        try:
            await mse_by_token.wait_fragments(3)
            await mse_by_cookie.wait_fragments(3)
            reply = await asyncio.to_thread(http, "DELETE", f"{site.base}/api/auth/token/",
                                            None, {"Authorization": f"Bearer {token}"})
            assert reply.status == 204
            ended_with("API token revoked", "not_authenticated", 4401)(await by_token.ended())
            await video_ended(site, video)
            assert await mse_by_token.ended(CLOSE_WAIT) == 4401
            assert mse_by_token.texts[-1]["error"] == "not_authenticated"
            # The browser's login is another credential: its sockets and video stay.
            await by_cookie.still_open()
            assert on_cookie["session"] in await asyncio.to_thread(live_sessions, site)
            await mse_by_cookie.wait_fragments(len(mse_by_cookie.fragments) + 5)
            transports = [s["transport"] for s in site.viewers()["sessions"]]
            assert transports.count("mse") == 1, transports
        finally:
            await by_cookie.close()
            await mse_by_cookie.close()
            await video.close(delete=False)

    asyncio.run(run())


def test_logout_closes_that_logins_sockets_and_ends_their_video(site):
    _, token = site.users["bob"]
    page = browser(site, "bob")

    async def run() -> None:
        by_cookie = await Socket.open(site, cookies=page)
        on_cookie = await by_cookie.offer()
        by_token = await Socket.open(site, token=token)
        try:
            status, _, _ = await asyncio.to_thread(
                page.request, "POST", "/accounts/logout/",
                urllib.parse.urlencode({"csrfmiddlewaretoken": page.csrf()}).encode(),
                {"Content-Type": "application/x-www-form-urlencoded",
                 "Referer": site.base + "/"})
            assert status in (200, 302)  # Django's "logged out" page, or a redirect
            ended_with("logged out", "not_authenticated", 4401)(await by_cookie.ended())
            assert on_cookie["session"] not in await asyncio.to_thread(live_sessions, site)
            await by_token.still_open()  # the app's token was not logged out
        finally:
            await by_token.close()

    asyncio.run(run())


def admin_save_user(admin: Client, user_id: int, username: str, *, active: bool,
                    groups: tuple[int, ...] = ()) -> None:
    """POST the admin's user form as an admin clicking Save (unticked: inactive)."""
    path = f"/admin/auth/user/{user_id}/change/"
    status, _, _ = admin.request("GET", path)
    assert status == 200
    fields = [("csrfmiddlewaretoken", admin.csrf()), ("username", username),
              ("first_name", ""), ("last_name", ""), ("email", ""),
              ("date_joined_0", "2025-01-01"), ("date_joined_1", "00:00:00"),
              ("camera_access-TOTAL_FORMS", "0"), ("camera_access-INITIAL_FORMS", "0"),
              ("camera_access-MIN_NUM_FORMS", "0"), ("camera_access-MAX_NUM_FORMS", "1000"),
              ("_save", "Save"), *(("groups", str(g)) for g in groups)]
    if active:
        fields.append(("is_active", "on"))
    status, headers, body = admin.request(
        "POST", path, urllib.parse.urlencode(fields).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "Referer": admin.base + path})
    assert status == 302, body.decode(errors="replace")[-2000:]


def test_deactivated_and_out_of_the_group_in_the_admin_the_socket_ends(site):
    """The probe's sequence, through the admin: the socket is closed, its video ended,
    nothing more reaches it, and the user's offers are no longer answered."""
    carol_id, token = site.users["carol"]
    admin = browser_admin(site)

    async def run() -> None:
        sockets = [await Socket.open(site, token=token) for _ in range(2)]
        await sockets[0].offer()
        video = await watch(site, token)
        try:
            await asyncio.to_thread(admin_save_user, admin, carol_id, "carol", active=False)
            for socket in sockets:
                ended_with("account changed", "not_authenticated", 4401)(await socket.ended())
            await video_ended(site, video)
            # And she cannot come back: no socket, no offer.
            again = await websockets.connect(
                f"ws://127.0.0.1:{site.base.rsplit(':', 1)[1]}/ws/cameras/default/"
                f"?token={token}")
            assert json.loads(await again.recv())["error"] == "not_authenticated"
            await again.close()
            late = WebRtcClient(site.base, token)
            reply = await late.send_offer(await late.create_offer())
            await late.pc.close()
            assert (reply.status, reply.json()["error"]) == (403, "authentication_failed")
        finally:
            await video.close(delete=False)

    asyncio.run(run())


def browser_admin(site: Site) -> Client:
    admin = Client(site.base)
    admin.login(site.username, site.password)
    return admin


def test_a_change_no_signal_reports_is_caught_by_the_next_offer(site):
    """`manage.py shell` runs in another process: with the embedded in-memory channel
    layer its signals reach no socket. The socket's next offer checks and is refused."""
    _, token = site.users["dave"]

    async def run() -> None:
        socket = await Socket.open(site, token=token)
        before = await asyncio.to_thread(live_sessions, site)
        await asyncio.to_thread(shell, site,
                                "User.objects.filter(username='dave').update(is_active=False)")
        refused = await socket.offer()
        assert refused["error"] == "not_authenticated", refused
        ended_with("checked on 'offer'", "not_authenticated", 4401)(await socket.ended())
        assert await asyncio.to_thread(live_sessions, site) == before  # not answered

    asyncio.run(run())


# --- production: daphne + worker over Redis, changes from another process ---------------------


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    redis_url = redis_url_or_skip()
    with scratch_postgres_database() as postgres_url, revocation_site(
            tmp_path_factory.mktemp("revocation-prod"), production=True,
            DATABASE_URL=postgres_url, REDIS_URL=redis_url,
            PETCAM_CHANNEL_PREFIX=f"petcam-test-{uuid.uuid4().hex[:6]}",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(40), PETCAM_HEALTH_TIMEOUT="1.0",
            PETCAM_WS_RECHECK_SECONDS="0") as running:
        yield running


@pytest.mark.production
def test_over_redis_a_role_removed_elsewhere_closes_sockets_and_ends_video(production):
    site = production
    _, token = site.users["erin"]

    async def run() -> None:
        socket = await Socket.open(site, token=token)
        video = await watch(site, token, "whep")
        assert (await asyncio.to_thread(site.status))["process"]["pid"] != site.proc.pid
        try:
            await asyncio.to_thread(shell, site,
                                    "User.objects.get(username='erin').groups.clear()")
            ended_with("roles changed", "forbidden", 4403)(await socket.ended())
            await video_ended(site, video)  # ended by the worker process
        finally:
            await video.close(delete=False)

    asyncio.run(run())


@pytest.mark.production
def test_over_redis_camera_access_and_password_changes(production):
    site = production
    _, token = site.users["frank"]

    async def run() -> None:
        socket = await Socket.open(site, token=token)
        video = await watch(site, token)
        try:
            # Limited to another camera: this one is now unknown to him.
            await asyncio.to_thread(shell, site, (
                "from streaming.models import Camera, CameraAccess\n"
                "attic = Camera.objects.create(slug='attic', name='Attic', enabled=False)\n"
                "CameraAccess.objects.create(user=User.objects.get(username='frank'),"
                " camera=attic)"))
            ended_with("camera access changed", "unknown_camera", 4404)(await socket.ended())
            await video_ended(site, video)
        finally:
            await video.close(delete=False)
        await asyncio.to_thread(shell, site, "from streaming.models import CameraAccess\n"
                                             "CameraAccess.objects.all().delete()")
        # A password change ends every socket and video of his, token ones too ...
        socket = await Socket.open(site, token=token)
        video = await watch(site, token)
        try:
            await asyncio.to_thread(shell, site, (
                "frank = User.objects.get(username='frank')\n"
                "frank.set_password('Another-horse-battery-7')\nfrank.save()"))
            ended_with("password changed", "not_authenticated", 4401)(await socket.ended())
            await video_ended(site, video)
        finally:
            await video.close(delete=False)
        # ... while the token itself stays valid for a new connection.
        socket = await Socket.open(site, token=token)
        await socket.still_open()
        await socket.close()

    asyncio.run(run())


# --- the periodic check -------------------------------------------------------------------------


def test_sockets_check_again_periodically(tmp_path):
    with revocation_site(tmp_path, simulate=False, PETCAM_WS_RECHECK_SECONDS="1") as site:
        _, token = site.users["alice"]
        page = browser(site, "alice")

        async def run() -> None:
            by_token = await Socket.open(site, token=token)
            by_cookie = await Socket.open(site, cookies=page)
            # Another process, so no signal reaches the sockets (in-memory channel layer).
            await asyncio.to_thread(
                shell, site, "User.objects.filter(username='alice').update(is_active=False)")
            for socket in (by_token, by_cookie):
                ended_with("periodic check", "not_authenticated", 4401)(await socket.ended())

        asyncio.run(run())
