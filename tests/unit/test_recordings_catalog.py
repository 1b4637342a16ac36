"""The recordings catalog API, retention and admin deletes, on real small MP4 and .h264 files."""

from __future__ import annotations

import io
from collections import namedtuple
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from recordings import retention
from recordings.media.writers import make_writer
from recordings.models import Recording, recording_relpath
from recordings.retention import Policy, apply_retention
from tests.support.recordings import camera_units
from tests.support.roles import make_user

T0 = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)
_SAMPLES: dict[str, bytes] = {}


def sample(fmt: str) -> bytes:
    """A real 2-second 320x240 recording made by the recorder's own writer (cached)."""
    if fmt not in _SAMPLES:
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"sample.{fmt}"
            writer = make_writer(fmt, path)
            writer.create()
            for au in camera_units(n=60, gop=30):
                writer.write(au)
            writer.close()
            _SAMPLES[fmt] = path.read_bytes()
    return _SAMPLES[fmt]


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PETCAM_RETENTION_MAX_AGE_DAYS = 0
    settings.PETCAM_RETENTION_MAX_BYTES = 0
    settings.PETCAM_RETENTION_MIN_FREE_BYTES = 0
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast users
    return settings.MEDIA_ROOT


@pytest.fixture
def api(db, media):
    client = APIClient()
    client.force_authenticate(make_user("operator", "operators"))  # may PATCH and DELETE
    return client


def make(media: Path, *, camera="default", fmt="mp4", started=T0, status="complete",
         trigger="manual", keep=False, name="", data: bytes | None = None) -> Recording:
    rel = recording_relpath(camera, started, fmt)
    path = media / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = sample(fmt) if data is None else data
    path.write_bytes(payload)
    return Recording.objects.create(camera=camera, file=rel, format=fmt, trigger=trigger,
                                    status=status, keep=keep, name=name, started_at=started,
                                    duration=2.0, frame_count=60, size_bytes=len(payload),
                                    width=320, height=240)


def no_paths(body: dict) -> None:
    text = str(body)
    assert "/" not in body["detail"] and "media" not in text and "Traceback" not in text


# --- list, retrieve ---------------------------------------------------------------------------


def test_list_is_newest_first_filtered_and_paged(api, media):
    a = make(media, started=T0)
    b = make(media, started=T0 + timedelta(hours=1), camera="garden", trigger="event")
    c = make(media, started=T0 + timedelta(hours=2), keep=True, status="failed")
    d = make(media, started=T0 + timedelta(hours=3), status="recording")

    body = api.get("/api/recordings/").json()
    assert body["count"] == 4 and [r["id"] for r in body["results"]] == [d.pk, c.pk, b.pk, a.pk]
    first = body["results"][0]
    assert first["download_url"] == f"/api/recordings/{d.pk}/download/"
    assert first["thumbnail_url"] == f"/api/recordings/{d.pk}/thumbnail/"
    assert first["status"] == "recording" and first["file"] == d.file.name

    def ids(query: str) -> list[int]:
        reply = api.get("/api/recordings/" + query)
        assert reply.status_code == 200, reply.content
        return [r["id"] for r in reply.json()["results"]]

    assert ids("?camera=garden") == [b.pk]
    assert ids("?trigger=event") == [b.pk]
    assert ids("?status=complete") == [b.pk, a.pk]
    assert ids("?keep=true") == [c.pk]
    assert ids("?keep=false") == [d.pk, b.pk, a.pk]
    assert ids("?started_after=2026-01-10T13:00:00Z") == [d.pk, c.pk, b.pk]
    assert ids("?started_before=2026-01-10T13:00:00%2B00:00") == [a.pk]
    assert ids("?started_after=2026-01-10T12:30:00&started_before=2026-01-10T14:30:00Z") == [
        c.pk, b.pk]

    page = api.get("/api/recordings/?limit=2&offset=1").json()
    assert page["count"] == 4 and [r["id"] for r in page["results"]] == [c.pk, b.pk]
    assert "offset=3" in page["next"] and page["previous"]

    bad = api.get("/api/recordings/?started_after=yesterday")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_filter"
    assert api.get("/api/recordings/?keep=maybe").status_code == 400


def test_retrieve_and_unknown_ids(api, media):
    rec = make(media, name="cat nap")
    body = api.get(f"/api/recordings/{rec.pk}/").json()
    assert body["id"] == rec.pk and body["name"] == "cat nap" and body["bytes"] == rec.size_bytes
    for path in (f"/api/recordings/{rec.pk + 99}/", f"/api/recordings/{rec.pk + 99}/download/",
                 f"/api/recordings/{rec.pk + 99}/thumbnail/", "/api/recordings/abc/"):
        reply = api.get(path)
        assert reply.status_code == 404 and reply.json()["error"] == "not_found", path
        no_paths(reply.json())
    reply = api.delete(f"/api/recordings/{rec.pk + 99}/")
    assert reply.status_code == 404 and reply.json()["error"] == "not_found"


# --- delete, patch ----------------------------------------------------------------------------


def test_delete_removes_file_thumbnail_and_row(api, media):
    rec = make(media)
    assert api.get(f"/api/recordings/{rec.pk}/thumbnail/").status_code == 200
    rec.refresh_from_db()
    files = [media / rec.file.name, media / rec.thumbnail.name]
    assert all(f.is_file() for f in files)
    reply = api.delete(f"/api/recordings/{rec.pk}/")
    assert reply.status_code == 204
    assert not any(f.exists() for f in files)
    assert not Recording.objects.filter(pk=rec.pk).exists()


def test_an_in_progress_recording_cannot_be_deleted(api, media):
    rec = make(media, status="recording")
    reply = api.delete(f"/api/recordings/{rec.pk}/")
    assert reply.status_code == 409 and reply.json()["error"] == "recording_in_progress"
    no_paths(reply.json())
    assert (media / rec.file.name).is_file() and Recording.objects.filter(pk=rec.pk).exists()


def test_patch_keep_and_name(api, media):
    rec = make(media, name="old")
    reply = api.patch(f"/api/recordings/{rec.pk}/", {"keep": True, "name": "  cat nap "},
                      format="json")
    assert reply.status_code == 200, reply.content
    assert reply.json()["keep"] is True and reply.json()["name"] == "cat nap"
    rec.refresh_from_db()
    assert rec.keep and rec.name == "cat nap"
    for bad in ({"name": "../etc/passwd"}, {"name": "a/b"}, {"name": "x" * 101},
                {"name": "nap\n"}, {"name": 5}):
        reply = api.patch(f"/api/recordings/{rec.pk}/", bad, format="json")
        assert reply.status_code == 400 and reply.json()["error"] == "invalid_name", bad
    assert api.patch(f"/api/recordings/{rec.pk}/", {"keep": "yes"},
                     format="json").status_code == 400
    reply = api.patch(f"/api/recordings/{rec.pk}/", {"file": "/etc/passwd"}, format="json")
    assert reply.status_code == 400 and reply.json()["error"] == "invalid_field"
    rec.refresh_from_db()
    assert rec.name == "cat nap" and rec.file.name.startswith("recordings/default/")


def test_rename_refusals_leave_the_name_as_it_was(api, media):
    """Unknown id, a role that may not change recordings, another camera's recording, a
    body that is not a JSON object, a name too long by one: each a clear error, no change."""
    from streaming.models import Camera

    rec = make(media, name="nap")
    reply = api.patch("/api/recordings/999999/", {"name": "x"}, format="json")
    assert reply.status_code == 404 and reply.json()["error"] == "not_found"
    viewer = APIClient()
    viewer.force_authenticate(make_user("viewer", "viewers"))
    reply = viewer.patch(f"/api/recordings/{rec.pk}/", {"name": "mine"}, format="json")
    assert reply.status_code == 403 and reply.json()["error"] == "forbidden"
    assert "may not change" in reply.json()["detail"]
    Camera.objects.get_or_create(slug="garden")
    Camera.objects.get_or_create(slug="default")
    other = APIClient()  # an operator of the garden camera only: ours is not theirs to see
    other.force_authenticate(make_user("gardener", "operators", cameras=("garden",)))
    reply = other.patch(f"/api/recordings/{rec.pk}/", {"name": "mine"}, format="json")
    assert reply.status_code == 404 and reply.json()["error"] == "not_found"
    reply = api.patch(f"/api/recordings/{rec.pk}/", b'["name"]', content_type="application/json")
    assert reply.status_code == 400
    reply = api.patch(f"/api/recordings/{rec.pk}/", {"name": "x" * 101}, format="json")
    assert reply.status_code == 400 and "at most 100" in reply.json()["detail"]
    assert api.patch(f"/api/recordings/{rec.pk}/", {"name": "y" * 100},
                     format="json").json()["name"] == "y" * 100  # the limit itself is fine
    rec.refresh_from_db()
    assert rec.name == "y" * 100


def test_titles_say_what_when_and_how_long(media, settings):
    from recordings.titles import recording_title

    settings.TIME_ZONE = "UTC"
    rec = Recording(name="", detection_classes=["cat"], started_at=datetime(
        2026, 12, 1, 18, 8, tzinfo=UTC), duration=125.0, status="complete", trigger="manual")
    assert recording_title(rec) == "Cat · Tue 18:08 · 2 min"
    rec.detection_classes = ["cat", "dog", "person"]
    rec.duration = 3725
    assert recording_title(rec) == "Cat & Dog +1 · Tue 18:08 · 1 h 2 min"
    rec.detection_classes, rec.duration = [], 42
    assert recording_title(rec) == "Recording · Tue 18:08 · 42 s"
    rec.trigger, rec.status = "event", "recording"
    assert recording_title(rec) == "Event · Tue 18:08"  # no length while it runs
    rec.name = "Mimi's nap"
    assert recording_title(rec) == "Mimi's nap" and str(rec).startswith("Mimi's nap (")


# --- download ---------------------------------------------------------------------------------


def body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("fmt", ["mp4", "h264"])
def test_download_whole_file(api, media, fmt):
    rec = make(media, fmt=fmt)
    data = (media / rec.file.name).read_bytes()
    reply = api.get(f"/api/recordings/{rec.pk}/download/")
    assert reply.status_code == 200
    assert reply["Content-Type"] == {"mp4": "video/mp4", "h264": "video/h264"}[fmt]
    assert reply["Accept-Ranges"] == "bytes" and reply["Content-Length"] == str(len(data))
    name = rec.file.name.rsplit("/", 1)[-1]
    assert reply["Content-Disposition"] == f'attachment; filename="{name}"'
    assert body(reply) == data


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-500", -500, None),
    ("bytes=10-10", 10, 10), ("bytes=1000-999999999", 1000, None),
    ("bytes=-999999999", 0, None)])
def test_download_ranges_are_byte_exact(api, media, header, first, last):
    rec = make(media)
    data = (media / rec.file.name).read_bytes()
    size = len(data)
    start = first % size if first < 0 else first
    end = size - 1 if last is None else last
    reply = api.get(f"/api/recordings/{rec.pk}/download/", HTTP_RANGE=header)
    assert reply.status_code == 206, header
    assert reply["Content-Range"] == f"bytes {start}-{end}/{size}"
    assert reply["Content-Length"] == str(end - start + 1)
    assert reply["Accept-Ranges"] == "bytes" and reply["Content-Type"] == "video/mp4"
    assert body(reply) == data[start:end + 1]


@pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=50-10", "bytes=-0"])
def test_unsatisfiable_ranges_are_416(api, media, header):
    rec = make(media)
    size = rec.size_bytes
    reply = api.get(f"/api/recordings/{rec.pk}/download/", HTTP_RANGE=header)
    assert reply.status_code == 416 and reply["Content-Range"] == f"bytes */{size}"


def test_a_missing_file_is_404_without_its_path(api, media):
    rec = make(media)
    (media / rec.file.name).unlink()
    for path in ("download", "thumbnail"):
        reply = api.get(f"/api/recordings/{rec.pk}/{path}/")
        assert reply.status_code == 404
        assert reply.json()["error"] == {"download": "file_missing",
                                         "thumbnail": "no_thumbnail"}[path]
        no_paths(reply.json())


# --- thumbnail --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["mp4", "h264"])
def test_thumbnail_is_a_small_jpeg_made_once(api, media, fmt, monkeypatch):
    rec = make(media, fmt=fmt)
    reply = api.get(f"/api/recordings/{rec.pk}/thumbnail/")
    assert reply.status_code == 200 and reply["Content-Type"] == "image/jpeg"
    jpeg = body(reply)
    assert jpeg[:2] == b"\xff\xd8"
    with av.open(io.BytesIO(jpeg)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (320, 240)
    rec.refresh_from_db()
    assert rec.thumbnail.name.endswith(".thumb.jpg")
    assert (media / rec.thumbnail.name).read_bytes() == jpeg

    from recordings import catalog_views

    def fail(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(catalog_views, "make_thumbnail", fail)
    again = api.get(f"/api/recordings/{rec.pk}/thumbnail/")
    assert again.status_code == 200 and body(again) == jpeg


def test_wide_video_thumbnail_is_scaled_to_320(api, media):
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wide.mp4"
        writer = make_writer("mp4", path)
        writer.create()
        for au in camera_units(width=640, height=360, n=2, gop=30):
            writer.write(au)
        writer.close()
        rec = make(media, data=path.read_bytes())
    jpeg = body(api.get(f"/api/recordings/{rec.pk}/thumbnail/"))
    with av.open(io.BytesIO(jpeg)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (320, 180)


def test_no_thumbnail_for_a_file_without_video(api, media):
    rec = make(media, data=b"\x00" * 1000)
    reply = api.get(f"/api/recordings/{rec.pk}/thumbnail/")
    assert reply.status_code == 404 and reply.json()["error"] == "no_thumbnail"
    no_paths(reply.json())


# --- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "suffix"), [
    ("get", ""), ("get", "{id}/"), ("patch", "{id}/"), ("delete", "{id}/"),
    ("get", "{id}/download/"), ("get", "{id}/thumbnail/")])
def test_anonymous_users_get_403(db, media, method, suffix):
    rec = make(media)
    reply = getattr(APIClient(), method)("/api/recordings/" + suffix.format(id=rec.pk))
    assert reply.status_code == 403
    assert Recording.objects.filter(pk=rec.pk).exists() and (media / rec.file.name).exists()


def test_a_token_user_can_list(db, media):
    from tests.support.tokens import make_token
    key = make_token(make_user("phone", "viewers"))
    make(media)
    reply = APIClient().get("/api/recordings/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert reply.status_code == 200 and reply.json()["count"] == 1


# --- retention --------------------------------------------------------------------------------

Usage = namedtuple("Usage", "total used free")


def test_retention_by_age_spares_kept_and_in_progress(db, media):
    now = timezone.now()
    old = make(media, started=now - timedelta(days=10))
    old_kept = make(media, started=now - timedelta(days=11), keep=True)
    old_live = make(media, started=now - timedelta(days=12), status="recording")
    old_failed = make(media, started=now - timedelta(days=8), status="failed")
    recent = make(media, started=now - timedelta(days=2))

    dry = apply_retention(Policy(max_age_days=7), dry_run=True)
    assert [d.id for d in dry] == [old.pk, old_failed.pk]
    assert Recording.objects.count() == 5 and (media / old.file.name).exists()

    deleted = apply_retention(Policy(max_age_days=7))
    assert [(d.id, d.reason) for d in deleted] == [(old.pk, "max_age"), (old_failed.pk, "max_age")]
    assert not (media / old.file.name).exists() and not (media / old_failed.file.name).exists()
    left = set(Recording.objects.values_list("pk", flat=True))
    assert left == {old_kept.pk, old_live.pk, recent.pk}
    assert all((media / r.file.name).exists() for r in Recording.objects.all())


def test_retention_by_total_size_deletes_oldest_until_it_fits(db, media):
    size = len(sample("mp4"))
    kept = make(media, started=T0, keep=True)
    recs = [make(media, started=T0 + timedelta(hours=i + 1)) for i in range(4)]
    live = make(media, started=T0 + timedelta(hours=9), status="recording")
    # 6 files, room for 3.5: the three oldest deletable ones go (kept and live stay)
    deleted = apply_retention(Policy(max_bytes=int(size * 3.5)))
    assert [(d.id, d.reason, d.bytes) for d in deleted] == [
        (r.pk, "max_bytes", size) for r in recs[:3]]
    left = set(Recording.objects.values_list("pk", flat=True))
    assert left == {kept.pk, recs[3].pk, live.pk}
    assert not any((media / r.file.name).exists() for r in recs[:3])
    assert apply_retention(Policy(max_bytes=int(size * 3.5))) == []
    # smaller than what kept + live use: everything deletable goes, they never do
    deleted = apply_retention(Policy(max_bytes=1))
    assert [d.id for d in deleted] == [recs[3].pk]
    assert set(Recording.objects.values_list("pk", flat=True)) == {kept.pk, live.pk}


def test_retention_by_free_space(db, media, monkeypatch):
    size = len(sample("mp4"))
    recs = [make(media, started=T0 + timedelta(hours=i)) for i in range(4)]
    monkeypatch.setattr(retention, "disk_usage",
                        lambda path: Usage(10**9, 10**9 - size // 2, size // 2))
    # half a file free, two wanted: after one deletion 1.5, after two 2.5 → two go
    deleted = apply_retention(Policy(min_free_bytes=2 * size))
    assert [(d.id, d.reason) for d in deleted] == [(recs[0].pk, "min_free"),
                                                   (recs[1].pk, "min_free")]
    assert set(Recording.objects.values_list("pk", flat=True)) == {recs[2].pk, recs[3].pk}
    assert apply_retention(Policy()) == []  # no policy: nothing happens


def test_apply_retention_command(db, media, settings, capsys):
    now = timezone.now()
    old = make(media, started=now - timedelta(days=40))
    make(media, started=now)
    settings.PETCAM_RETENTION_MAX_AGE_DAYS = 30
    call_command("apply_retention", "--dry-run")
    out = capsys.readouterr().out
    assert f"would delete recording {old.pk}" in out and "1 recording(s)" in out
    assert Recording.objects.count() == 2
    call_command("apply_retention")
    out = capsys.readouterr().out
    assert f"deleted recording {old.pk}" in out
    assert Recording.objects.count() == 1 and not (media / old.file.name).exists()


def test_the_worker_loop_applies_the_policy_and_survives_errors(transactional_db, settings,
                                                               monkeypatch):
    import asyncio

    calls = []

    def fake_apply():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return []

    monkeypatch.setattr(retention, "apply_retention", fake_apply)
    settings.PETCAM_RETENTION_MAX_AGE_DAYS = 0
    settings.PETCAM_RETENTION_MAX_BYTES = 0
    settings.PETCAM_RETENTION_MIN_FREE_BYTES = 0

    async def run(until, seconds: float):
        task = asyncio.create_task(retention.retention_loop(interval=0.01, first_delay=0))
        deadline = asyncio.get_running_loop().time() + seconds
        while not until() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run(lambda: False, 0.1))
    assert calls == []  # no policy: never runs
    settings.PETCAM_RETENTION_MAX_BYTES = 10**12
    asyncio.run(run(lambda: len(calls) >= 3, 20))  # a loaded machine may be slow
    assert len(calls) >= 3  # the first run's error did not stop it


# --- admin ------------------------------------------------------------------------------------


def test_admin_lists_and_deletes_with_files(db, media, client):
    admin = User.objects.create_superuser("boss", password="x" * 12)
    client.force_login(admin)
    one = make(media, name="one")
    two = make(media, name="two", started=T0 + timedelta(hours=1))
    live = make(media, name="live", started=T0 + timedelta(hours=2), status="recording")

    page = client.get("/admin/recordings/recording/?status__exact=complete&q=one")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'src="/api/recordings/{one.pk}/thumbnail/"' in html and "two" not in html
    # the thumbnail URL works for the admin's session
    assert client.get(f"/api/recordings/{one.pk}/thumbnail/").status_code == 200
    # the change page plays the recording
    change = client.get(f"/admin/recordings/recording/{one.pk}/change/").content.decode()
    assert f'<video src="/api/recordings/{one.pk}/download/"' in change
    one.refresh_from_db()
    one_files = [media / one.file.name, media / one.thumbnail.name]

    reply = client.post(f"/admin/recordings/recording/{one.pk}/delete/", {"post": "yes"})
    assert reply.status_code == 302
    assert not Recording.objects.filter(pk=one.pk).exists()
    assert not any(f.exists() for f in one_files)

    # in progress: refused, file and row stay
    assert client.get(f"/admin/recordings/recording/{live.pk}/delete/").status_code == 403
    client.post("/admin/recordings/recording/",
                {"action": "delete_selected", "_selected_action": [two.pk, live.pk],
                 "post": "yes"})
    assert Recording.objects.filter(pk=live.pk).exists() and (media / live.file.name).exists()

    reply = client.post("/admin/recordings/recording/",
                        {"action": "delete_selected", "_selected_action": [two.pk],
                         "post": "yes"})
    assert reply.status_code == 302
    assert not Recording.objects.filter(pk=two.pk).exists()
    assert not (media / two.file.name).exists()


def test_admin_delete_queryset_skips_in_progress(db, media, rf):
    from django.contrib.admin.sites import site
    from django.contrib.messages.storage.fallback import FallbackStorage

    done = make(media)
    live = make(media, status="recording", started=T0 + timedelta(hours=1))
    request = rf.post("/")
    request.session = {}
    request._messages = FallbackStorage(request)
    site._registry[Recording].delete_queryset(request, Recording.objects.all())
    assert list(Recording.objects.values_list("pk", flat=True)) == [live.pk]
    assert not (media / done.file.name).exists() and (media / live.file.name).exists()
    assert "still in progress" in str(list(request._messages)[0])
