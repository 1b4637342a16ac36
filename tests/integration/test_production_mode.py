"""Production mode on real services: PostgreSQL, Redis, daphne and a separate media worker."""

from __future__ import annotations

import secrets
import signal
import uuid

import pytest

from tests.support.processes import (
    Client,
    install,
    site_env,
    start_simulator,
    start_site,
    start_worker,
    wait_for,
)

pytestmark = pytest.mark.production



def test_daphne_and_a_separate_worker_over_redis_and_postgres(tmp_path, free_port,
                                                               postgres_url, redis_url):
    env = site_env(tmp_path, DATABASE_URL=postgres_url, REDIS_URL=redis_url,
                   PETCAM_CHANNEL_PREFIX=f"petcam-test-{uuid.uuid4().hex[:6]}",
                   DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
                   PETCAM_HEALTH_TIMEOUT="1.0")
    logs = tmp_path / "logs"
    username, password = install(env)
    worker = start_worker(env, logs)
    site = start_site(env, free_port, logs, plain_daphne=True)
    sim = start_simulator(env, logs)
    client = Client(f"http://127.0.0.1:{free_port}")
    try:
        client.login(username, password)

        def camera() -> dict:
            return client.get_json("/api/cameras/default/")[1]

        live = wait_for(lambda: (b := camera())["live"] and b["width"] and b, 30,
                        "live over Redis")
        assert (live["width"], live["height"]) == (320, 240)
        status, health = client.get_json("/health")
        assert status == 200 and health["status"] == "ok", health
        assert health["components"]["database"]["vendor"] == "postgresql"

        # The worker dies: the web tier stays up and says so; a new worker takes over.
        worker.stop(signal.SIGKILL)
        status, health = client.get_json("/health")
        assert status == 503 and health["components"]["media_worker"]["status"] == "error"
        assert camera()["state"] == "worker_unreachable"
        worker = start_worker(env, logs)
        wait_for(lambda: camera()["live"], 30, "the restarted worker to go live")
        assert client.get_json("/health")[0] == 200
    finally:
        sim.stop()
        site.stop()
        worker.stop()
