"""Recording control end to end: real site, real simulator, real files, real failures.

One embedded site (daphne + media worker, SQLite) and a live-encoding simulator
(320x240, a 0.5 s GOP) serve the API tests. The disk-full test runs its own
site with PETCAM_MEDIA_ROOT on a 1 MB tmpfs and a real WebRTC viewer; the crash
test runs production mode (PostgreSQL, Redis, a separate `manage.py
media_worker`) and SIGKILLs the worker mid-recording.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from streaming.media.shm import segment as shm_segment
from streaming.simulator.scene import decode_frame_number
from tests.support.processes import (
    install,
    pick_free_port,
    site_env,
    start_simulator,
    start_site,
    start_worker,
    wait_for,
)
from tests.support.recordings import decode_file, ffprobe, idrs_lack_parameter_sets, small_disk
from tests.support.webrtc_client import (
    MIN_SHARE,
    WebRtcClient,
    camera_fps,
    camera_mark,
    get_token,
    http,
    running_site,
    wait_live,
)

FPS = 30
GOP = 15
SIM_ARGS = ("--gop", str(GOP), "--encode", "live", "--bitrate", "1000")
CAMERA = "/api/cameras/default/recording"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recording-api")
    env = site_env(tmp)
    with running_site(env, tmp / "logs") as site:
        sim = start_simulator(env, tmp / "logs", *SIM_ARGS)
        try:
            wait_live(site.base, site.token, width=320)
            site.root = tmp
            site.media = tmp / "var" / "media"
            yield site
        finally:
            sim.stop()
    shm_segment.unlink(env["PETCAM_SHM_STREAM"])
    shm_segment.unlink(env["PETCAM_SHM_DETECTIONS"])


def call(site, method: str, path: str, body: object = None, *, token: str | None = "site",
         raw: bytes | None = None):
    headers = {"Content-Type": "application/json"}
    token = site.token if token == "site" else token
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    reply = http(method, site.base + path, data, headers)
    try:
        return reply.status, reply.json()
    except ValueError:
        return reply.status, reply.body


def frame_numbers(frames) -> list[int | None]:
    return [decode_frame_number(f.to_ndarray(format="gray")) for f in frames]


@pytest.fixture
def idle(site):
    """Each test starts and ends with the camera not recording."""
    assert call(site, "GET", f"{CAMERA}/")[1]["recording"] is False
    yield
    if call(site, "GET", f"{CAMERA}/")[1]["recording"]:
        call(site, "POST", f"{CAMERA}/stop/")
        pytest.fail("the test left a recording running")


def test_an_mp4_recording_over_the_api_plays_every_frame_from_a_keyframe(site, idle):
    clicked = time.monotonic()
    status, started = call(site, "POST", f"{CAMERA}/start/", {"name": "cat nap"})
    assert status == 201, started
    assert started["status"] == "recording" and started["format"] == "mp4"
    assert started["name"] == "cat nap" and started["camera"] == "default"
    assert started["file"].startswith("recordings/default/") and started["file"].endswith(".mp4")

    status, again = call(site, "POST", f"{CAMERA}/start/", {"format": "h264"})
    assert status == 409 and again["error"] == "already_recording", again

    time.sleep(1.0)
    status, live = call(site, "GET", f"{CAMERA}/")
    assert status == 200 and live["recording"] is True and live["id"] == started["id"]
    assert live["frame_count"] > 20 and live["bytes"] > 0 and live["duration"] > 0.5
    assert live["dropped_frames"] == 0
    assert call(site, "GET", "/api/cameras/default/")[1]["recording"]["recording"] is True

    time.sleep(1.0)
    status, done = call(site, "POST", f"{CAMERA}/stop/")
    wall = time.monotonic() - clicked
    assert status == 200, done
    assert done["id"] == started["id"] and done["status"] == "complete"
    assert done["frame_count"] > 60 and done["bytes"] == done["size_bytes"] > 0
    assert (done["width"], done["height"]) == (320, 240) and done["profile"]

    path = site.media / done["file"]
    assert path.stat().st_size == done["bytes"]
    probe = ffprobe(path)
    assert (probe["codec_name"], probe["width"], probe["height"]) == ("h264", 320, 240)
    assert int(probe["nb_read_frames"]) == done["frame_count"]
    frames, errors, packets = decode_file(path)
    assert errors == [] and packets[0].is_keyframe and frames[0].key_frame
    numbers = frame_numbers(frames)
    assert None not in numbers
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # no frame lost
    assert len(numbers) == done["frame_count"] and done["gaps"] == 0
    # The file's clock is the camera's (exactness: tests/unit/test_recorder.py); here the
    # camera is a simulator on a busy machine, so its frames are ~1/30 s apart, not exactly.
    assert abs(float(probe["duration"]) - done["duration"]) < 1 / FPS
    assert 0.85 < done["duration"] / (len(numbers) / FPS) < 1.2
    # Wall time: click to stop, plus at most the cached GOP the file starts with.
    assert wall - 0.3 < done["duration"] < wall + GOP / FPS + 0.3

    status, after = call(site, "GET", f"{CAMERA}/")
    assert after["recording"] is False and after["last"]["id"] == done["id"]
    status, idle_stop = call(site, "POST", f"{CAMERA}/stop/")
    assert status == 409 and idle_stop["error"] == "not_recording"


def test_an_h264_recording_has_sps_and_pps_before_every_idr(site, idle):
    status, started = call(site, "POST", f"{CAMERA}/start/", {"format": "h264"})
    assert status == 201 and started["file"].endswith(".h264"), started
    time.sleep(1.5)  # three GOPs
    status, done = call(site, "POST", f"{CAMERA}/stop/")
    assert status == 200 and done["status"] == "complete", done
    path = site.media / done["file"]
    data = path.read_bytes()
    assert len(data) == done["bytes"]
    assert [b & 0x1F for b in (data[4], data[data.index(b"\x00\x00\x01", 5) + 3])] == [7, 8]
    assert idrs_lack_parameter_sets(data) == 0
    assert int(ffprobe(path)["nb_read_frames"]) == done["frame_count"]
    frames, errors, _ = decode_file(path)
    assert errors == [] and frames[0].key_frame and len(frames) == done["frame_count"]
    numbers = frame_numbers(frames)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and "logs" not in p.parts
            and not p.name.startswith("petcam.sqlite3")}


@pytest.mark.parametrize(("body", "code"), [
    ({"name": "../x"}, "invalid_name"),
    ({"name": "a/b"}, "invalid_name"),
    ({"name": "\x00"}, "invalid_name"),
    ({"name": "..\\..\\evil"}, "invalid_name"),
    ({"name": "x" * 101}, "invalid_name"),
    ({"name": 42}, "invalid_name"),
    ({"format": "avi"}, "invalid_format"),
    ({"format": "../mp4"}, "invalid_format"),
])
def test_bad_names_and_formats_get_400_and_create_nothing(site, idle, body, code):
    before = _files(site.root)
    status, reply = call(site, "POST", f"{CAMERA}/start/", body)
    assert status == 400 and reply["error"] == code and reply["detail"], reply
    status, reply = call(site, "POST", "/api/recording/start",
                         {"filename": body["name"] + ".h264"} if "name" in body
                         and isinstance(body["name"], str) else body)
    assert status == 400 and reply["error"] == code, reply
    assert _files(site.root) == before
    assert call(site, "GET", f"{CAMERA}/")[1]["recording"] is False


def test_malformed_bodies_and_unknown_cameras(site, idle):
    status, reply = call(site, "POST", f"{CAMERA}/start/", raw=b"[1, 2]")
    assert status == 400 and reply["error"] == "parse_error", reply
    status, reply = call(site, "POST", f"{CAMERA}/start/", raw=b"{not json")
    assert status == 400 and reply["error"] == "parse_error", reply
    for method, path in [("POST", "/api/cameras/nope/recording/start/"),
                         ("POST", "/api/cameras/nope/recording/stop/"),
                         ("GET", "/api/cameras/nope/recording/")]:
        status, reply = call(site, method, path, {})
        assert status == 404 and reply["error"] == "unknown_camera", (path, reply)


def test_anonymous_requests_are_refused(site, idle):
    for method, path in [("POST", f"{CAMERA}/start/"), ("POST", f"{CAMERA}/stop/"),
                         ("GET", f"{CAMERA}/"), ("POST", "/api/recording/start"),
                         ("POST", "/api/recording/stop"), ("GET", "/api/recording/status")]:
        status, reply = call(site, method, path, {}, token=None)
        assert status == 403 and reply["error"] == "not_authenticated", (path, reply)
    assert call(site, "GET", f"{CAMERA}/")[1]["recording"] is False


def test_the_seeds_endpoints_answer_with_the_seeds_json(site, idle):
    status, started = call(site, "POST", "/api/recording/start", {"filename": "kitchen.h264"})
    assert status == 200, started
    assert started["status"] == "recording" and started["filename"].endswith(".h264")
    assert started["name"] == "kitchen" and started["format"] == "h264"
    time.sleep(0.7)
    status, live = call(site, "GET", "/api/recording/status")
    assert status == 200 and live["recording"] is True
    assert live["filename"] == started["filename"]
    assert live["frame_count"] > 0 and live["bytes_written"] > 0 and live["duration"] > 0
    status, done = call(site, "POST", "/api/recording/stop")
    assert status == 200, done
    assert done["status"] == "stopped" and done["filename"] == started["filename"]
    assert done["frame_count"] >= live["frame_count"]
    assert done["bytes_written"] == (site.media / done["filename"]).stat().st_size
    assert done["duration"] >= live["duration"]
    assert call(site, "GET", "/api/recording/status")[1]["recording"] is False
    status, reply = call(site, "POST", "/api/recording/stop")
    assert status == 409 and reply["error"] == "not_recording"
    # An empty body starts a default recording too.
    status, started = call(site, "POST", "/api/recording/start", raw=b"")
    assert status == 200 and started["format"] == "h264", started
    assert call(site, "POST", "/api/recording/stop")[0] == 200


# --- a full disk -----------------------------------------------------------------------------


def test_a_full_disk_fails_the_recording_keeps_the_file_and_live_view(tmp_path):
    with small_disk(tmp_path / "media", 1024) as media:
        env = site_env(tmp_path, PETCAM_MEDIA_ROOT=str(media))
        with running_site(env, tmp_path / "logs") as site:
            sim = start_simulator(env, tmp_path / "logs", "--gop", str(GOP), "--encode", "live",
                                  "--bitrate", "2000")
            try:
                wait_live(site.base, site.token, width=320)
                asyncio.run(_fill_the_disk_while_watching(site, media))
            finally:
                sim.stop()
        shm_segment.unlink(env["PETCAM_SHM_STREAM"])
        shm_segment.unlink(env["PETCAM_SHM_DETECTIONS"])


async def _fill_the_disk_while_watching(site, media: Path) -> None:
    viewer = WebRtcClient(site.base, site.token, name="watcher")
    await viewer.connect()
    try:
        await viewer.wait_frames(10)
        await asyncio.sleep(0.5)
        before = await asyncio.to_thread(camera_mark, site)
        await asyncio.sleep(1.5)
        during = await asyncio.to_thread(camera_mark, site)

        status, started = await asyncio.to_thread(call, site, "POST", f"{CAMERA}/start/", {})
        assert status == 201, started

        def failed():
            state = call(site, "GET", f"{CAMERA}/")[1]
            return not state["recording"] and state["last"]

        last = await asyncio.to_thread(wait_for, failed, 30, "the disk to fill up")
        after = await asyncio.to_thread(camera_mark, site)
        await asyncio.sleep(1.5)
        end = await asyncio.to_thread(camera_mark, site)

        assert last["id"] == started["id"] and last["status"] == "failed", last
        assert "disk full" in last["failure_reason"], last
        # Before, while and after the disk fills, the camera streams on and the viewer
        # gets its frames.
        for name, (a, b) in {"before": (before, during), "during": (during, after),
                             "after": (after, end)}.items():
            camera, seen = camera_fps(a, b), viewer.fps(a[0], b[0])
            assert camera > 5 and seen >= MIN_SHARE * camera, (name, camera, seen)
        camera = await asyncio.to_thread(site.status)
        assert camera["live"] and camera["viewers"]["count"] == 1, camera

        path = media / last["file"]
        frames, errors, packets = decode_file(path)
        assert errors == [], errors[:5]
        assert packets[0].is_keyframe and len(frames) == last["frame_count"] > GOP
        assert path.stat().st_size == last["bytes"]
        numbers = frame_numbers(frames)
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        # With the disk still full, the next start is refused up front (nothing is created).
        before = set(media.rglob("*"))
        status, again = await asyncio.to_thread(call, site, "POST", f"{CAMERA}/start/", {})
        assert status == 507 and again["error"] == "disk_full", again
        assert set(media.rglob("*")) == before
    finally:
        await viewer.close()


# --- the worker dies mid-recording (production mode) ----------------------------------------



@pytest.mark.production
def test_a_killed_worker_leaves_an_interrupted_recording_that_plays(tmp_path, postgres_url,
                                                                     redis_url):
    env = site_env(tmp_path, DATABASE_URL=postgres_url, REDIS_URL=redis_url,
                   PETCAM_CHANNEL_PREFIX=f"petcam-rec-{uuid.uuid4().hex[:6]}",
                   DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secrets.token_urlsafe(40))
    logs = tmp_path / "logs"
    username, password = install(env)
    worker = start_worker(env, logs)
    port = pick_free_port()
    web = start_site(env, port, logs, plain_daphne=True)
    sim = start_simulator(env, logs, *SIM_ARGS)
    media = tmp_path / "var" / "media"
    try:
        base = f"http://127.0.0.1:{port}"
        site = type("S", (), {"base": base, "token": get_token(base, username, password)})
        wait_live(base, site.token, width=320)
        status, started = call(site, "POST", f"{CAMERA}/start/", {"name": "before the crash"})
        assert status == 201, started
        time.sleep(2.2)  # four GOPs: at least three fragments on disk
        live = call(site, "GET", f"{CAMERA}/")[1]
        assert live["recording"] and live["frame_count"] > 3 * GOP
        worker.stop(signal.SIGKILL)
        killed_size = (media / started["file"]).stat().st_size

        worker = start_worker(env, logs)

        def row() -> dict | None:
            with psycopg.connect(postgres_url) as db:
                found = db.execute(
                    "SELECT status, frame_count, size_bytes, duration, failure_reason, file "
                    "FROM recordings_recording WHERE id = %s", (started["id"],)).fetchone()
            keys = ("status", "frame_count", "size_bytes", "duration", "failure_reason", "file")
            values = dict(zip(keys, found, strict=True))
            return values if values["status"] != "recording" else None

        recovered = wait_for(row, 30, "the restarted worker to recover the recording")
        assert recovered["status"] == "interrupted", recovered
        assert "stopped while recording" in recovered["failure_reason"]
        path = media / recovered["file"]
        assert path.exists() and path.stat().st_size == recovered["size_bytes"] <= killed_size
        assert 2 * GOP <= recovered["frame_count"] <= live["frame_count"] + GOP
        frames, errors, packets = decode_file(path)
        assert errors == [] and packets[0].is_keyframe
        assert len(frames) == recovered["frame_count"]
        assert abs(recovered["duration"] - float(ffprobe(path)["duration"])) < 1 / FPS
        assert 0.8 < recovered["duration"] / (len(frames) / FPS) < 1.25
        numbers = frame_numbers(frames)
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))

        # The new worker records again.
        wait_live(base, site.token, width=320)
        assert call(site, "GET", f"{CAMERA}/")[1]["recording"] is False
        status, again = call(site, "POST", f"{CAMERA}/start/", {})
        assert status == 201, again
        time.sleep(0.3)
        status, done = call(site, "POST", f"{CAMERA}/stop/")
        assert status == 200 and done["status"] == "complete" and done["frame_count"] > 0, done

        # An orderly stop (SIGTERM) finishes the file instead of leaving it interrupted.
        status, last = call(site, "POST", f"{CAMERA}/start/", {"format": "h264"})
        assert status == 201, last
        time.sleep(0.5)
        assert worker.stop() == 0
        with psycopg.connect(postgres_url) as db:
            state, reason, frames = db.execute(
                "SELECT status, failure_reason, frame_count FROM recordings_recording "
                "WHERE id = %s", (last["id"],)).fetchone()
        assert (state, reason) == ("complete", "stopped because the media worker shut down")
        assert frames > GOP
    finally:
        sim.stop()
        web.stop()
        worker.stop()
        shm_segment.unlink(env["PETCAM_SHM_STREAM"])
        shm_segment.unlink(env["PETCAM_SHM_DETECTIONS"])
