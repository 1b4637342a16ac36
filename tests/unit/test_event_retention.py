"""Event retention with real files under a temporary MEDIA_ROOT: events past
PETCAM_EVENT_RETENTION_DAYS lose their row and snapshot JPEG (and the empty day folder),
newer ones and their files stay, finished webhook log rows go with the same bound (open
ones stay); 0 keeps everything. When the recordings' retention deletes an event's clip,
the event keeps its snapshot and its clip link becomes empty in the API and on the page."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from events import store
from events.models import Event, EventRule, WebhookDelivery
from events.retention import purge_events
from events.snapshot import encode_jpeg
from recordings.models import Recording, recording_relpath
from recordings.retention import Policy, apply_retention
from tests.support.roles import make_user

JPEG = encode_jpeg(np.full((48, 64, 3), 200, dtype=np.uint8))


@pytest.fixture
def media(settings, tmp_path, db) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PETCAM_EVENT_RETENTION_DAYS = 30
    return Path(settings.MEDIA_ROOT)


def event(age_days: float, *, open_: bool = False, rule=None) -> Event:
    """An event that started `age_days` ago, ended (with its snapshot on disk) a minute
    later unless `open_`."""
    started = timezone.now() - timedelta(days=age_days)
    row = Event.objects.create(rule=rule, camera="default", class_name="cat",
                               started_at=started, peak_confidence=0.9)
    if not open_:
        store.finish_event(row.pk, ended_at=started + timedelta(minutes=1), jpeg=JPEG)
    return Event.objects.get(pk=row.pk)


def recording(media: Path, started) -> Recording:
    rel = recording_relpath("default", started, "mp4")
    (media / rel).parent.mkdir(parents=True, exist_ok=True)
    (media / rel).write_bytes(b"\0" * 1000)
    return Recording.objects.create(camera="default", file=rel, format="mp4",
                                    status="complete", started_at=started,
                                    ended_at=started + timedelta(minutes=5), duration=300,
                                    frame_count=9000, size_bytes=1000, width=320, height=240)


def test_old_events_and_their_snapshots_go_new_ones_stay(media):
    old, older = event(31), event(45)
    left_open = event(40, open_=True)  # a worker died mid-event long ago
    recent = event(2)
    files = {e.pk: media / e.snapshot.name for e in (old, older, recent)}
    assert all(path.read_bytes() == JPEG for path in files.values())

    purged = purge_events()
    assert (purged.events, purged.snapshots) == (3, 2)
    assert list(Event.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not files[old.pk].exists() and not files[older.pk].exists()
    assert not files[old.pk].parent.exists()  # the day folder, empty now, went too
    assert files[recent.pk].read_bytes() == JPEG
    assert left_open.pk not in set(Event.objects.values_list("pk", flat=True))
    assert purge_events().events == 0  # nothing more to do


def test_zero_keeps_everything(media, settings):
    settings.PETCAM_EVENT_RETENTION_DAYS = 0
    old = event(400)
    assert purge_events().events == 0
    assert Event.objects.filter(pk=old.pk).exists() and (media / old.snapshot.name).exists()


def test_the_webhook_log_is_bounded_too(media):
    rule = EventRule.objects.create(camera="default", classes=["cat"],
                                    webhook_url="https://hooks.example.com/in",
                                    webhook_secret="s" * 20)
    ev = event(1, rule=rule)
    rows = {}
    for name, status, age in (("old_done", "delivered", 40), ("old_failed", "failed", 31),
                              ("old_open", "retrying", 40), ("new_done", "delivered", 1)):
        row = WebhookDelivery.objects.create(event=ev, rule=rule, kind="started",
                                             url=rule.webhook_url, status=status)
        WebhookDelivery.objects.filter(pk=row.pk).update(
            created_at=timezone.now() - timedelta(days=age))
        rows[name] = row.pk
    assert purge_events().deliveries == 2
    left = set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert left == {rows["old_open"], rows["new_done"]}  # an open one ends by its max age


def test_the_command_says_what_it_removed(media):
    event(10)
    event(1)
    out = []
    call_command("purge_events", "--days", "5", stdout=type("W", (), {
        "write": lambda self, s: out.append(s), "flush": lambda self: None})())
    assert "Removed 1 events (1 snapshot files)" in "".join(out)
    assert Event.objects.count() == 1


def test_a_clip_deleted_by_the_recordings_retention_leaves_the_event_whole(media, client):
    started = timezone.now() - timedelta(days=10)
    clip = recording(media, started - timedelta(seconds=30))
    ev = event(10)
    assert ev.recording_id == clip.pk  # finish_event linked the covering recording
    api = APIClient()
    api.force_authenticate(make_user("viewer", "viewers"))
    assert api.get(f"/api/events/{ev.pk}/").json()["clip_url"]

    deleted = apply_retention(Policy(max_age_days=7))  # the recordings' own retention
    assert [d.id for d in deleted] == [clip.pk] and not (media / clip.file.name).exists()

    ev.refresh_from_db()
    assert ev.recording_id is None and (media / ev.snapshot.name).read_bytes() == JPEG
    body = api.get(f"/api/events/{ev.pk}/").json()
    assert (body["recording"], body["clip_url"]) == (None, None) and body["snapshot_url"]
    snap = api.get(body["snapshot_url"])
    assert snap.status_code == 200 and b"".join(snap.streaming_content
                                                if snap.streaming else [snap.content]) == JPEG
    listed = api.get("/api/events/").json()
    assert listed["results"][0]["clip_url"] is None
    client.force_login(make_user("page", "viewers"))
    assert client.get("/events/").status_code == 200
