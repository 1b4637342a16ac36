"""Keyframe index, HLS playlist and thumbnail strip of real fragmented MP4 recordings.

Files are written by the recorder's own Mp4FileWriter from libx264 access units
(`camera_units` in tests/support/recordings.py), then indexed, checked against what
FFmpeg demuxes from the same file, and served through the views
(Django test client; tests/integration/test_hls.py does the same over real HTTP).
"""

from __future__ import annotations

import io
import itertools
import json
import random
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import av
import numpy as np
import pytest
from rest_framework.test import APIClient

from detections.models import DetectionSample
from recordings import hls, keyframe_index, sidecars, signed_links, thumbnails_strip
from recordings.keyframe_index import NotFragmented
from recordings.media.writers import H264FileWriter, Mp4FileWriter
from recordings.models import Recording
from recordings.retention import delete_recording
from tests.support.recordings import camera_units
from tests.support.roles import make_user

GOP = 15  # 0.5 s at 30 fps, the board's encoder is close to this


def write_mp4(path: Path, units) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = Mp4FileWriter(path)
    writer.create()
    for unit in units:
        writer.write(unit)
    writer.close()
    return path


@pytest.fixture(scope="module")
def units():
    return camera_units(320, 240, 6 * GOP, GOP, jitter=True)


@pytest.fixture(scope="module")
def mp4(tmp_path_factory, units) -> Path:
    return write_mp4(tmp_path_factory.mktemp("kfi") / "rec.mp4", units)


def demuxed(path: Path) -> list[tuple[float, bool, int]]:
    """(time, keyframe, packet position) of every packet, as FFmpeg reads the file."""
    with av.open(str(path)) as container:
        return [(float(p.pts * p.time_base), p.is_keyframe, p.pos)
                for p in container.demux(container.streams.video[0]) if p.size]


def test_index_matches_what_ffmpeg_demuxes(mp4, units):
    index = keyframe_index.build(mp4)
    packets = demuxed(mp4)
    data = mp4.read_bytes()
    assert index.timescale == 90_000 and index.file_size == len(data)
    assert data[index.init_size + 4:index.init_size + 8] == b"moof"
    assert len(index.fragments) == len(units) // GOP
    assert index.frames == len(packets) == len(units)
    keyframes = [(t, pos) for t, key, pos in packets if key]
    assert [round(f.start, 4) for f in index.fragments] == [round(t, 4) for t, _ in keyframes]
    first = units[0].timestamp
    idr_times = [u.timestamp - first for u in units if u.is_idr]
    assert [f.start for f in index.fragments] == pytest.approx(idr_times, abs=1 / 90_000)
    for f, (_, pos) in zip(index.fragments, keyframes, strict=True):
        assert f.keyframe and f.frames == GOP
        assert data[f.offset + 4:f.offset + 8] == b"moof"
        assert f.offset < pos < f.offset + f.size  # the keyframe's bytes are in the fragment
        assert f.offset + f.size == len(data) or data[f.offset + f.size + 4:
                                                      f.offset + f.size + 8] in (b"moof", b"mfra")
    # fragments tile the file: each ends where the next begins
    pairs = list(itertools.pairwise(index.fragments))
    assert all(a.offset + a.size == b.offset for a, b in pairs)
    assert all(a.end == pytest.approx(b.start) for a, b in pairs)


def test_lookups_find_the_fragment_holding_a_time(mp4):
    index = keyframe_index.build(mp4)
    frags = index.fragments
    assert index.at(0.0) == frags[0]
    assert index.at(-5) == frags[0]  # clamped
    assert index.at(1e9) == frags[-1]
    for i, f in enumerate(frags):
        assert index.position(f.start) == i
        assert index.position(f.start + f.duration / 2) == i
        assert index.position(f.end - 1e-6) == i


def test_a_torn_tail_ends_the_index_at_the_last_whole_fragment(mp4, tmp_path):
    torn = tmp_path / "torn.mp4"
    whole = keyframe_index.build(mp4)
    cut = whole.fragments[3].offset + 100  # inside the 4th moof
    torn.write_bytes(mp4.read_bytes()[:cut])
    index = keyframe_index.build(torn)
    assert index.fragments == whole.fragments[:3]
    torn.write_bytes(mp4.read_bytes()[:whole.fragments[3].offset + whole.fragments[3].size - 1])
    assert keyframe_index.build(torn).fragments == whole.fragments[:3]  # mdat short by 1 byte


def test_raw_h264_empty_and_garbage_files_are_not_fragmented(tmp_path, units):
    raw = tmp_path / "rec.h264"
    writer = H264FileWriter(raw)
    writer.create()
    for unit in units[:GOP]:
        writer.write(unit)
    writer.close()
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.mp4").write_bytes(bytes(range(256)) * 40)
    for name in ("rec.h264", "empty.mp4", "junk.mp4"):
        with pytest.raises(NotFragmented):
            keyframe_index.build(tmp_path / name)


def test_damaged_boxes_give_an_index_or_not_fragmented_never_a_crash(mp4, tmp_path):
    data = mp4.read_bytes()
    index = keyframe_index.build(mp4)
    meta = [(0, index.init_size)] + [(f.offset, f.offset + 250) for f in index.fragments[:2]]
    rng = random.Random(8)
    damaged = tmp_path / "damaged.mp4"
    outcomes = set()
    for _ in range(300):  # flip bytes in the boxes the index reads (ftyp, moov, moof)
        buf = bytearray(data)
        start, end = meta[rng.randrange(len(meta))]
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(start, end)] = rng.randrange(256)
        damaged.write_bytes(bytes(buf))
        try:
            keyframe_index.build(damaged)
            outcomes.add("index")
        except NotFragmented:
            outcomes.add("refused")
    assert outcomes == {"index", "refused"}


def test_hls_segments_cover_the_file_with_contiguous_byte_ranges(mp4):
    index = keyframe_index.build(mp4)
    text = hls.playlist(index, "media.mp4", finished=True, target=1.2)
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U" and lines[-1] == "#EXT-X-ENDLIST"
    assert f'#EXT-X-MAP:URI="media.mp4",BYTERANGE="{index.init_size}@0"' in lines
    ranges = [tuple(map(int, line.split(":", 1)[1].split("@")))
              for line in lines if line.startswith("#EXT-X-BYTERANGE")]
    durations = [float(line[8:-1]) for line in lines if line.startswith("#EXTINF:")]
    assert len(ranges) == len(durations) == 2  # 6 fragments of 0.5 s joined into >= 1.2 s
    position = index.init_size
    for length, offset in ranges:
        assert offset == position
        position += length
    last = index.fragments[-1]
    assert position == last.offset + last.size
    assert sum(durations) == pytest.approx(index.duration, abs=1e-5)
    target = int(next(x for x in lines if x.startswith("#EXT-X-TARGETDURATION")).split(":")[1])
    assert all(round(d) <= target for d in durations)
    running = hls.playlist(index, "media.mp4", finished=False)
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in running and "#EXT-X-ENDLIST" not in running


def test_thumbnail_choice_is_spread_and_bounded(mp4):
    index = keyframe_index.build(mp4)
    assert thumbnails_strip.choose(index.fragments, 100) == index.fragments
    three = thumbnails_strip.choose(index.fragments, 3)
    assert len(three) == 3 and three[0] == index.fragments[0]
    assert three[-1] == index.fragments[-1]
    assert three[1] in index.fragments[2:4]  # the one nearest the middle


# --- stored sidecars and the views ----------------------------------------------------------


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def recording(media_root, mp4, units, django_user_model) -> Recording:
    rel = "recordings/default/2026-01-01/default-20260101T000000Z-abcd.mp4"
    (media_root / rel).parent.mkdir(parents=True)
    shutil.copy(mp4, media_root / rel)
    started = datetime(2026, 1, 1, tzinfo=UTC)
    return Recording.objects.create(
        camera="default", file=rel, format="mp4", status="complete", started_at=started,
        ended_at=started + timedelta(seconds=3), duration=3.0, frame_count=len(units),
        size_bytes=mp4.stat().st_size, width=320, height=240)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def api():
    return client_for(make_user("viewer", "viewers"))  # the role that may play recordings


PLAYBACK_API = ("keyframes/", "keyframes/?t=1", "thumbnails/", "thumbnails/sprite.jpg",
                "hls/index.m3u8", "hls/media.mp4", "hls/link/", "timeline/", "detections/",
                "detections/?at=1")


@pytest.mark.django_db
def test_playback_follows_the_download_permissions(recording, client):
    from streaming.models import Camera

    Camera.objects.create(slug="garden", name="Garden")
    elsewhere = client_for(make_user("gardener", "viewers", cameras=("garden",)))
    no_role = client_for(make_user("newcomer"))
    here = client_for(make_user("watcher", "viewers", cameras=("default",)))
    for what in PLAYBACK_API:
        url = f"/api/recordings/{recording.pk}/{what}"
        reply = elsewhere.get(url)  # another camera's recording: like an unknown id
        assert reply.status_code == 404 and reply.json()["error"] == "not_found", what
        assert no_role.get(url).status_code == 403, what
        assert here.get(url).status_code in (200, 206), what
    page = f"/recordings/{recording.pk}/"
    client.force_login(make_user("pagegardener", "viewers", cameras=("garden",)))
    assert client.get(page).status_code == 404
    client.force_login(make_user("pageviewer", "viewers"))
    reply = client.get(page)
    assert reply.status_code == 200 and b'data-recording="%d"' % recording.pk in reply.content
    assert client.get("/recordings/999999/").status_code == 404


@pytest.mark.django_db
def test_the_index_is_stored_once_and_rebuilt_when_the_file_changes(recording, monkeypatch):
    name = recording.file.name
    first = keyframe_index.load(name, store=True)
    cache = sidecars.sidecar_path(name, sidecars.KEYFRAME_INDEX)
    assert cache.is_file() and json.loads(cache.read_bytes())["file_size"] == first.file_size

    def no_build(path):
        raise AssertionError("the stored index should have been used")

    with monkeypatch.context() as m:
        m.setattr(keyframe_index, "build", no_build)
        assert keyframe_index.load(name, store=True) is first  # remembered in memory
        keyframe_index._memo.clear()  # a new process: read from the sidecar
        assert keyframe_index.load(name, store=True).fragments == first.fragments
    # The file was trimmed (a repair): the stored index no longer describes it.
    path = recording.path
    path.write_bytes(path.read_bytes()[:first.fragments[-1].offset])
    again = keyframe_index.load(name, store=False)
    assert again.fragments == first.fragments[:-1]
    cache.write_text("{not json")
    assert keyframe_index.load(name, store=True).fragments == first.fragments[:-1]
    assert json.loads(cache.read_bytes())["file_size"] == path.stat().st_size


@pytest.mark.django_db
def test_keyframes_endpoint_answers_the_index_and_a_time_lookup(recording, api):
    reply = api.get(f"/api/recordings/{recording.pk}/keyframes/")
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert body["recording"] == recording.pk and len(body["fragments"]) == 6
    assert body["fields"] == ["start", "duration", "offset", "size", "frames", "keyframe"]
    start, duration, offset, size, frames, key = body["fragments"][2]
    reply = api.get(f"/api/recordings/{recording.pk}/keyframes/?t={start + duration / 2}")
    assert reply.status_code == 200
    assert reply.json()["fragment"] == {"index": 2, "start": start, "duration": duration,
                                        "offset": offset, "size": size, "frames": frames,
                                        "keyframe": key}
    for bad in ("-1", "nan", "inf", "abc"):
        reply = api.get(f"/api/recordings/{recording.pk}/keyframes/?t={bad}")
        assert reply.status_code == 400 and reply.json()["error"] == "invalid_parameter"
    assert api.get("/api/recordings/999999/keyframes/").json()["error"] == "not_found"
    assert APIClient().get(f"/api/recordings/{recording.pk}/keyframes/").status_code in (401, 403)


@pytest.mark.django_db
def test_thumbnail_strip_shows_each_keyframe_and_is_cached(recording, api, mp4):
    reply = api.get(f"/api/recordings/{recording.pk}/thumbnails/")
    assert reply.status_code == 200, reply.content
    strip = reply.json()
    assert strip["count"] == 6 and strip["tile_width"] == 160 and strip["tile_height"] == 120
    index = keyframe_index.build(mp4)
    assert [t["time"] for t in strip["thumbnails"]] == [round(f.start, 3)
                                                       for f in index.fragments]
    sprite = api.get(strip["sprite_url"])
    assert sprite.status_code == 200 and sprite["Content-Type"] == "image/jpeg"
    data = b"".join(sprite.streaming_content)
    with av.open(io.BytesIO(data)) as container:
        picture = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert picture.shape == (strip["sprite_height"], strip["sprite_width"], 3)
    # each tile is that keyframe, scaled: compare with FFmpeg's own decode of the file
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        keyframes = [f.reformat(width=160, height=120, format="rgb24").to_ndarray()
                     for f in container.decode(stream)]
    assert len(keyframes) == 6
    for tile, expected in zip(strip["thumbnails"], keyframes, strict=True):
        got = picture[tile["y"]:tile["y"] + 120, tile["x"]:tile["x"] + 160].astype(int)
        assert np.abs(got - expected).mean() < 8  # JPEG, not bit-exact
    others = [np.abs(picture[0:120, 0:160].astype(int) - k).mean() for k in keyframes[1:]]
    assert min(others) > np.abs(picture[0:120, 0:160].astype(int) - keyframes[0]).mean()
    # cached: a second request does not decode again
    made = sidecars.sidecar_path(recording.file.name, sidecars.STRIP_IMAGE).stat().st_mtime_ns
    assert api.get(f"/api/recordings/{recording.pk}/thumbnails/").json() == strip
    assert sidecars.sidecar_path(recording.file.name,
                                 sidecars.STRIP_IMAGE).stat().st_mtime_ns == made


@pytest.mark.django_db
def test_deleting_a_recording_removes_its_sidecars(recording, api):
    assert api.get(f"/api/recordings/{recording.pk}/thumbnails/").status_code == 200
    # the detection track is the recorder's (tests/unit/test_detection_track.py): one line
    sidecars.sidecar_path(recording.file.name, sidecars.DETECTIONS).write_text(
        '{"t":0.1,"f":3,"d":[["cat",0.9,1,2,3,4]]}\n')
    names = sidecars.sidecar_names(recording.file.name)
    assert all(sidecars.media_path(n).is_file() for n in names)
    delete_recording(recording)
    assert not any(sidecars.media_path(n).exists() for n in names)


@pytest.mark.django_db
def test_raw_h264_and_running_recordings(recording, api, media_root):
    raw = Recording.objects.create(camera="default", file="recordings/x.h264", format="h264",
                                   status="complete", started_at=recording.started_at)
    (media_root / "recordings/x.h264").write_bytes(b"\0\0\0\1\x09\xf0")
    for what in ("keyframes/", "thumbnails/", "hls/index.m3u8", "hls/media.mp4"):
        reply = api.get(f"/api/recordings/{raw.pk}/{what}")
        assert reply.status_code == 404 and reply.json()["error"] == "not_fragmented", what
    Recording.objects.filter(pk=recording.pk).update(status="recording")
    reply = api.get(f"/api/recordings/{recording.pk}/thumbnails/")
    assert reply.status_code == 409 and reply.json()["error"] == "recording_in_progress"
    reply = api.get(f"/api/recordings/{recording.pk}/hls/index.m3u8")
    assert reply.status_code == 200 and b"#EXT-X-ENDLIST" not in reply.content
    assert not sidecars.sidecar_path(recording.file.name, sidecars.KEYFRAME_INDEX).exists()


@pytest.mark.django_db
def test_detections_answer_in_recording_seconds(recording, api):
    t0 = recording.started_at
    rows = []
    for i in range(40):  # a cat every 0.1 s, except a gap from 1.0 to 2.0 s; a dog at 2.5 s
        t = i * 0.1 - 0.5  # some before the recording: not part of it
        if 1.0 <= t < 2.0:
            continue
        rows.append(DetectionSample(camera="default", time=t0 + timedelta(seconds=t),
                                    frame_number=1000 + i, class_name="cat", confidence=0.9,
                                    x=10 + i, y=20, w=30, h=40))
    rows.append(DetectionSample(camera="default", time=t0 + timedelta(seconds=2.5),
                                frame_number=1030, class_name="dog", confidence=0.8,
                                x=1, y=2, w=3, h=4))
    rows.append(DetectionSample(camera="other", time=t0 + timedelta(seconds=1.5),
                                frame_number=7, class_name="cat", confidence=0.8,
                                x=1, y=2, w=3, h=4))
    DetectionSample.objects.bulk_create(rows)
    with pytest.MonkeyPatch.context() as m:
        from django.conf import settings
        m.setattr(settings, "PETCAM_DETECTION_SAMPLE_SECONDS", 0.1, raising=False)
        timeline = api.get(f"/api/recordings/{recording.pk}/timeline/").json()
    classes = {c["class_name"]: c for c in timeline["classes"]}
    assert classes["cat"]["segments"] == [[0.0, 1.0], [2.0, 3.0]]
    assert classes["dog"]["segments"] == [[2.5, 2.6]]
    window = api.get(f"/api/recordings/{recording.pk}/detections/?start=2.4&end=2.6").json()
    # one detector result per frame: the cat and the dog of frame 1030 are one result
    assert [(r["time"], r["frame_number"]) for r in window["results"]] == [(2.4, 1029),
                                                                          (2.5, 1030)]
    assert [d["class_name"] for d in window["results"][1]["detections"]] == ["cat", "dog"]
    assert window["frame_width"] == 320 and window["truncated"] is False
    at = api.get(f"/api/recordings/{recording.pk}/detections/?at=0.33&tolerance=0.2").json()
    assert at["result"]["time"] == 0.3 and at["result"]["frame_number"] == 1008
    assert at["result"]["detections"] == [{"class_name": "cat", "confidence": 0.9,
                                           "bbox": {"x": 18, "y": 20, "w": 30, "h": 40}}]
    gap = api.get(f"/api/recordings/{recording.pk}/detections/?at=1.5&tolerance=0.2").json()
    assert gap["result"] is None
    reply = api.get(f"/api/recordings/{recording.pk}/detections/?start=3&end=1")
    assert reply.status_code == 400 and reply.json()["error"] == "invalid_parameter"


@pytest.mark.django_db
def test_signed_links_expire_and_follow_the_user_s_access(recording):
    """Lifetimes, password changes and token revocation: tests/unit/test_signed_links.py."""
    from streaming.models import Camera, CameraAccess

    user = make_user("couch", "viewers")
    url = client_for(user).get(f"/api/recordings/{recording.pk}/hls/link/").json()["url"]
    anonymous = APIClient()
    assert anonymous.get(url).status_code == 200
    # access taken away: the same link now answers like an unknown recording
    CameraAccess.objects.create(user=user, camera=Camera.objects.create(slug="garden"))
    assert anonymous.get(url).status_code == 404
    CameraAccess.objects.filter(user=user).delete()
    # an old link
    old = signed_links.sign(recording.pk, user,
                            now=time.time() - signed_links.lifetime(recording.duration) - 5,
                            duration_s=recording.duration)
    reply = anonymous.get(f"/api/recordings/{recording.pk}/hls/index.m3u8?sig={quote(old)}")
    assert reply.status_code in (401, 403) and reply.json()["error"] == "link_expired"
    user.is_active = False
    user.save()
    assert anonymous.get(url).json()["error"] == "invalid_link"
