"""HLS of a real recording, played by FFmpeg's HLS demuxer over real HTTP.

One embedded site and a live-encoding simulator (320x240, 0.5 s GOP) make a ~5 s MP4
recording through the API; the playlist at /api/recordings/{id}/hls/index.m3u8 is
then read by PyAV (FFmpeg's `hls` demuxer) with the token in the request headers,
which it also sends for the init segment and the byte-range media segments. Every
frame must decode, in order, and the playlist's length must match the recording.
The thumbnail strip and keyframe lookup get their real-HTTP check here too.
"""

from __future__ import annotations

import json
import time

import av
import pytest

from streaming.media.shm import segment as shm_segment
from streaming.simulator.scene import decode_frame_number
from tests.support.processes import manage, site_env, start_simulator
from tests.support.webrtc_client import http, running_site, wait_live

SIM_ARGS = ("--gop", "15", "--encode", "live", "--bitrate", "800")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hls")
    env = site_env(tmp)
    with running_site(env, tmp / "logs") as site:
        sim = start_simulator(env, tmp / "logs", *SIM_ARGS)
        try:
            wait_live(site.base, site.token, width=320)
            site.media = tmp / "var" / "media"
            site.recording = record(site, 5.0)
        finally:
            sim.stop()
        yield site
    shm_segment.unlink(env["PETCAM_SHM_STREAM"])
    shm_segment.unlink(env["PETCAM_SHM_DETECTIONS"])


def get(site, path: str, token: str | None = "site", headers: dict | None = None):
    auth = {"Authorization": f"Bearer {site.token if token == 'site' else token}"} if token else {}
    return http("GET", site.base + path, None, {**auth, **(headers or {})})


def record(site, seconds: float) -> dict:
    headers = {"Authorization": f"Bearer {site.token}", "Content-Type": "application/json"}
    reply = http("POST", site.base + "/api/cameras/default/recording/start/",
                 json.dumps({"name": "hls", "format": "mp4"}).encode(), headers)
    assert reply.status == 201, reply.body
    time.sleep(seconds)
    reply = http("POST", site.base + "/api/cameras/default/recording/stop/", b"{}", headers)
    assert reply.status == 200, reply.body
    done = reply.json()
    assert done["status"] == "complete" and done["frame_count"] > 100, done
    return done


def test_the_playlist_plays_every_frame_in_an_hls_player(site):
    rec = site.recording
    path = f"/api/recordings/{rec['id']}/hls/index.m3u8"
    reply = get(site, path)
    assert reply.status == 200, reply.body
    assert reply.header("Content-Type") == "application/vnd.apple.mpegurl"
    text = reply.body.decode()
    assert text.startswith("#EXTM3U\n") and text.rstrip().endswith("#EXT-X-ENDLIST")
    assert "#EXT-X-MAP:URI=\"media.mp4\"" in text and text.count("#EXT-X-BYTERANGE:") >= 2
    listed = sum(float(line[8:-1]) for line in text.splitlines() if line.startswith("#EXTINF:"))
    assert listed == pytest.approx(rec["duration"], abs=0.05)

    options = {"headers": f"Authorization: Bearer {site.token}\r\n"}
    codes = []
    with av.open(site.base + path, format="hls", options=options, timeout=10) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
        for frame in container.decode(stream):
            codes.append(decode_frame_number(frame.to_ndarray(format="gray")))
            last_time = float(frame.pts * frame.time_base)
    assert len(codes) == rec["frame_count"]
    assert None not in codes and codes == list(range(codes[0], codes[0] + len(codes)))
    assert last_time == pytest.approx(rec["duration"] - rec["duration"] / len(codes), abs=0.1)


def test_a_signed_link_plays_without_any_header(site):
    rec = site.recording
    reply = get(site, f"/api/recordings/{rec['id']}/hls/link/")
    assert reply.status == 200, reply.body
    link = reply.json()
    assert link["url"].startswith(f"/api/recordings/{rec['id']}/hls/index.m3u8?sig=")
    assert 600 <= link["expires_in"] <= 86400
    playlist = get(site, link["url"], token=None)
    assert playlist.status == 200, playlist.body
    assert "media.mp4?sig=" in playlist.body.decode()  # segments carry the signature on
    with av.open(site.base + link["url"], format="hls", timeout=10) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == rec["frame_count"]
    sig = link["url"].split("?sig=", 1)[1]
    # one recording only, not tampered with, and only for HLS
    for path in (f"/api/recordings/{rec['id'] + 1000}/hls/index.m3u8?sig={sig}",
                 f"/api/recordings/{rec['id']}/hls/index.m3u8?sig={sig[:-2]}xx",
                 f"/api/recordings/{rec['id']}/hls/media.mp4?sig=x{sig}"):
        reply = get(site, path, token=None)
        assert reply.status in (401, 403) and reply.json()["error"] == "invalid_link", path
    for what in ("download/", "keyframes/", "thumbnails/", ""):
        reply = get(site, f"/api/recordings/{rec['id']}/{what}?sig={sig}", token=None)
        assert reply.status in (401, 403) and reply.json()["error"] == "not_authenticated"


def test_media_segments_are_byte_ranges_of_the_recording(site):
    rec = site.recording
    reply = get(site, f"/api/recordings/{rec['id']}/hls/media.mp4", headers={"Range": "bytes=0-7"})
    assert reply.status == 206 and reply.body[4:8] == b"ftyp"
    assert reply.header("Content-Disposition") is None  # inline, unlike download/
    whole = get(site, f"/api/recordings/{rec['id']}/download/").body
    index = get(site, f"/api/recordings/{rec['id']}/keyframes/").json()
    assert index["file_size"] == len(whole) and index["frames"] == rec["frame_count"]
    start, duration, offset, size, _frames, key = index["fragments"][3]
    assert key and whole[offset + 4:offset + 8] == b"moof"
    lookup = get(site, f"/api/recordings/{rec['id']}/keyframes/?t={start + duration / 2}").json()
    assert lookup["fragment"]["offset"] == offset and lookup["fragment"]["index"] == 3
    piece = get(site, f"/api/recordings/{rec['id']}/hls/media.mp4",
                headers={"Range": f"bytes={offset}-{offset + size - 1}"})
    assert piece.status == 206 and piece.body == whole[offset:offset + size]


def test_thumbnail_strip_over_http(site):
    rec = site.recording
    reply = get(site, f"/api/recordings/{rec['id']}/thumbnails/")
    assert reply.status == 200, reply.body
    strip = reply.json()
    assert strip["count"] >= 9 and strip["thumbnails"][0]["time"] == 0.0
    times = [t["time"] for t in strip["thumbnails"]]
    assert times == sorted(times) and times[-1] < rec["duration"]
    sprite = get(site, strip["sprite_url"])
    assert sprite.status == 200 and sprite.header("Content-Type") == "image/jpeg"
    assert sprite.body[:2] == b"\xff\xd8"
    assert get(site, strip["sprite_url"], token=None).status in (401, 403)


def test_bad_ids_and_missing_auth(site):
    rec = site.recording
    for bad in ("999999", "0", "-1", "abc", "1e3", "%39%39%39"):
        reply = get(site, f"/api/recordings/{bad}/hls/index.m3u8")
        assert reply.status == 404 and reply.json()["error"] == "not_found", bad
    for what in ("hls/index.m3u8", "hls/media.mp4", "keyframes/", "thumbnails/"):
        reply = get(site, f"/api/recordings/{rec['id']}/{what}", token=None)
        assert reply.status in (401, 403) and reply.json()["error"] == "not_authenticated"
        reply = get(site, f"/api/recordings/{rec['id']}/{what}", token="0" * 40)
        assert reply.status in (401, 403), what


def test_path_tricks_are_refused(site):
    rec_id = site.recording["id"]
    secret = (site.media.parent / "petcam.sqlite3")
    assert secret.is_file()
    tricks = [
        f"/api/recordings/{rec_id}/hls/../../../../etc/passwd",
        f"/api/recordings/{rec_id}/hls/%2e%2e/%2e%2e/%2e%2e/petcam.sqlite3",
        f"/api/recordings/{rec_id}/hls/..%2f..%2f..%2fpetcam.sqlite3",
        f"/api/recordings/{rec_id}/hls/media.mp4/../../../../petcam.sqlite3",
        f"/api/recordings/{rec_id}/hls/%2Fetc%2Fpasswd",
        f"/api/recordings/{rec_id}/hls/index.m3u8%00.mp4",
    ]
    for path in tricks:
        reply = get(site, path)
        assert reply.status == 404, path
        assert b"root:" not in reply.body and b"SQLite" not in reply.body
    # Rows whose file leaves the media root (by "..", or by a symlink) are never served.
    link = site.media / "recordings" / "link.mp4"
    link.symlink_to(secret)
    out = manage(site.env, "shell", "-c",
                 "from django.utils import timezone;"
                 "from recordings.models import Recording;"
                 "a = Recording.objects.create(camera='default', file='../petcam.sqlite3',"
                 " format='mp4', status='complete', started_at=timezone.now());"
                 "b = Recording.objects.create(camera='default', file='recordings/link.mp4',"
                 " format='mp4', status='complete', started_at=timezone.now());"
                 "print(a.pk, b.pk)")
    for pk in out.split()[-2:]:
        for what in ("hls/index.m3u8", "hls/media.mp4", "keyframes/", "thumbnails/"):
            reply = get(site, f"/api/recordings/{pk}/{what}")
            assert reply.status == 404, (pk, what, reply.body[:100])
            assert reply.json()["error"] == "file_missing"
            assert b"sqlite" not in reply.body.lower()
