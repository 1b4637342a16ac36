"""Day and night on real processes: the simulator switches the board's camera (camera_id
0 -> 1, 320x240 -> 480x360) on SIGUSR1 while a real aiortc viewer watches, a recording
runs and a WebSocket client listens. The video goes on (the night camera's SPS/IDR
reaches the viewer), the switch is an event (WebSocket, camera API, /health, the live
page's label), and the recording continues in a new segment that lists the switch and
plays (ffprobe, PyAV).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest
import websockets
from playwright.sync_api import expect, sync_playwright

from streaming.media.h264.nal import NalType, split_nal_units
from streaming.media.h264.sps import parse_sps
from tests.support.browser import launch
from tests.support.processes import site_env, wait_for
from tests.support.recordings import decode_file, ffprobe
from tests.support.webrtc_client import WebRtcClient, http, running_site, simulated_camera

NIGHT = (480, 360)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("day-night")
    with running_site(site_env(tmp), tmp / "logs") as site, \
            simulated_camera(site, "--bitrate", "300", "--gop", "30", "--encode", "live",
                             "--night-width", str(NIGHT[0]),
                             "--night-height", str(NIGHT[1])) as sim:
        site.sim = sim
        yield site


def api(site, method: str, path: str, body: dict | None = None) -> dict:
    reply = http(method, site.base + path, json.dumps(body).encode() if body is not None else None,
                 {"Authorization": f"Bearer {site.token}", "Content-Type": "application/json"})
    assert 200 <= reply.status < 300, (method, path, reply.status, reply.body[:300])
    return reply.json()


def sps_size(au: bytes) -> tuple[int, int] | None:
    for nal in split_nal_units(au):
        if nal[0] & 0x1F == NalType.SPS:
            info = parse_sps(nal)
            return info.width, info.height
    return None


def switch_to(site, name: str) -> dict:
    """SIGUSR1 the simulator (unless already there) and wait for the worker to see it."""
    if site.status()["active_camera"] != name:
        os.kill(site.sim.pid, signal.SIGUSR1)
    return wait_for(lambda: (s := site.status())["active_camera"] == name and s, 20,
                    f"the {name} camera", interval=0.2)


def test_a_switch_keeps_video_and_recording_going_and_is_an_event_everywhere(site):
    day = switch_to(site, "day")
    assert (day["camera_id"], day["width"], day["height"]) == (0, 320, 240)
    switches_before = day["camera_switches"]
    port = site.base.rsplit(":", 1)[1]

    async def scenario():
        url = f"ws://127.0.0.1:{port}/ws/cameras/default/?token={site.token}"
        async with websockets.connect(url) as ws, WebRtcClient(site.base, site.token) as viewer:
            await viewer.connect()
            await viewer.wait_frames(10, timeout=20)
            started = await asyncio.to_thread(api, site, "POST",
                                              "/api/cameras/default/recording/start/",
                                              {"format": "mp4"})
            await asyncio.sleep(1.0)  # a second of day in the recording
            seen_before = len(viewer.frames)
            os.kill(site.sim.pid, signal.SIGUSR1)
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 20))
                if event["type"] == "camera_switch":
                    break

            def night_frames() -> int:
                after = viewer.frames[seen_before:]
                first = next((i for i, f in enumerate(after) if sps_size(f.data) == NIGHT),
                             None)
                return 0 if first is None else len(after) - first

            while night_frames() < 20:  # the night camera's IDR, then its P-frames
                await asyncio.sleep(0.1)
            stopped = await asyncio.to_thread(api, site, "POST",
                                              "/api/cameras/default/recording/stop/", {})
            return started, event, viewer.frames[seen_before:], stopped

    started, event, frames, last = asyncio.run(asyncio.wait_for(scenario(), 90))

    # The WebSocket event, the camera API and /health all say night, from day.
    assert (event["camera"], event["camera_id"], event["active_camera"]) == \
        ("default", 1, "night")
    assert (event["from_camera_id"], event["from_camera"]) == (0, "day")
    status = site.status()
    assert (status["active_camera"], status["camera_id"]) == ("night", 1)
    assert (status["width"], status["height"]) == NIGHT
    assert status["camera_switches"] == switches_before + 1
    assert status["last_camera_switch"]["at"] == event["at"]
    assert status["processor"]["camera_switches"] >= 1
    health = http("GET", site.base + "/health").json()["components"]["shm_reader"]
    assert (health["active_camera"], health["camera_id"]) == ("night", 1)
    assert health["last_camera_switch"]["from_camera"] == "day"
    metrics = http("GET", site.base + "/metrics").body.decode()
    assert 'petcam_camera_active_id{camera="default"} 1.0' in metrics
    assert f'petcam_camera_switches_total{{camera="default"}} {switches_before + 1}.0' in metrics

    # The viewer got the night camera's IDR with its SPS/PPS in front, decodable from it.
    sizes = [sps_size(f.data) for f in frames]
    first_night = sizes.index(NIGHT)
    night = frames[first_night:]
    assert NalType.IDR in [nal[0] & 0x1F for nal in split_nal_units(night[0].data)]
    assert all(size in (None, (320, 240)) for size in sizes[:first_night])

    # The recording went on in a new segment that lists the switch at its start.
    assert last["previous_segment"] is not None and last["status"] == "complete"
    first = api(site, "GET", f"/api/recordings/{last['previous_segment']}/")
    assert first["id"] == started["id"] and first["camera_switches"] == []
    (switch,) = last["camera_switches"]
    assert switch == {"t": 0.0, "camera_id": 1, "active_camera": "night", "from_camera_id": 0}
    assert (first["width"], first["height"], last["width"], last["height"]) == (320, 240, *NIGHT)
    media = Path(site.env["PETCAM_VAR_DIR"]) / "media"
    for row in (first, last):
        path = media / row["file"]
        probe = ffprobe(path)
        assert (probe["width"], probe["height"]) == (row["width"], row["height"])
        assert int(probe["nb_read_frames"]) == row["frame_count"] > 10
        pictures, errors, packets = decode_file(path)
        assert errors == [] and packets[0].is_keyframe and len(pictures) == row["frame_count"]


@pytest.mark.browser
def test_the_live_page_labels_the_active_camera(site):
    switch_to(site, "day")
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page()
        page.goto(site.base + "/")
        page.get_by_label("Username").fill(site.username)
        page.get_by_label("Password").fill(site.password)
        page.get_by_role("button", name="Log in").click()
        label = page.get_by_test_id("day-night")
        expect(label).to_have_text("day camera", timeout=20_000)
        switch_to(site, "night")
        expect(label).to_have_text("night camera", timeout=10_000)
        expect(page.get_by_test_id("resolution")).to_have_text("480×360", timeout=10_000)
        assert "switched to the night camera" in label.get_attribute("title")
        browser.close()
