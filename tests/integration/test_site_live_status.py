"""End to end on real processes: `make run`'s setup, the live status, /health, camera restarts."""

from __future__ import annotations

import pytest

from tests.support.processes import (
    Client,
    create_admin,
    install,
    manage,
    migrate,
    site_env,
    start_simulator,
    start_site,
    wait_for,
)


@pytest.fixture
def site(tmp_path, free_port):
    env = site_env(tmp_path)
    username, password = install(env)
    proc = start_site(env, free_port, tmp_path / "logs")
    client = Client(f"http://127.0.0.1:{free_port}")
    client.login(username, password)
    yield env, client, proc
    proc.stop()


def camera(client: Client) -> dict:
    status, body = client.get_json("/api/cameras/default/")
    assert status == 200, body
    return body


def test_admin_password_is_random_and_printed_once(tmp_path):
    env = site_env(tmp_path)
    migrate(env)
    _, first = create_admin(env)
    again = manage(env, "ensure_admin")
    assert first not in again and "exists" in again
    # Letters and digits: safe to paste after --password, into a shell or a URL.
    assert len(first) == 16 and first.isascii() and first.isalnum()
    other = site_env(tmp_path / "other")
    migrate(other)
    assert create_admin(other)[1] != first


def test_live_status_follows_the_camera_off_and_on(site, tmp_path):
    env, client, _ = site
    logs = tmp_path / "logs"
    # No camera yet: the site is up and says so.
    body = camera(client)
    assert body["state"] == "waiting" and body["live"] is False
    status, health = client.get_json("/health")
    assert status == 200 and health["status"] == "degraded"
    assert health["components"]["shm_reader"]["detail"] == "waiting for camera"

    sim = start_simulator(env, logs, "--fps", "30", "--profile", "high")
    try:
        live = wait_for(lambda: (b := camera(client))["live"] and b["fps"] > 5
                        and b["width"] and b, 20, "the camera to go live")
        assert (live["width"], live["height"]) == (320, 240)
        assert live["profile"] == "High" and live["profile_level_id"].startswith("64")
        first_read = live["reader"]["frames_read"]
        status, health = client.get_json("/health")
        assert status == 200 and health["status"] == "ok", health
        assert health["components"]["shm_reader"]["state"] == "live"
        assert 5 < live["fps"] < 40  # ~30; a loaded machine slows the simulator
        assert live["reader"]["skipped"] == {}
    finally:
        sim.stop()
    off = wait_for(lambda: not (b := camera(client))["live"] and b, 10, "camera off")
    assert off["state"] in ("waiting", "stalled")
    assert off["reader"]["frames_read"] >= first_read > 0
    status, health = client.get_json("/health")
    assert status == 200 and health["components"]["shm_reader"]["detail"] == "waiting for camera"

    # The daemon comes back at another resolution and profile: no server restart.
    sim = start_simulator(env, logs, "--width", "480", "--height", "272", "--profile", "main")
    try:
        back = wait_for(lambda: (b := camera(client))["live"] and b["width"] == 480 and b, 20,
                        "the camera to come back")
        assert (back["width"], back["height"], back["profile"]) == (480, 272, "Main")
        assert back["reader"]["restarts"] >= 1
    finally:
        sim.stop()


def test_faulty_camera_is_survived_and_counted(site, tmp_path):
    env, client, proc = site
    sim = start_simulator(env, tmp_path / "logs", "--faults", "--fault-every", "5")
    try:
        body = wait_for(lambda: (b := camera(client))["live"] and b["fps"] > 5
                        and sum(b["reader"]["skipped"].values()) >= 5 and b, 20,
                        "faulty frames to be counted while the picture goes on")
        assert set(body["reader"]["skipped"]) <= {"oversize", "other_format", "unknown_format",
                                                 "not_annexb", "empty"}
    finally:
        sim.stop()
    assert proc.alive()


def test_anonymous_users_get_the_login_page_or_a_json_error(site, free_port):
    _, _, _ = site
    anon = Client(f"http://127.0.0.1:{free_port}")
    status, headers, _ = anon.request("GET", "/")
    assert status == 302 and headers["Location"].startswith("/accounts/login/")
    status, body = anon.get_json("/api/cameras/")
    assert status == 403 and body["error"] == "not_authenticated"
    status, _, page = anon.request("GET", "/accounts/login/")
    assert status == 200 and b"Log in" in page
    status, body = anon.get_json("/health")
    assert status == 200 and "components" in body


def test_unknown_camera_and_unknown_path_are_json_404(site):
    _, client, _ = site
    status, body = client.get_json("/api/cameras/nope/")
    assert status == 404 and body == {"error": "unknown_camera", "detail": "No camera 'nope'."}
    status, body = client.get_json("/api/cameras/..%2F..%2Fetc/")
    assert status == 404 and body["error"] in ("unknown_camera", "not_found")


def test_health_is_503_when_the_worker_is_missing(tmp_path, free_port):
    env = site_env(tmp_path, PETCAM_WORKER_MODE="external", PETCAM_HEALTH_TIMEOUT="0.5")
    username, password = install(env)
    proc = start_site(env, free_port, tmp_path / "logs")
    try:
        client = Client(f"http://127.0.0.1:{free_port}")
        status, body = client.get_json("/health")
        assert status == 503 and body["status"] == "error"
        assert body["components"]["media_worker"]["status"] == "error"
        assert body["components"]["database"]["status"] == "ok"
        client.login(username, password)
        assert camera(client)["state"] == "worker_unreachable"
    finally:
        proc.stop()
