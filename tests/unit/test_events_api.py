"""The events API: rules CRUD with clear validation errors, events list/filter/delete,
snapshots like recordings (a viewer limited to camera garden sees nothing of default),
unknown ids 404; and the worker-side store (finish_event links the covering recording
and writes the snapshot; delete removes it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from events.models import Event, EventRule
from events.store import create_event, delete_event, finish_event
from recordings.models import Recording, recording_relpath
from streaming.models import Camera
from tests.support.roles import make_user

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9"


@pytest.fixture
def world(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    Camera.objects.create(slug="garden", name="Garden", stream_segment="/petcam_nowhere")
    users = {"operator": make_user("operator", "operators"),
             "viewer": make_user("viewer", "viewers"),
             "limited": make_user("limited", "operators", cameras=("garden",))}
    return users


def client(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def event(camera="default", cls="cat", start=T0, **kw) -> Event:
    return Event.objects.create(camera=camera, class_name=cls, started_at=start,
                                peak_confidence=0.9, **kw)


GOOD = {"camera": "default", "name": "Cat on the sofa", "classes": ["cat"],
        "min_confidence": 0.6, "min_seconds": 2, "cooldown_seconds": 30,
        "zone": [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]],
        "schedule": {"days": ["mon", "fri"], "start": "22:00", "end": "06:00"},
        "timezone": "Europe/Paris"}


def test_rule_crud(world):
    api = client(world["operator"])
    created = api.post("/api/event-rules/", GOOD, format="json")
    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule["classes"] == ["cat"] and rule["zone"][2] == [0.5, 0.9]
    assert rule["schedule"] == {"days": ["mon", "fri"], "start": "22:00", "end": "06:00"}
    assert EventRule.objects.get().created_by == world["operator"]
    url = f"/api/event-rules/{rule['id']}/"
    assert api.get(url).json() == rule
    patched = api.patch(url, {"enabled": False, "zone": []}, format="json")
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert patched.json()["zone"] == []
    assert [r["id"] for r in api.get("/api/event-rules/").json()["results"]] == [rule["id"]]
    assert api.get("/api/event-rules/?camera=garden").json()["results"] == []
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404


@pytest.mark.parametrize(("change", "code", "words"), [
    ({"zone": [[0, 0], [1, 0]]}, "invalid_zone", "3 to 32"),
    ({"zone": [[0, 0], [1, 0], [1, 2]]}, "invalid_zone", "between 0 and 1"),
    ({"zone": [[0, 0], [0.5, 0.5], [1, 1]]}, "invalid_zone", "no area"),
    ({"classes": ["unicorn"]}, "invalid_classes", "Unknown class 'unicorn'"),
    ({"classes": []}, "invalid_classes", "at least one"),
    ({"schedule": {"days": ["mon"], "start": "24:00", "end": "06:00"}}, "invalid_schedule",
     "24-hour"),
    ({"schedule": {"days": ["caturday"], "start": "22:00", "end": "06:00"}},
     "invalid_schedule", "days"),
    ({"timezone": "Mars/Olympus"}, "invalid_timezone", "Unknown time zone"),
    ({"min_confidence": 1.5}, "invalid_min_confidence", "between 0 and 1"),
    ({"min_seconds": -1}, "invalid_min_seconds", "between 0"),
    ({"cooldown_seconds": "soon"}, "invalid_cooldown_seconds", "number"),
    ({"enabled": "yes"}, "invalid_enabled", "true or false"),
    ({"name": "a/b"}, "invalid_name", "'/'"),
    ({"camera": "nosuchcam"}, "unknown_camera", "No camera"),
    ({"camera": "garden", "colour": "red"}, "invalid_field", "colour"),
])
def test_rule_validation_errors(world, change, code, words):
    api = client(world["operator"])
    response = api.post("/api/event-rules/", {**GOOD, **change}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == code and words in body["detail"], body
    assert not EventRule.objects.exists()


def test_rule_body_must_be_an_object_and_camera_is_fixed(world):
    api = client(world["operator"])
    assert api.post("/api/event-rules/", [1, 2], format="json").json()["error"] == "invalid"
    rule = api.post("/api/event-rules/", GOOD, format="json").json()
    moved = api.patch(f"/api/event-rules/{rule['id']}/", {"camera": "garden"}, format="json")
    assert moved.status_code == 400 and moved.json()["error"] == "invalid_camera"


def test_rule_permissions(world):
    rule = EventRule.objects.create(camera="default", classes=["cat"])
    viewer = client(world["viewer"])
    assert viewer.get(f"/api/event-rules/{rule.pk}/").status_code == 200
    refused = viewer.patch(f"/api/event-rules/{rule.pk}/", {"enabled": False}, format="json")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert viewer.post("/api/event-rules/", GOOD, format="json").status_code == 403
    limited = client(world["limited"])  # an operator, but only of garden
    assert limited.get(f"/api/event-rules/{rule.pk}/").json() == {
        "error": "not_found", "detail": "No such event rule."}
    assert limited.get("/api/event-rules/").json()["results"] == []
    created = limited.post("/api/event-rules/", GOOD, format="json")
    assert created.status_code == 400 and created.json()["error"] == "unknown_camera"
    assert limited.post("/api/event-rules/", {**GOOD, "camera": "garden"},
                        format="json").status_code == 201


def test_events_list_filters(world):
    a = event(start=T0)
    b = event(cls="dog", start=T0 + timedelta(hours=1))
    c = event(camera="garden", start=T0 + timedelta(days=1))
    api = client(world["operator"])

    def ids(query=""):
        response = api.get("/api/events/" + query)
        assert response.status_code == 200, response.content
        return [e["id"] for e in response.json()["results"]]

    assert ids() == [c.pk, b.pk, a.pk]
    assert ids("?camera=default") == [b.pk, a.pk]
    assert ids("?class_name=dog") == [b.pk]
    assert ids("?started_after=2026-12-02T12:30:00Z&started_before=2026-12-03T00:00:00Z") == [
        b.pk]
    assert ids("?started_after=2026-12-02T13:30:00%2B01:00") == [c.pk, b.pk]
    bad = api.get("/api/events/?started_after=yesterday")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_filter"
    assert api.get("/api/events/?rule=x").json()["error"] == "invalid_filter"
    assert api.get("/api/events/?limit=1").json()["count"] == 3


def test_limited_viewer_sees_no_events_of_another_camera(world, settings):
    mine = event(camera="garden")
    theirs = event(camera="default", snapshot="events/default/x.jpg")
    snap = settings.MEDIA_ROOT / "events/default/x.jpg"
    snap.parent.mkdir(parents=True)
    snap.write_bytes(JPEG)
    limited = client(world["limited"])
    listed = limited.get("/api/events/").json()
    assert [e["id"] for e in listed["results"]] == [mine.pk]
    assert limited.get("/api/events/?camera=default").json()["count"] == 0
    for path in (f"/api/events/{theirs.pk}/", f"/api/events/{theirs.pk}/snapshot/"):
        hidden = limited.get(path)
        assert hidden.status_code == 404 and hidden.json()["error"] == "not_found", path
        assert hidden.json() == limited.get(path.replace(str(theirs.pk), "999999")).json()
    assert limited.delete(f"/api/events/{theirs.pk}/").status_code == 404
    assert snap.exists() and Event.objects.filter(pk=theirs.pk).exists()
    # the operator of both cameras gets the snapshot
    response = client(world["operator"]).get(f"/api/events/{theirs.pk}/snapshot/")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == JPEG


def test_unknown_ids_and_no_snapshot(world):
    api = client(world["operator"])
    for path in ("/api/events/424242/", "/api/events/424242/snapshot/",
                 "/api/event-rules/424242/"):
        response = api.get(path)
        assert response.status_code == 404 and response.json()["error"] == "not_found", path
    pending = event()
    response = api.get(f"/api/events/{pending.pk}/snapshot/")
    assert response.status_code == 404 and response.json()["error"] == "no_snapshot"


def test_event_delete_needs_the_delete_right_and_removes_the_snapshot(world, settings):
    ev = event()
    row = finish_event(ev.pk, ended_at=T0 + timedelta(seconds=5), jpeg=JPEG,
                       peak_confidence=0.95)
    path = settings.MEDIA_ROOT / Event.objects.get(pk=ev.pk).snapshot.name
    assert path.read_bytes() == JPEG and row["snapshot_url"].endswith(f"/{ev.pk}/snapshot/")
    assert client(world["viewer"]).delete(f"/api/events/{ev.pk}/").status_code == 403
    assert client(world["operator"]).delete(f"/api/events/{ev.pk}/").status_code == 204
    assert not path.exists() and not Event.objects.exists()


def test_finish_links_the_recording_that_covers_the_event(world, settings):
    def rec(start, end, camera="default"):
        return Recording.objects.create(camera=camera, file=recording_relpath(camera, start,
                                                                              "mp4"),
                                        status="complete", started_at=start, ended_at=end,
                                        trigger="event")

    before = rec(T0 - timedelta(minutes=10), T0 - timedelta(minutes=5))
    covering = rec(T0 - timedelta(seconds=5), T0 + timedelta(seconds=20))
    rec(T0 - timedelta(seconds=5), T0 + timedelta(seconds=20), camera="garden")
    rec(T0 + timedelta(seconds=21), None)  # a later one: not the clip
    row = create_event(camera="default", class_name="cat", started_at=T0,
                       peak_confidence=0.8, box=[0.1, 0.1, 0.2, 0.2], frame_number=5)
    done = finish_event(row["id"], ended_at=T0 + timedelta(seconds=4), jpeg=None,
                        peak_confidence=0.9)
    assert done["recording"] == covering.pk and done["recording"] != before.pk
    assert done["clip_url"] == f"/api/recordings/{covering.pk}/download/"
    assert done["snapshot_url"] is None and done["ended_at"]
    # no recording yet at the start: the one the event triggered at the next IDR
    covering.delete()
    late = rec(T0 + timedelta(seconds=1.5), T0 + timedelta(seconds=9))
    again = finish_event(row["id"], ended_at=T0 + timedelta(seconds=4), jpeg=None)
    assert again["recording"] == late.pk
    # deleted while the worker finished it: nothing written, nothing left behind
    gone = create_event(camera="default", class_name="cat", started_at=T0,
                        peak_confidence=0.8)
    delete_event(Event.objects.get(pk=gone["id"]))
    assert finish_event(gone["id"], ended_at=T0, jpeg=JPEG) is None
    assert not list((settings.MEDIA_ROOT / "events").rglob("*.jpg"))
