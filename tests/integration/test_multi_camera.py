"""Two cameras in one embedded site, as `manage.py serve --simulate --cameras 2` runs them.

The shared two-camera site (tests/support/two_camera_site.py) runs default at 320x240 and
garden at 352x288, so everything that comes back says which camera it came from:
the SPS in a viewer's access units, the recording's decoded frame size, and the pet
box size of the stored detections (the simulator's pet sprite scales with the frame).
"""

from __future__ import annotations

import asyncio
import io
import time

import av
import pytest

from streaming.media.h264.sps import parse_sps
from streaming.media.shm import segment as shm_segment
from streaming.simulator.scene import pet_size
from tests.support.processes import manage, start_simulator, wait_for
from tests.support.two_camera_site import SIZES, TwoCameraSite
from tests.support.webrtc_client import WebRtcClient, nal_units


@pytest.fixture
def site(two_camera_site) -> TwoCameraSite:
    return two_camera_site


def test_both_cameras_live_at_their_own_size(site):
    cams = site.wait_both_live()
    assert list(cams) == ["default", "garden"]  # ordered by position
    assert cams["garden"]["stream_segment"].endswith("_garden")
    assert cams["default"]["stream_segment"] != cams["garden"]["stream_segment"]


async def watch(site: TwoCameraSite, camera: str) -> tuple[int, int, int]:
    """An aiortc viewer on `camera`: (frames received, SPS width, SPS height)."""
    async with WebRtcClient(site.base, site.token, camera=camera, name=camera) as client:
        await client.connect()
        frames = await client.wait_frames(10, timeout=20)
        sps = next(nal for f in frames for nal in nal_units(f.data) if nal[0] & 0x1F == 7)
        info = parse_sps(sps)
        return len(frames), info.width, info.height


def test_each_viewer_gets_its_own_camera(site):
    site.wait_both_live()

    async def both():
        return await asyncio.gather(watch(site, "default"), watch(site, "garden"))

    (n1, w1, h1), (n2, w2, h2) = asyncio.run(both())
    assert n1 >= 10 and n2 >= 10
    assert (w1, h1) == SIZES["default"]
    assert (w2, h2) == SIZES["garden"]


def recording_ids(site: TwoCameraSite, camera: str) -> set[int]:
    page = site.call("GET", f"/api/recordings/?camera={camera}&limit=500").json()
    return {r["id"] for r in page["results"]}


def test_recording_one_camera_does_not_record_the_other(site):
    site.wait_both_live()
    site.stop_recordings()
    before = {slug: recording_ids(site, slug) for slug in SIZES}
    started = site.call("POST", "/api/cameras/garden/recording/start/", {"name": "garden only"})
    assert started.status == 201, started.body
    rec = started.json()
    assert rec["camera"] == "garden"
    try:
        assert site.call("GET", "/api/cameras/default/recording/").json()["recording"] is False
        busy = site.call("GET", "/api/cameras/garden/recording/").json()
        assert busy["recording"] is True and busy["id"] == rec["id"]
        wait_for(lambda: site.call("GET", "/api/cameras/garden/recording/").json()
                 .get("frame_count", 0) >= 15, 20, "garden's recording to get frames")
        assert recording_ids(site, "default") == before["default"]
        # The default camera can record at the same time, on its own.
        other = site.call("POST", "/api/cameras/default/recording/start/", {})
        assert other.status == 201, other.body
        assert site.call("POST", "/api/cameras/default/recording/stop/").status == 200
    finally:
        stopped = site.call("POST", "/api/cameras/garden/recording/stop/")
    assert stopped.status == 200, stopped.body
    assert stopped.json()["frame_count"] >= 15
    assert site.call("POST", "/api/cameras/garden/recording/stop/").status == 409

    assert recording_ids(site, "garden") - before["garden"] == {rec["id"]}
    new_default = recording_ids(site, "default") - before["default"]
    assert len(new_default) == 1 and rec["id"] not in new_default

    # The garden file holds garden's picture.
    reply = site.call("GET", f"/api/recordings/{rec['id']}/download/")
    assert reply.status == 200
    with av.open(io.BytesIO(reply.body)) as container:
        frame = next(container.decode(container.streams.video[0]))
        assert (frame.width, frame.height) == SIZES["garden"]


def test_detections_are_stored_per_camera(site):
    site.wait_both_live()

    def samples(camera: str) -> list[dict]:
        reply = site.call("GET", f"/api/cameras/{camera}/detections/")
        assert reply.status == 200, reply.body
        body = reply.json()
        assert body["camera"] == camera
        return body["results"]

    # one sample per second per camera: wait for a few of each
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = {slug: samples(slug) for slug in SIZES}
        if all(len(rows) >= 2 for rows in got.values()):
            break
        time.sleep(0.5)
    for slug, rows in got.items():
        assert len(rows) >= 2, (slug, rows)
        width, height = SIZES[slug]
        # the pet sprite's size depends on the frame size: each camera's own detector
        assert {(r["bbox"]["w"], r["bbox"]["h"]) for r in rows} == {pet_size(width, height)}
        for r in rows:
            assert r["bbox"]["x"] + r["bbox"]["w"] <= width
            assert r["bbox"]["y"] + r["bbox"]["h"] <= height


def test_a_camera_added_while_running_is_served(site, tmp_path):
    """The embedded worker picks up a camera added in the admin, no restart."""
    stream, detections = (f"{site.env[k]}_porch"
                          for k in ("PETCAM_SHM_STREAM", "PETCAM_SHM_DETECTIONS"))
    manage(site.env, "shell", "-c",
           "from streaming.models import Camera; Camera.objects.create(slug='porch', "
           f"name='Porch', position=5, stream_segment={stream!r}, "
           f"detections_segment={detections!r})")
    env = {**site.env, "PETCAM_SHM_STREAM": stream, "PETCAM_SHM_DETECTIONS": detections}
    sim = start_simulator(env, tmp_path / "logs", "--width", "384", "--height", "288",
                          "--fps", "10", "--bitrate", "200")
    try:
        def porch_live():
            reply = site.call("GET", "/api/cameras/porch/")
            body = reply.json() if reply.status == 200 else {}
            return body.get("live") and body.get("width") and body  # width: SPS seen
        status = wait_for(porch_live, 30, "the added camera to be served live", interval=0.5)
        assert (status["width"], status["height"]) == (384, 288)
        assert status["name"] == "Porch"
        assert list(site.cameras()) == ["default", "garden", "porch"]
    finally:
        sim.stop()
        # disabled: gone from the lists and the pages (its reader just waits, unused)
        manage(site.env, "shell", "-c", "from streaming.models import Camera; "
               "Camera.objects.filter(slug='porch').update(enabled=False)")
        shm_segment.unlink(stream)
        shm_segment.unlink(detections)
    assert list(site.cameras()) == ["default", "garden"]
