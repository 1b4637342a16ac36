"""GET /metrics on real processes: the media worker's petcam_ figures next to django-prometheus.

One embedded site (daphne + worker, SQLite) listening on every interface, so
a request can come from this machine's non-loopback address, with LOG_FORMAT=json
(its log is checked here too), and one simulator. The production test runs
daphne and a separate `manage.py media_worker` over Redis and PostgreSQL:
the worker's figures still reach /metrics, and a dead worker shows as
petcam_worker_up 0 instead of an error.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import socket
import sys
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streaming.media.shm import segment as shm_segment
from tests.support.alerting import exported_names, used_metric_names
from tests.support.processes import (
    VENV_BIN,
    Proc,
    create_token,
    install,
    manage,
    pick_free_port,
    site_env,
    start_simulator,
    start_worker,
    wait_for,
)
from tests.support.services import redis_url_or_skip, scratch_postgres_database
from tests.support.webrtc_client import WebRtcClient, get_token, http, wait_live


def outside_address() -> str | None:
    """This machine's address on its default route (not loopback), if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.123", 9))  # no packet is sent for a UDP connect
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def scrape(base: str, headers: dict[str, str] | None = None) -> dict[tuple, float]:
    """/metrics as {(sample name, ((label, value), ...)): value}."""
    reply = http("GET", base + "/metrics", headers=headers, timeout=10)
    assert reply.status == 200, (reply.status, reply.body[:300])
    assert reply.header("Content-Type").startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def scrape_until(base: str, predicate, what: str, timeout: float = 15) -> dict:
    def check() -> dict | None:
        samples = scrape(base)
        return samples if predicate(samples) else None

    return wait_for(check, timeout, what, interval=0.3)


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def wait_serving(proc: Proc, base: str) -> None:
    def up() -> bool:
        assert proc.alive(), proc.log()
        try:
            return http("GET", base + "/health", timeout=2).status in (200, 503)
        except OSError:
            return False

    wait_for(up, 30, "the site to listen")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics")
    logs = tmp / "logs"
    env = site_env(tmp, LOG_FORMAT="json")
    username, password = install(env)
    port = pick_free_port()
    proc = Proc("site", [sys.executable, "manage.py", "serve", "--host", "0.0.0.0",
                         "--port", str(port)], env, logs)
    sim = None
    try:
        base = f"http://127.0.0.1:{port}"
        wait_serving(proc, base)
        token = get_token(base, username, password)
        sim = start_simulator(env, logs, "--bitrate", "600")
        wait_live(base, token, width=320)
        yield type("Site", (), {"base": base, "port": port, "env": env, "token": token,
                                "proc": proc, "username": username})
    finally:
        if sim is not None:
            sim.stop()
        proc.stop()
        shm_segment.unlink(env["PETCAM_SHM_STREAM"])
        shm_segment.unlink(env["PETCAM_SHM_DETECTIONS"])


def test_loopback_metrics_count_frames_a_viewer_and_its_bytes(site):
    first = scrape(site.base)
    assert value(first, "petcam_worker_up", camera="default") == 1
    assert value(first, "petcam_camera_live", camera="default") == 1
    assert 0 <= value(first, "petcam_worker_last_frame_age_seconds", camera="default") < 2
    assert value(first, "petcam_viewers", camera="default") == 0
    assert value(first, "petcam_worker_resident_memory_bytes", camera="default") > 20 * 2**20
    # django-prometheus's own registry is on the same page.
    assert any(name.startswith("django_http_requests") for name, _ in first)

    async def watch() -> tuple[dict, dict]:
        client = WebRtcClient(site.base, site.token)
        await client.connect()
        await client.wait_frames(45)
        during = await asyncio.to_thread(scrape, site.base)
        await client.close()
        after = await asyncio.to_thread(
            scrape_until, site.base, lambda s: value(s, "petcam_viewers", camera="default") == 0,
            "the viewer to be gone from /metrics")
        return during, after

    during, after = asyncio.run(watch())
    frames = "petcam_frames_read_total"
    assert value(during, frames, camera="default") > value(first, frames, camera="default")
    assert value(during, "petcam_viewers", camera="default") == 1
    assert value(during, "petcam_viewer_sessions_total", camera="default") == 1
    sent = value(during, "petcam_viewer_frames_sent_total", camera="default")
    sent_bytes = value(during, "petcam_viewer_bytes_sent_total", camera="default")
    assert sent >= 45 and sent_bytes > sent * 100
    assert value(during, "petcam_sink_dropped_frames_total", camera="default",
                 sink="viewers") == 0
    ttff = value(during, "petcam_viewer_time_to_first_frame_seconds_count", camera="default")
    assert ttff == 1
    latency_n = value(during, "petcam_frame_send_latency_seconds_count", camera="default")
    latency_sum = value(during, "petcam_frame_send_latency_seconds_sum", camera="default")
    assert latency_n > 10 and 0 < latency_sum / latency_n < 0.5
    # Live frames left within a second of the camera writing them, nearly all of them
    # (the bound is loose: this machine is shared; the benchmarks give the real figures).
    within = value(during, "petcam_frame_send_latency_seconds_bucket", camera="default",
                   le="1.0")
    assert within >= 0.9 * latency_n
    # Counters never go down when the viewer leaves.
    assert value(after, "petcam_viewer_bytes_sent_total", camera="default") >= sent_bytes
    assert value(after, "petcam_viewer_sessions_total", camera="default") == 1


def test_recording_figures_and_json_log_lines(site):
    headers = {"Authorization": f"Bearer {site.token}", "Content-Type": "application/json"}
    api = f"{site.base}/api/cameras/default/recording"
    reply = http("POST", f"{api}/start/", b'{"name": "metrics"}', headers)
    assert reply.status == 201, reply.body
    try:
        recording = scrape_until(
            site.base, lambda s: (value(s, "petcam_recording_frames", camera="default") or 0) > 10,
            "recording frames on /metrics")
        assert value(recording, "petcam_recording_active", camera="default") == 1
        assert value(recording, "petcam_recording_bytes", camera="default") > 1000
    finally:
        stop = http("POST", f"{api}/stop/", b"{}", headers)
    assert stop.status == 200, stop.body
    idle = scrape(site.base)
    assert value(idle, "petcam_recording_active", camera="default") == 0
    assert value(idle, "petcam_sink_dropped_frames_total", camera="default",
                 sink="recorder") == 0

    # LOG_FORMAT=json: petcam's lines are JSON objects, one per event.
    records = []
    for line in site.proc.log().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    messages = [(r["logger"], r["message"]) for r in records]
    assert any(lg == "petcam.viewer" and " joined default " in m for lg, m in messages)
    assert any(lg == "petcam.viewer" and " left default " in m for lg, m in messages)
    assert any(lg == "petcam.recorder" and "started" in m for lg, m in messages), messages
    assert any(lg == "petcam.recorder" and "stopped" in m for lg, m in messages), messages


def test_every_metric_the_alerts_and_the_dashboard_use_is_exported(site):
    """deploy/prometheus's rules and deploy/grafana's dashboard name only series a real
    /metrics page has: renaming a metric breaks this test, not the operator's alerting."""
    reply = http("GET", site.base + "/metrics", timeout=10)
    assert reply.status == 200
    exported = exported_names(text_string_to_metric_families(reply.body.decode()))
    used = used_metric_names()
    assert len(used) >= 30, sorted(used)
    assert used <= exported, f"not on /metrics: {sorted(used - exported)}"
    samples = scrape(site.base)
    # The figures added for the alerts: disk space, failed recordings, the detector.
    free = value(samples, "petcam_disk_free_bytes")
    assert 0 < free <= value(samples, "petcam_disk_total_bytes")
    assert value(samples, "petcam_recording_min_free_bytes") > 0
    assert value(samples, "petcam_recordings_failed_total", camera="default") == 0
    assert value(samples, "petcam_detector_attached", camera="default") == 1


def test_off_loopback_only_a_staff_token_may_read_metrics(site):
    address = outside_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to come from")
    outside = f"http://{address}:{site.port}"
    host = {"Host": f"127.0.0.1:{site.port}"}  # ALLOWED_HOSTS; the peer address is `address`
    reply = http("GET", outside + "/metrics", headers=host)
    assert reply.status == 403 and reply.json()["error"] == "forbidden", reply.body
    # A forwarded-for header claiming loopback changes nothing: REMOTE_ADDR decides.
    spoofed = {**host, "X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"}
    assert http("GET", outside + "/metrics", headers=spoofed).status == 403
    # A user who is not staff is refused too; a bad token as well.
    manage(site.env, "shell", "-c",
           "from django.contrib.auth.models import User;"
           "User.objects.create_user('viewer-only', password=None)")
    plain = create_token(site.env, "viewer-only")
    assert http("GET", outside + "/metrics",
                headers={**host, "Authorization": f"Token {plain}"}).status == 403
    assert http("GET", outside + "/metrics",
                headers={**host, "Authorization": "Bearer nope"}).status == 403
    # The admin's token (staff), Bearer or Token.
    for scheme in ("Bearer", "Token"):
        samples = scrape(outside, {**host, "Authorization": f"{scheme} {site.token}"})
        assert value(samples, "petcam_worker_up", camera="default") == 1


@pytest.mark.production
def test_production_worker_figures_reach_metrics_and_a_dead_worker_is_up_0(tmp_path):
    redis_url = redis_url_or_skip()
    with scratch_postgres_database() as postgres_url:
        env = site_env(tmp_path, DATABASE_URL=postgres_url, REDIS_URL=redis_url,
                       PETCAM_CHANNEL_PREFIX=f"petcam-metrics-{uuid.uuid4().hex[:6]}",
                       DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
                       PETCAM_METRICS_TIMEOUT="1")
        logs = tmp_path / "logs"
        username, password = install(env)
        worker = start_worker(env, logs)
        port = pick_free_port()
        web = Proc("site", [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port),
                            "petcam_site.asgi:application"], env, logs)
        sim = start_simulator(env, logs, "--bitrate", "600")
        base = f"http://127.0.0.1:{port}"
        try:
            wait_serving(web, base)
            token = get_token(base, username, password)
            wait_live(base, token, width=320)
            first = scrape(base)
            assert value(first, "petcam_worker_up", camera="default") == 1

            async def watch() -> dict:
                async with WebRtcClient(base, token) as client:
                    await client.connect()
                    await client.wait_frames(15)
                    # The first frames may all be the cached GOP (not live, so no
                    # latency): scrape until live frames have been timed too.
                    return await asyncio.to_thread(wait_for, live_frame_timed, 10,
                                                   "a live frame's send latency")

            def live_frame_timed() -> dict | None:
                samples = scrape(base)
                timed = value(samples, "petcam_frame_send_latency_seconds_count",
                              camera="default")
                return samples if timed else None

            second = asyncio.run(watch())
            frames = "petcam_frames_read_total"
            assert value(second, frames, camera="default") > value(first, frames,
                                                                    camera="default") > 0
            # daphne runs no worker here: these figures came from the worker process.
            assert value(second, "petcam_viewers", camera="default") == 1
            assert value(second, "petcam_viewer_frames_sent_total", camera="default") >= 15
            assert value(second, "petcam_frame_send_latency_seconds_count",
                         camera="default") > 0
            worker.stop(signal.SIGKILL)
            start = time.monotonic()
            dead = scrape(base)
            assert time.monotonic() - start < 5
            assert value(dead, "petcam_worker_up", camera="default") == 0
            assert value(dead, frames, camera="default") is None
        finally:
            sim.stop()
            web.stop()
            worker.stop()
            shm_segment.unlink(env["PETCAM_SHM_STREAM"])
            shm_segment.unlink(env["PETCAM_SHM_DETECTIONS"])
