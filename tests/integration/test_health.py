"""GET /health for every camera in the ORM, on a real site.

One embedded site with two cameras: `default` (a simulator writes it) and
`garden` (no camera daemon yet). A third camera added while the site runs,
with the embedded worker's camera watch off, has no worker serving it (as when
an operator adds a camera and forgets its `petcam-worker@` unit): that is an
error, 503. The database outage and the worker kill are in
tests/integration/test_faults.py and tests/integration/test_site_live_status.py.
"""

from __future__ import annotations

import pytest

from petcam_site import health
from tests.support.processes import manage, migrate, site_env, wait_for
from tests.support.webrtc_client import http, running_site, simulated_camera


def add_camera(env: dict[str, str], slug: str, position: int) -> None:
    tag = env["PETCAM_SHM_STREAM"].rsplit("_", 1)[0]
    manage(env, "shell", "-c",
           "from streaming.models import Camera;"
           f"Camera.objects.create(slug={slug!r}, name={slug.title()!r}, position={position},"
           f"stream_segment='{tag}_{slug}', detections_segment='{tag}_{slug}_det')")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("health")
    # Watching for new cameras off: the camera added below stays without a worker.
    env = site_env(tmp, PETCAM_HEALTH_TIMEOUT="1.0", PETCAM_CAMERA_WATCH_SECONDS="0")
    migrate(env)
    add_camera(env, "garden", 1)
    with running_site(env, tmp / "logs", migrate=False) as site, simulated_camera(site):
        yield site


def get_health() -> tuple[int, dict]:
    reply = http("GET", BASE[0] + "/health")
    return reply.status, reply.json()


BASE: list[str] = []


def test_a_camera_that_is_off_degrades_but_the_site_is_up(site):
    BASE[:] = [site.base]

    def both_reported() -> tuple[int, dict] | None:
        status, body = get_health()
        # Retried: on a loaded machine one 1 s worker call may time out (an "error").
        wanted = {"default": "ok", "garden": "degraded"}
        live = body["components"]["shm_reader"].get("fps", 0) > 5
        return (status, body) if body["cameras"] == wanted and live else None

    status, body = wait_for(both_reported, 20, "default ok and garden degraded")
    assert status == 200 and body["status"] == "degraded", body
    assert body["cameras"] == {"default": "ok", "garden": "degraded"}
    components = body["components"]
    reader = components["shm_reader"]
    # The primary camera's figures on top, every camera's under "cameras".
    assert reader["state"] == "live" and reader["fps"] > 5 and reader["frames_read"] > 0
    assert reader["status"] == "degraded"
    assert reader["cameras"]["garden"]["detail"] == "waiting for camera"
    assert reader["cameras"]["garden"]["segment"].endswith("_garden")
    assert components["media_worker"]["status"] == "ok"
    assert components["media_worker"]["cameras"]["garden"]["pid"] == \
        components["media_worker"]["pid"]  # one embedded worker serves both
    assert components["detections_reader"]["cameras"]["default"]["state"] == "attached"
    assert components["recorder"]["status"] == "ok"
    assert components["recorder"]["recording"] is False
    assert components["database"] == {"status": "ok", "vendor": "sqlite"}
    disk = components["disk"]
    assert disk["status"] == "ok" and disk["free_bytes"] > disk["min_free_bytes"]
    assert "path" not in disk  # /health is public: no file paths


def test_a_camera_without_a_worker_is_an_error(site):
    BASE[:] = [site.base]
    add_camera(site.env, "porch", 2)  # the running worker loaded its cameras at start
    status, body = wait_for(lambda: (r := get_health())[1]["cameras"].get("porch") and r, 10,
                            "the new camera on /health")
    assert status == 503 and body["status"] == "error", body
    assert body["cameras"]["porch"] == "error"
    worker = body["components"]["media_worker"]
    assert worker["cameras"]["porch"]["status"] == "error"
    assert "did not answer" in worker["cameras"]["porch"]["detail"]
    assert worker["cameras"]["default"]["status"] == "ok"
    # Disabled cameras are not expected to have a worker.
    manage(site.env, "shell", "-c", "from streaming.models import Camera;"
           "Camera.objects.filter(slug='porch').update(enabled=False)")
    status, body = get_health()
    assert status == 200 and set(body["cameras"]) == {"default", "garden"}, body


def test_too_little_disk_for_a_recording_degrades(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "not-yet-created" / "media"
    settings.PETCAM_RECORDING_MIN_FREE_BYTES = 1
    ok = health.check_disk()
    assert ok["status"] == "ok" and ok["free_bytes"] > 1
    settings.PETCAM_RECORDING_MIN_FREE_BYTES = ok["total_bytes"] + 1
    low = health.check_disk()
    assert low["status"] == "degraded" and "recording" in low["detail"]
