"""WebRTC signaling in production mode: plain daphne and a separate `manage.py media_worker`
talking over the real Redis channel layer, the catalog in PostgreSQL.

The offer travels daphne -> Redis -> worker, the answer back the same way, and the
aiortc viewer then gets its media straight from the worker process. A killed
worker makes offers fail fast with 504 worker_timeout; a restarted one serves again.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
import uuid

import pytest

from streaming.media.shm import segment as shm_segment
from tests.support.mse_client import MseClient
from tests.support.processes import site_env, start_simulator, start_worker, wait_for
from tests.support.services import redis_url_or_skip, scratch_postgres_database
from tests.support.webrtc_client import (
    MIN_SHARE,
    WebRtcClient,
    camera_fps,
    camera_mark,
    http,
    running_site,
    wait_live,
)

pytestmark = pytest.mark.production

SIGNALING_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def postgres_url():
    with scratch_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def redis_url() -> str:
    return redis_url_or_skip()


@pytest.fixture(scope="module")
def production(tmp_path_factory, postgres_url, redis_url):
    """daphne + media worker + simulator; `production.worker` may be replaced by a test."""
    tmp = tmp_path_factory.mktemp("prod-signaling")
    env = site_env(tmp, DATABASE_URL=postgres_url, REDIS_URL=redis_url,
                   PETCAM_CHANNEL_PREFIX=f"petcam-test-{uuid.uuid4().hex[:6]}",
                   DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
                   PETCAM_SIGNALING_TIMEOUT=str(SIGNALING_TIMEOUT), PETCAM_HEALTH_TIMEOUT="1.0",
                   PETCAM_MAX_VIEWERS="4", PETCAM_ICE_TIMEOUT="3",
                   PETCAM_PEER_SILENCE_TIMEOUT="5")
    logs = tmp / "logs"
    with running_site(env, logs, plain_daphne=True) as site:
        site.worker = start_worker(env, logs)
        sim = start_simulator(env, logs, "--bitrate", "600")
        try:
            wait_live(site.base, site.token, width=320)
            yield site
        finally:
            sim.stop()
            site.worker.stop()
    shm_segment.unlink(env["PETCAM_SHM_STREAM"])
    shm_segment.unlink(env["PETCAM_SHM_DETECTIONS"])


async def watch(site, signaling: str = "json") -> WebRtcClient:
    client = WebRtcClient(site.base, site.token, signaling=signaling, name=signaling)
    await client.connect()
    await client.wait_frames(30)
    return client


def test_offer_over_redis_is_answered_by_the_separate_worker(production):
    site = production
    worker_pid = site.worker.popen.pid
    assert worker_pid != site.proc.popen.pid

    async def run() -> None:
        clients = await asyncio.gather(watch(site, "json"), watch(site, "whep"))
        try:
            status = await asyncio.to_thread(site.status)
            # The viewers live in the worker process, not in daphne.
            assert status["process"]["pid"] == worker_pid
            assert status["viewers"]["count"] == 2
            assert {s["session"] for s in status["viewers"]["sessions"]} == {
                c.session for c in clients}
            first = await asyncio.to_thread(camera_mark, site)
            await asyncio.sleep(2)
            last = await asyncio.to_thread(camera_mark, site)
            camera = camera_fps(first, last)
            rates = [c.fps(first[0], last[0]) for c in clients]
            assert camera > 5 and min(rates) >= MIN_SHARE * camera, (camera, rates)
            assert (await clients[0].delete_session()).status == 204
            assert (await clients[1].delete_session()).status == 200
        finally:
            for client in clients:
                await client.close(delete=False)

    asyncio.run(run())
    assert site.viewers()["count"] == 0


def test_mse_fragments_cross_redis_from_the_separate_worker(production):
    """WS /ws/cameras/default/mse/ in daphne; the fragments come from the worker process
    over the Redis channel layer, acknowledgements go back the same way. Four sockets in
    one daphne share its Redis inbox: their GOP replays at once must all get through."""
    site = production

    async def run() -> None:
        clients = [MseClient(site.base, site.token) for _ in range(4)]
        await asyncio.gather(*(c.connect() for c in clients))
        try:
            # 3 s: far past the window, so acknowledgements work
            await asyncio.gather(*(c.wait_fragments(90) for c in clients))
            status = await asyncio.to_thread(site.status)
            assert status["process"]["pid"] == site.worker.popen.pid != site.proc.popen.pid
            mse = [s for s in status["viewers"]["sessions"] if s["transport"] == "mse"]
            assert len(mse) == 4 and min(s["frames_sent"] for s in mse) >= 90, mse
        finally:
            await asyncio.gather(*(c.close() for c in clients))
        for client in clients:
            frames = client.decode()
            assert len(frames) == len(client.fragments)
            assert {(f.width, f.height) for f in frames} == {(320, 240)}

    asyncio.run(run())
    wait_for(lambda: site.viewers()["count"] == 0, 10, "the MSE viewers to end with their sockets")


def offer_body(site) -> bytes:
    async def make() -> str:
        client = WebRtcClient(site.base, None)
        sdp = await client.create_offer()
        await client.pc.close()
        return sdp

    return json.dumps({"type": "offer", "sdp": asyncio.run(make())}).encode()


def restart_worker(site) -> None:
    site.worker = start_worker(site.env, site.logs)
    wait_for(lambda: site.status().get("process", {}).get("pid") == site.worker.popen.pid, 30,
             "the new worker to answer")
    wait_live(site.base, site.token, width=320)


def test_killed_worker_means_504_fast_and_a_restarted_one_serves_again(production):
    site = production
    headers = {"Authorization": f"Bearer {site.token}", "Content-Type": "application/json"}
    body = offer_body(site)
    site.worker.stop(signal.SIGKILL)

    start = time.monotonic()
    reply = http("POST", f"{site.base}/api/cameras/default/webrtc/offer/", body, headers)
    elapsed = time.monotonic() - start
    assert reply.status == 504 and reply.json()["error"] == "worker_timeout", reply.body
    assert SIGNALING_TIMEOUT - 0.5 <= elapsed < SIGNALING_TIMEOUT + 3, elapsed
    # WHEP and ending a session need the worker too: the same clear answer.
    reply = http("POST", f"{site.base}/whep/default", json.loads(body)["sdp"].encode(),
                 {**headers, "Content-Type": "application/sdp"})
    assert reply.status == 504 and reply.json()["error"] == "worker_timeout", reply.body
    reply = http("DELETE", f"{site.base}/api/cameras/default/webrtc/{'0' * 16}/",
                 headers=headers)
    assert reply.status == 504 and reply.json()["error"] == "worker_timeout", reply.body

    restart_worker(site)

    async def run() -> None:
        client = await watch(site)
        try:
            status = await asyncio.to_thread(site.status)
            assert status["process"]["pid"] == site.worker.popen.pid
            assert client.session in {s["session"] for s in status["viewers"]["sessions"]}
        finally:
            await client.close()

    asyncio.run(run())
    wait_for(lambda: site.viewers()["count"] == 0, 10, "no viewer left")


def test_offers_that_timed_out_do_not_become_viewers_of_the_restarted_worker(production):
    """A user retrying while the worker is down gets 504s; those requests must not be
    served later by the next worker (each would hold a viewer slot until the ICE timeout)."""
    site = production
    headers = {"Authorization": f"Bearer {site.token}", "Content-Type": "application/json"}
    body = offer_body(site)
    site.worker.stop(signal.SIGKILL)
    for _ in range(2):
        reply = http("POST", f"{site.base}/api/cameras/default/webrtc/offer/", body, headers)
        assert reply.status == 504, reply.body
    restart_worker(site)
    viewers = site.viewers()
    assert viewers["count"] == 0, viewers
