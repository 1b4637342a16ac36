"""An RTSP camera end to end: a real RTSP server on loopback feeds petcam's site.

tests/support/rtsp_server.py plays a 2 s clip of the simulator's scene (frame numbers
drawn into the pictures) in a loop, RTP over TCP or UDP, behind Basic
credentials. The site serves two cameras from it: `garage` (TCP) and `porch`
(UDP); the shared-memory `default` camera is switched off. Checked: access
units reach an aiortc viewer byte for byte as the server sent them; the
credentials never show; the server dies and comes back, or falls silent, and
petcam reconnects with backoff while the viewer keeps its session; a
recording from RTSP decodes cleanly; a real Chromium plays the camera.
"""

from __future__ import annotations

import json
import statistics
import time

import av
import pytest
from playwright.sync_api import expect, sync_playwright

from streaming.media.sources import SourceError, mask_credentials, parse_source
from streaming.simulator.scene import decode_frame_number
from tests.support.browser import READ_VIDEO_FRAME_CODE, launch, screenshot
from tests.support.processes import manage, migrate, site_env, wait_for
from tests.support.rtsp_server import RtspTestServer, encode_clip
from tests.support.webrtc_client import (
    MIN_SHARE,
    LoopThread,
    WebRtcClient,
    camera_fps,
    camera_mark,
    camera_status,
    http,
    nal_units,
    running_site,
)

FPS, FRAMES, GOP = 25, 50, 25
USER, PASSWORD = "petcam", "s3cr3t-Pw"


@pytest.fixture(scope="module")
def clip() -> list[bytes]:
    return encode_clip(320, 240, FPS, FRAMES, GOP)


@pytest.fixture(scope="module")
def server(clip):
    srv = RtspTestServer(clip, FPS, credentials=(USER, PASSWORD)).start()
    yield srv
    srv.close()


class Camera:
    """One camera of the running site, as camera_mark() and the tests read it."""

    def __init__(self, site, slug: str) -> None:
        self.site, self.slug = site, slug

    def status(self) -> dict:
        return camera_status(self.site.base, self.site.token, self.slug)


@pytest.fixture(scope="module")
def site(tmp_path_factory, server):
    tmp = tmp_path_factory.mktemp("rtsp")
    env = site_env(tmp)
    migrate(env)
    # manage.py add_camera three times, in one process (each start costs seconds).
    calls = [["--slug", "default", "--update", "--disabled"],
             ["--slug", "garage", "--name", "Garage", "--source", server.url()],
             ["--slug", "porch", "--source", server.url(fragment="#transport=udp")]]
    out = manage(env, "shell", "-c", "from django.core.management import call_command\n"
                 f"for args in {calls!r}: call_command('add_camera', *args)")
    assert out.count("camera") == 3 and PASSWORD not in out and "***@" in out, out
    with running_site(env, tmp / "logs", migrate=False) as s:
        s.loop = LoopThread()
        try:
            yield s
        finally:
            s.loop.close()
    assert PASSWORD not in s.proc.log(), "the RTSP password leaked into the site's log"


@pytest.fixture(scope="module")
def garage(site) -> Camera:
    cam = Camera(site, "garage")
    wait_for(lambda: cam.status()["live"], 20, "the RTSP camera to go live")
    return cam


def clip_index(clip: list[bytes]) -> dict[tuple[bytes, ...], int]:
    return {tuple(nal_units(au)): i for i, au in enumerate(clip)}


def positions(frames, index: dict) -> list[int | None]:
    """Where each received access unit is in the clip (None: not a clip unit, byte for byte)."""
    return [index.get(tuple(nal_units(f.data))) for f in frames]


def consecutive(found: list[int | None]) -> bool:
    steps = zip(found, found[1:], strict=False)
    return None not in found and all((b - a) % FRAMES == 1 for a, b in steps)


def test_source_strings_are_parsed_and_credentials_masked():
    spec = parse_source("rtsp://user:pa:ss@cam.local:8554/live?channel=1#transport=udp")
    assert (spec.kind, spec.transport) == ("rtsp", "udp")
    assert spec.url == "rtsp://user:pa:ss@cam.local:8554/live?channel=1"  # fragment not sent
    assert spec.display == "rtsp://***@cam.local:8554/live?channel=1"
    assert parse_source("rtsp://cam/live?transport=udp").url == "rtsp://cam/live"
    assert parse_source("rtsp://cam/live").transport == "tcp"
    assert parse_source("file:///srv/demo%20clip.mp4").url == "/srv/demo clip.mp4"
    assert parse_source("").kind == "shm"
    for bad in ("rtsp:///nohost", "rtsp://cam/x#transport=sctp", "rtsp://cam/x#fps=5",
                "file://host/x.mp4", "file:relative.mp4", "http://cam/x"):
        with pytest.raises(SourceError):
            parse_source(bad)
    assert mask_credentials("opening rtsp://u:p@h/x: 401") == "opening rtsp://***@h/x: 401"


def test_access_units_arrive_byte_exact_and_credentials_never_show(site, server, garage, clip):
    status = garage.status()
    source = status["source"]
    assert (source["kind"], source["transport"], source["connected"]) == ("rtsp", "tcp", True)
    assert source["url"] == f"rtsp://***@127.0.0.1:{server.port}/cam"
    assert (status["width"], status["height"]) == (320, 240)
    assert status["profile_level_id"][:2] == "4d"
    assert PASSWORD not in json.dumps(status)
    listed = http("GET", site.base + "/api/cameras/",
                  headers={"Authorization": f"Bearer {site.token}"})
    assert listed.status == 200 and PASSWORD not in listed.body.decode()

    async def watch() -> list:
        async with WebRtcClient(site.base, site.token, camera="garage") as client:
            await client.connect()
            return list(await client.wait_frames(2 * GOP, timeout=20))

    frames = site.loop.run(watch())
    found = positions(frames, clip_index(clip))
    # The GOP cache, then live: every unit the server's clip holds, in order, none changed.
    assert consecutive(found), found
    assert clip[found[0]][4] & 0x1F == 7  # starts at an IDR with its SPS
    # RTP timestamps follow the camera's pts (1/25 s = 3600 ticks), not arrival times.
    live = frames[-GOP:]
    steps = [b.rtp_ts - a.rtp_ts for a, b in zip(live, live[1:], strict=False)]
    assert abs(statistics.median(steps) - 90_000 / FPS) <= 90, steps


def test_udp_transport(site, server):
    porch = Camera(site, "porch")
    status = wait_for(lambda: (s := porch.status())["live"] and s, 20, "the UDP camera live")
    assert status["source"]["transport"] == "udp"
    first = camera_mark(porch)
    time.sleep(1.0)
    assert camera_fps(first, camera_mark(porch)) > 0.5 * FPS
    assert any(s.transport == "udp" for s in server.playing)


def test_server_restart_and_silence_reconnect_while_the_viewer_stays(site, server, garage, clip):
    index = clip_index(clip)
    client_box: dict = {}

    async def connect() -> None:
        client = client_box["c"] = WebRtcClient(site.base, site.token, camera="garage")
        await client.connect()
        await client.wait_frames(GOP)

    site.loop.run(connect())
    client = client_box["c"]
    try:
        _restart_and_silence(site, server, garage, index, client)
    finally:
        site.loop.run(client.close())


def _restart_and_silence(site, server, garage: Camera, index: dict, client) -> None:
    session = client.session
    reconnects = garage.status()["source"]["reconnects"]

    # The camera dies: petcam notices at once, says why and when it retries.
    server.stop()
    down = wait_for(lambda: (s := garage.status())["state"] == "waiting"
                    and s["source"]["last_error"] and s["source"]["retry_in_s"] is not None
                    and s, 10, "the camera reported down with a retry")
    print("camera down:", down["source"])
    assert not down["live"] and PASSWORD not in json.dumps(down)

    # It comes back on the same address: reconnect with backoff, same viewer session.
    time.sleep(1.0)
    restarted = len(client.frames)
    server.start()
    up = wait_for(lambda: (s := garage.status())["live"]
                  and s["source"]["reconnects"] > reconnects and s, 20, "the reconnect")
    assert up["source"]["errors"] >= 2  # the loss, then at least one refused retry
    site.loop.run(client.wait_frames(restarted + GOP + 5, timeout=20))
    after = positions(client.frames[restarted:], index)
    # The new stream from its first IDR on, unit for unit. (aiortc's jitter buffer hands
    # over the last frame from before the outage only when the next one arrives.)
    assert 0 in after[:2] and consecutive(after[after.index(0):]), after
    assert client.session == session and client.pc.connectionState == "connected"
    assert Camera(site, "garage").status()["viewers"]["count"] == 1

    # The camera falls silent but keeps the connection: stalled, then timed out, reconnected.
    reconnects = up["source"]["reconnects"]
    server.paused = True
    try:
        wait_for(lambda: garage.status()["state"] == "stalled", 10, "the stall to show")
        timed_out = wait_for(lambda: "timed out" in (garage.status()["source"]["last_error"]
                                                     or ""), 15, "the read timeout")
        assert timed_out
    finally:
        server.paused = False
    wait_for(lambda: (s := garage.status())["live"] and s["source"]["reconnects"] > reconnects,
             20, "the reconnect after the silence")
    resumed = len(client.frames)
    site.loop.run(client.wait_frames(resumed + GOP, timeout=20))
    assert client.session == session


def metric(body: str, name: str, camera: str, kind: str) -> float:
    """One sample's value from Prometheus text."""
    prefix = f'{name}{{camera="{camera}",kind="{kind}"}} '
    values = [float(line[len(prefix):]) for line in body.splitlines() if line.startswith(prefix)]
    assert len(values) == 1, (prefix, [ln for ln in body.splitlines() if name in ln])
    return values[0]


def test_health_and_metrics_show_the_rtsp_source_masked(site, server, garage):
    # After the restart test, when run with it: reconnects and errors are then above 0.
    before = garage.status()["source"]
    health = http("GET", site.base + "/health")
    assert PASSWORD not in health.body.decode() and USER not in health.body.decode()
    reader = health.json()["components"]["shm_reader"]["cameras"]["garage"]
    assert reader["source"] == "rtsp" and "segment" not in reader
    assert reader["url"] == f"rtsp://***@127.0.0.1:{server.port}/cam"
    assert (reader["transport"], reader["state"], reader["connected"]) == ("tcp", "live", True)
    assert before["reconnects"] <= reader["reconnects"]
    assert before["errors"] <= reader["errors"]
    assert "last_error" in reader and reader["status"] == "ok"
    porch = health.json()["components"]["shm_reader"]["cameras"]["porch"]
    assert (porch["source"], porch["transport"]) == ("rtsp", "udp")

    body = http("GET", site.base + "/metrics").body.decode()  # loopback: allowed
    assert PASSWORD not in body
    after = garage.status()["source"]
    assert metric(body, "petcam_source_connected", "garage", "rtsp") == 1.0
    assert before["reconnects"] <= metric(body, "petcam_source_reconnects_total", "garage",
                                          "rtsp") <= after["reconnects"]
    assert before["errors"] <= metric(body, "petcam_source_errors_total", "garage",
                                      "rtsp") <= after["errors"]
    metric(body, "petcam_source_reconnects_total", "porch", "rtsp")  # every camera's


def test_a_recording_from_rtsp_decodes_cleanly(site, garage, tmp_path):
    headers = {"Authorization": f"Bearer {site.token}", "Content-Type": "application/json"}
    base = site.base + "/api/cameras/garage/recording"
    started = http("POST", base + "/start/", json.dumps({"name": "rtsp"}).encode(), headers)
    assert started.status == 201, started.body
    wait_for(lambda: http("GET", base + "/", None, headers).json()["frame_count"] >= 2 * FPS,
             15, "two seconds recorded")
    done = http("POST", base + "/stop/", b"{}", headers)
    assert done.status == 200, done.body
    done = done.json()
    assert done["status"] == "complete" and (done["width"], done["height"]) == (320, 240)
    got = http("GET", f"{site.base}/api/recordings/{done['id']}/download/", None, headers)
    assert got.status == 200
    path = tmp_path / "rtsp.mp4"
    path.write_bytes(got.body)

    frames, errors = [], []
    av.logging.set_level(av.logging.WARNING)
    with av.logging.Capture(local=False) as logs, av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                frames += stream.codec_context.decode(packet if packet.size else None)
            except av.FFmpegError as exc:
                errors.append(str(exc))
    av.logging.set_level(None)
    assert errors == [] and [m for _l, _n, m in logs] == []
    assert len(frames) == done["frame_count"] and frames[0].key_frame
    numbers = [decode_frame_number(f.to_ndarray(format="gray")) for f in frames]
    assert None not in numbers
    assert all((b - a) % FRAMES == 1 for a, b in zip(numbers, numbers[1:], strict=False)), numbers
    # The file's clock is the camera's: 25 fps by pts.
    assert abs(done["duration"] - len(frames) / FPS) < 2 / FPS, (done["duration"], len(frames))


@pytest.mark.browser
def test_chromium_plays_the_rtsp_camera_and_follows_a_restart(site, server, garage):
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.goto(site.base + "/?camera=garage")
        page.get_by_label("Username").fill(site.username)
        page.get_by_label("Password").fill(site.password)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_test_id("state")).to_have_text("live", timeout=20_000)
        assert page.evaluate("document.querySelector('[data-camera]').dataset.camera") == \
            "garage"

        def picture():
            s = page.evaluate("petcamPlayer.stats()")
            return s if s and s["frameWidth"] == 320 and s["framesDecoded"] > 0 else None

        first = wait_for(picture, 20, "decoded 320x240 video", interval=0.2)
        assert first["codec"] == "video/H264"
        rates = []
        for _ in range(3):  # a busy machine may starve Chromium for a moment
            mark, s0 = camera_mark(garage), page.evaluate("petcamPlayer.stats()")
            time.sleep(2.0)
            s1, mark1 = page.evaluate("petcamPlayer.stats()"), camera_mark(garage)
            decoded = (s1["framesDecoded"] - s0["framesDecoded"]) / (
                (s1["timestamp"] - s0["timestamp"]) / 1000)
            rates.append((decoded, camera_fps(mark, mark1)))
            if decoded >= MIN_SHARE * rates[-1][1] > 0:
                break
        else:
            raise AssertionError(f"decoded vs camera fps: {rates}")
        code = wait_for(lambda: page.evaluate(READ_VIDEO_FRAME_CODE), 5, "a frame code on screen")
        assert 1 <= code <= FRAMES  # the server's clip, drawn by Chromium
        screenshot(page, "rtsp-camera-live")

        # The camera goes away and comes back: the page follows without a reload.
        session = page.evaluate("petcamPlayer.session")
        server.stop()
        expect(page.get_by_test_id("state")).to_have_text("camera off", timeout=10_000)
        server.start()
        restarted = time.monotonic()
        expect(page.get_by_test_id("state")).to_have_text("live", timeout=20_000)
        decoded = page.evaluate("petcamPlayer.stats()")["framesDecoded"]
        wait_for(lambda: page.evaluate("petcamPlayer.stats()")["framesDecoded"] > decoded + FPS,
                 15, "the picture to play again")
        print(f"picture back {time.monotonic() - restarted:.1f} s after the RTSP server; "
              f"session kept: {page.evaluate('petcamPlayer.session') == session}, "
              f"player reconnects: {page.evaluate('petcamPlayer.reconnects')}")
        wait_for(lambda: page.evaluate(READ_VIDEO_FRAME_CODE), 5, "a frame code after the restart")
        browser.close()
