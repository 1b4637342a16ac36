"""Many real aiortc viewers on one camera: frame rate, admission limit, dead peers, leaks.

One site (daphne + embedded media worker) and one simulator (320x240, low
bitrate to keep this 2-core machine's CPU for the viewers) serve the whole
module. Viewers are aiortc peers in this process; the server's view comes from
GET /api/cameras/default/ (viewers and process figures).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from streaming.media.shm import segment as shm_segment
from tests.support.processes import site_env, start_simulator, wait_for
from tests.support.webrtc_client import (
    MIN_SHARE,
    SignalingError,
    WebRtcClient,
    camera_fps,
    camera_mark,
    close_all,
    running_site,
    wait_live,
)

MAX_VIEWERS = 10
ICE_TIMEOUT = 5.0
SILENCE_TIMEOUT = 3.0
WATCHDOG_PERIOD = 1.0  # Viewers._watch checks once a second
WINDOW = 3.0  # seconds a frame rate is measured over


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("viewers")
    env = site_env(tmp, PETCAM_MAX_VIEWERS=str(MAX_VIEWERS), PETCAM_ICE_TIMEOUT=str(ICE_TIMEOUT),
                   PETCAM_PEER_SILENCE_TIMEOUT=str(SILENCE_TIMEOUT))
    with running_site(env, tmp / "logs") as site:
        sim = start_simulator(env, tmp / "logs", "--bitrate", "600")
        try:
            wait_live(site.base, site.token, width=320)
            site.baseline = process_figures(site)
            yield site
        finally:
            sim.stop()
    shm_segment.unlink(env["PETCAM_SHM_STREAM"])
    shm_segment.unlink(env["PETCAM_SHM_DETECTIONS"])


def process_figures(site) -> dict:
    """The worker's fds and asyncio tasks with no viewer: the highest of a few samples
    (the status request itself holds a socket and a task or two)."""
    samples = []
    for _ in range(5):
        samples.append(site.status()["process"])
        time.sleep(0.1)
    return {"open_fds": max(s["open_fds"] for s in samples),
            "asyncio_tasks": max(s["asyncio_tasks"] for s in samples)}


def count(site) -> int:
    return site.viewers()["count"]


async def acount(site) -> int:
    return await asyncio.to_thread(count, site)


async def connect(site, n: int, prefix: str = "v") -> list[WebRtcClient]:
    clients = [WebRtcClient(site.base, site.token, name=f"{prefix}{i}") for i in range(n)]
    await asyncio.gather(*(c.connect() for c in clients))
    await asyncio.gather(*(c.wait_frames(10) for c in clients))
    return clients


async def assert_full_rate(site, clients: list[WebRtcClient], seconds: float = WINDOW) -> None:
    """Each viewer receives (nearly) every frame the worker read in the same window."""
    first = await asyncio.to_thread(camera_mark, site)
    await asyncio.sleep(seconds)
    last = await asyncio.to_thread(camera_mark, site)
    camera = camera_fps(first, last)
    rates = [c.fps(first[0], last[0]) for c in clients]
    assert camera > 5, f"the simulator is barely running: {camera:.1f} fps"
    assert min(rates) >= MIN_SHARE * camera, (camera, rates)


async def wait_count(site, want: int, timeout: float, what: str) -> float:
    """Seconds until the server has `want` viewers."""
    start = time.monotonic()
    while (have := await acount(site)) != want:
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: still {have} viewers after {timeout}s, want {want}")
        await asyncio.sleep(0.2)
    return time.monotonic() - start


@pytest.fixture
def no_viewers_left(site):
    """Each test starts and ends with no viewer on the server."""
    assert count(site) == 0
    yield
    wait_for(lambda: count(site) == 0, ICE_TIMEOUT + 5, "every viewer to be gone")


def test_ten_viewers_get_the_full_frame_rate_and_the_eleventh_is_refused(site, no_viewers_left):
    async def run() -> None:
        clients = await connect(site, MAX_VIEWERS)
        try:
            await asyncio.sleep(1.0)  # past the GOP catch-up bursts
            await assert_full_rate(site, clients)
            server = await asyncio.to_thread(site.viewers)
            assert server["count"] == server["max"] == MAX_VIEWERS
            assert {s["session"] for s in server["sessions"]} == {c.session for c in clients}
            assert all(s["state"] == "connected" for s in server["sessions"])
            rejected_before = server["rejected_full"]

            # The eleventh: a clear 503, and the ten go on as before.
            extra = WebRtcClient(site.base, site.token, name="eleventh")
            with pytest.raises(SignalingError) as refused:
                await extra.connect()
            await extra.close()
            assert refused.value.status == 503
            assert refused.value.body["error"] == "max_viewers", refused.value.body
            await assert_full_rate(site, clients, 2.0)
            server = await asyncio.to_thread(site.viewers)
            assert server["count"] == MAX_VIEWERS
            assert server["rejected_full"] == rejected_before + 1

            # One leaves (DELETE): its slot is free again, a newcomer gets in at once.
            leaving = clients.pop(0)
            reply = await leaving.close()
            assert reply is not None and reply.status == 204, reply
            assert await acount(site) == MAX_VIEWERS - 1
            newcomer = (await connect(site, 1, "newcomer"))[0]
            clients.append(newcomer)
            assert await acount(site) == MAX_VIEWERS
            await assert_full_rate(site, clients, 2.0)
            # Once gone, the session is unknown.
            assert (await leaving.delete_session()).status == 404
        finally:
            await close_all(clients)
        await wait_count(site, 0, 5, "all ten closed")

    asyncio.run(run())


def test_a_stalled_viewer_does_not_slow_the_others_and_is_dropped(site, no_viewers_left):
    async def run() -> None:
        clients = await connect(site, 5)
        try:
            stalled, others = clients[0], clients[1:]
            await asyncio.sleep(0.5)
            stalled.stall()
            stalled_at = time.monotonic()
            await assert_full_rate(site, others)
            assert stalled.fps(stalled_at + 0.2, time.monotonic()) == 0  # it really stalled
            # No RTCP from it any more: the server drops it after the silence timeout.
            await wait_count(site, len(others), SILENCE_TIMEOUT + WATCHDOG_PERIOD + 3,
                             "the stalled viewer to be dropped")
            assert time.monotonic() - stalled_at >= SILENCE_TIMEOUT - 0.5
            server = await asyncio.to_thread(site.viewers)
            assert stalled.session not in {s["session"] for s in server["sessions"]}
            await assert_full_rate(site, others, 2.0)
        finally:
            await close_all(clients)

    asyncio.run(run())


def test_a_viewer_whose_socket_dies_is_removed_by_the_server(site, no_viewers_left):
    async def run() -> None:
        clients = await connect(site, 3)
        try:
            dead, alive = clients[0], clients[1:]
            dead.kill_socket()
            killed_at = time.monotonic()
            await wait_count(site, len(alive), SILENCE_TIMEOUT + WATCHDOG_PERIOD + 3,
                             "the dead viewer to be removed")
            assert time.monotonic() - killed_at >= SILENCE_TIMEOUT - 0.5
            server = await asyncio.to_thread(site.viewers)
            assert dead.session not in {s["session"] for s in server["sessions"]}
            await assert_full_rate(site, alive, 2.0)
            assert (await dead.delete_session()).status == 404
        finally:
            await close_all(clients)

    asyncio.run(run())


def test_a_peer_that_never_connects_is_removed_after_the_ice_timeout(site, no_viewers_left):
    async def run() -> None:
        ghost = WebRtcClient(site.base, site.token, name="ghost")
        reply = await ghost.send_offer(await ghost.create_offer())
        assert reply.status == 200, reply
        ghost.session = reply.json()["session"]
        ghost.kill_socket()  # the answer is never applied and nothing ever answers ICE
        try:
            server = await asyncio.to_thread(site.viewers)
            assert server["count"] == 1
            assert server["sessions"][0]["state"] in ("new", "connecting")
            waited = await wait_count(site, 0, ICE_TIMEOUT + WATCHDOG_PERIOD + 3,
                                      "the never-connected viewer to be removed")
            assert waited >= ICE_TIMEOUT - 1.5
        finally:
            await ghost.close(delete=False)

    asyncio.run(run())


def test_no_fds_or_tasks_leak_once_every_kind_of_viewer_has_left(site, no_viewers_left):
    """Closed, killed, stalled and never-connected viewers: afterwards the worker has the
    same open fds and asyncio tasks as before any viewer came (here and for the module)."""
    before = process_figures(site)

    async def run() -> None:
        clients = await connect(site, 6)
        ghost = WebRtcClient(site.base, site.token, name="ghost")
        assert (await ghost.send_offer(await ghost.create_offer())).status == 200
        ghost.kill_socket()
        try:
            during = await asyncio.to_thread(site.status)
            assert during["viewers"]["count"] == 7
            assert during["process"]["open_fds"] > before["open_fds"]
            clients[0].kill_socket()
            clients[1].stall()
            await asyncio.sleep(0.5)
        finally:
            await close_all(clients[2:])
            await close_all(clients[:2], delete=False)
            await ghost.close(delete=False)
        await wait_count(site, 0, ICE_TIMEOUT + WATCHDOG_PERIOD + 3, "every viewer to be gone")

    asyncio.run(run())

    def settled() -> dict | None:
        now = site.status()["process"]
        ok = all(now[k] <= before[k] and now[k] <= site.baseline[k] for k in before)
        return now if ok else None

    wait_for(settled, 10, f"fds and tasks back to {before} (module start: {site.baseline})",
             interval=0.3)
