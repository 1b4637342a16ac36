"""What /health tells a stranger, on a real site behind a (simulated) reverse proxy.

Issue 14: anonymous /health listed every camera slug (hidden ones too), viewer counts,
recording state, pids, shm names and an RTSP host. Now anyone gets the status word and
each component's status only; staff (token or session) and the machine itself get the
figures. The site trusts 127.0.0.1 as its proxy (PETCAM_TRUSTED_PROXIES): a request
that comes "through the proxy" carries the client's address in X-Forwarded-For, as
nginx appends it. The access log (PETCAM_ACCESS_LOG=1) names that client and no secret.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.support.processes import manage, migrate, site_env, wait_for
from tests.support.webrtc_client import http, running_site, simulated_camera

OUTSIDE = "203.0.113.9"
RTSP = "rtsp://spy:hunter2@cam.internal.example:554/live"
# Nothing of these may reach a stranger.
SECRETS = ("default", "attic", "cam.internal", "hunter2", "pid", "petcam_e2e", "viewers",
           "rss", "segment", "recording", "bytes")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("health-anonymous")
    env = site_env(tmp, PETCAM_TRUSTED_PROXIES="127.0.0.1,::1", PETCAM_ACCESS_LOG="1",
                   PETCAM_HEALTH_TIMEOUT="2.0")
    migrate(env)
    manage(env, "add_camera", "--slug", "attic", "--source", RTSP, "--position", "5")
    with running_site(env, tmp / "logs", migrate=False) as site, simulated_camera(site):
        yield site


def health(site, forwarded: str | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    reply = http("GET", site.base + "/health", headers=headers)
    return reply.status, reply.json()


def viewer_token(site) -> str:
    out = manage(site.env, "shell", "-c",
                 "from tests.support.roles import make_user;"
                 "from tests.support.tokens import make_token;"
                 "print(make_token(make_user('plain-viewer', 'viewers')))")
    return out.strip().splitlines()[-1]


def assert_summary_only(status: int, body: dict) -> None:
    assert set(body) == {"status", "components"}, body
    assert body["status"] in ("ok", "degraded", "error")
    assert status == (503 if body["status"] == "error" else 200)
    assert set(body["components"]) == {"database", "disk", "media_worker", "shm_reader",
                                       "detections_reader", "recorder"}
    assert all(c == {"status": c["status"]} and c["status"] in ("ok", "degraded", "error")
               for c in body["components"].values()), body
    text = json.dumps(body)
    assert not [s for s in SECRETS if s in text], text


@pytest.mark.parametrize("forwarded", [OUTSIDE, f"127.0.0.1, {OUTSIDE}",
                                       f"::1, 10.0.0.1, {OUTSIDE}"])
def test_a_stranger_gets_the_status_word_and_component_statuses(site, forwarded):
    assert_summary_only(*health(site, forwarded))


def test_a_user_who_is_not_staff_gets_the_summary_too(site):
    assert_summary_only(*health(site, OUTSIDE, viewer_token(site)))


def test_staff_and_the_machine_itself_get_the_figures(site):
    for _status, body in (health(site, OUTSIDE, site.token), health(site)):
        assert {"status", "cameras", "components"} <= set(body)
        assert set(body["cameras"]) == {"default", "attic"}
        worker = body["components"]["media_worker"]
        assert worker["pid"] and "viewers" in worker
        attic = body["components"]["shm_reader"]["cameras"]["attic"]
        assert attic["source"] == "rtsp" and "cam.internal.example" in attic["url"]
        assert "hunter2" not in json.dumps(body)  # masked even for staff


def test_the_summary_agrees_with_the_details(site):
    def statuses() -> tuple[dict, dict] | None:
        _, full = health(site)
        _, summary = health(site, OUTSIDE)
        mine = {name: c["status"] for name, c in full["components"].items()}
        theirs = {name: c["status"] for name, c in summary["components"].items()}
        # figures move between the two calls (the attic's reader retries): ask again
        return (mine, theirs) if mine == theirs and full["status"] == summary["status"] \
            else None

    wait_for(statuses, timeout=30, what="the same statuses in both answers", interval=0.5)


def test_the_access_log_names_the_client_and_cuts_secrets(site):
    http("GET", site.base + "/health", headers={"X-Forwarded-For": f"127.0.0.1, {OUTSIDE}"})
    http("GET", site.base + "/api/recordings/1/hls/index.m3u8?sig=SIGNEDLINKSECRET&x=1",
         headers={"X-Forwarded-For": OUTSIDE})

    async def socket() -> None:
        port = site.base.rsplit(":", 1)[1]
        url = f"ws://127.0.0.1:{port}/ws/cameras/default/?token={site.token}"
        async with websockets.connect(url,
                                      additional_headers={"X-Forwarded-For": OUTSIDE}) as ws:
            await asyncio.wait_for(ws.recv(), 10)

    asyncio.run(socket())

    def logged() -> str | None:
        text = site.proc.log()
        return text if "?token=[redacted]" in text and "sig=[redacted]" in text else None

    text = wait_for(logged, timeout=15, what="the access-log lines", interval=0.3)
    assert f'{OUTSIDE} "GET /health"' in text
    assert f'{OUTSIDE} "GET /api/recordings/1/hls/index.m3u8?sig=[redacted]&x=1"' in text
    assert "SIGNEDLINKSECRET" not in text and site.token not in text
