"""Phone notifications through a real (local) Web Push service: the POST carries a VAPID
JWT that verifies with the key the API hands browsers, and an aes128gcm body that the
service decrypts with the browser-side keys the test made. A 410 deletes the
subscription; cameras, classes and quiet hours choose; a user who may not see the camera
gets nothing. The API refuses bad subscriptions with clear errors."""

from __future__ import annotations

import asyncio
import os
import stat
from datetime import UTC, datetime, time, timedelta

import pytest
from rest_framework.test import APIClient

from events import push, vapid_keys
from events.models import Event, PushSubscription
from streaming.models import Camera
from tests.support.push_service import PushService
from tests.support.roles import make_user


@pytest.fixture
def service():
    s = PushService()
    yield s
    s.close()


@pytest.fixture
def world(transactional_db, settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.PETCAM_PUSH_ALLOW_LOCAL = True
    vapid_keys._cached.cache_clear()
    Camera.objects.filter(slug="default").update(name="Kitchen")
    Camera.objects.create(slug="garden", name="Garden", stream_segment="/petcam_nowhere")
    return {"viewer": make_user("viewer", "viewers"),
            "limited": make_user("limited", "operators", cameras=("garden",)),
            "nobody": make_user("nobody")}


def client(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def subscribe(user, sub, **choices) -> dict:
    reply = client(user).post("/api/push/subscriptions/", {**sub.as_browser_json(), **choices},
                              format="json")
    assert reply.status_code == 201, reply.content
    return reply.json()


def fire(camera="default", cls="cat") -> dict:
    ev = Event.objects.create(camera=camera, class_name=cls, peak_confidence=0.87,
                              started_at=datetime.now(UTC))
    asyncio.run(push.notify("started", ev.to_api()))
    return ev.to_api()


def test_push_arrives_signed_and_decryptable(world, service):
    sub = service.subscribe()
    subscribe(world["viewer"], sub, label="my phone")
    ev = fire()
    assert service.errors == []
    assert sub.received == [{
        "title": "Cat in the kitchen", "body": sub.received[0]["body"],
        "image": "/api/cameras/default/still/", "url": f"/events/#event-{ev['id']}",
        "event": ev["id"], "tag": f"petcam-event-{ev['id']}"}]
    assert "87 % sure" in sub.received[0]["body"]
    key = client(world["viewer"]).get("/api/push/vapid-public-key/").json()["public_key"]
    assert service.vapid_keys == {key}
    # An end sends nothing (the start did).
    asyncio.run(push.notify("ended", ev))
    assert len(sub.received) == 1


def test_the_notification_shows_the_events_snapshot(world, service):
    """An event stored with its start snapshot: the push points at it (the live still is
    only the fallback of an event without one, above) and a click opens the event."""
    sub = service.subscribe()
    subscribe(world["viewer"], sub)
    ev = Event.objects.create(camera="default", class_name="cat", peak_confidence=0.9,
                              started_at=datetime.now(UTC), snapshot="events/x/1.jpg")
    asyncio.run(push.notify("started", ev.to_api()))
    (data,) = sub.received
    assert data["image"] == f"/api/events/{ev.pk}/snapshot/"
    assert data["url"] == f"/events/#event-{ev.pk}" and data["event"] == ev.pk


def test_gone_subscription_is_deleted(world, service):
    sub = service.subscribe()
    sub.status = 410
    subscribe(world["viewer"], sub)
    fire()
    assert len(sub.received) == 1 and not PushSubscription.objects.exists()


def test_unreachable_service_does_not_stop_the_others(world, service, settings):
    settings.PETCAM_PUSH_TIMEOUT_SECONDS = 2
    dead = PushService()
    lost = dead.subscribe()
    dead.close()
    ok = service.subscribe()
    subscribe(world["viewer"], lost)
    subscribe(world["viewer"], ok)
    fire()
    assert len(ok.received) == 1 and PushSubscription.objects.count() == 2


def test_a_hanging_push_service_times_out_and_the_others_still_get_theirs(world, service,
                                                                        settings):
    settings.PETCAM_PUSH_TIMEOUT_SECONDS = 0.5
    slow, ok = service.subscribe(), service.subscribe()
    slow.hang = 3
    subscribe(world["viewer"], slow)
    subscribe(world["viewer"], ok)
    fire()
    assert len(ok.received) == 1 and len(slow.received) == 1  # sent, never answered
    assert PushSubscription.objects.count() == 2  # a timeout is not "gone"


def test_choices_and_quiet_hours_suppress(world, service):
    now = datetime.now(UTC)
    quiet = service.subscribe()
    subscribe(world["viewer"], quiet, quiet_start=(now - timedelta(hours=1)).strftime("%H:%M"),
              quiet_end=(now + timedelta(hours=1)).strftime("%H:%M"), timezone="UTC")
    dogs = service.subscribe()
    subscribe(world["viewer"], dogs, classes=["dog"])
    garden = service.subscribe()
    subscribe(world["viewer"], garden, cameras=["garden"])
    awake = service.subscribe()  # quiet hours elsewhere in the day (Tokyo's clock)
    tokyo = (now + timedelta(hours=9 + 3)).strftime("%H:%M")
    subscribe(world["viewer"], awake, quiet_start=tokyo,
              quiet_end=(now + timedelta(hours=9 + 4)).strftime("%H:%M"), timezone="Asia/Tokyo")
    fire()
    assert (quiet.received, dogs.received, garden.received) == ([], [], [])
    assert len(awake.received) == 1
    fire(camera="garden", cls="dog")
    assert len(dogs.received) == 1 and len(garden.received) == 1 and quiet.received == []


def test_no_access_to_the_camera_no_notification(world, service):
    sub = service.subscribe()
    subscribe(world["limited"], sub)
    fire(camera="default")
    assert sub.received == []
    fire(camera="garden")
    assert len(sub.received) == 1
    # A role taken away after subscribing: nothing any more.
    world["limited"].groups.clear()
    fire(camera="garden")
    assert len(sub.received) == 1


@pytest.mark.parametrize(("start", "end", "now", "quiet"), [
    (time(22), time(6), time(23, 30), True), (time(22), time(6), time(5, 59), True),
    (time(22), time(6), time(6), False), (time(22), time(6), time(12), False),
    (time(1), time(5), time(3), True), (time(1), time(5), time(0, 30), False),
    (None, None, time(3), False)])
def test_quiet_hours(start, end, now, quiet):
    at = datetime.combine(datetime(2026, 7, 1), now, tzinfo=UTC)
    assert push.in_quiet_hours(start, end, "UTC", at) is quiet


def test_paris_quiet_hours_follow_daylight_saving():
    # 21:30 UTC is 23:30 in Paris in July, 22:30 in January: both within 22:00-06:00.
    for month in (1, 7):
        at = datetime(2026, month, 1, 21, 30, tzinfo=UTC)
        assert push.in_quiet_hours(time(22), time(6), "Europe/Paris", at)
    assert not push.in_quiet_hours(time(22), time(6), "Europe/Paris",
                                   datetime(2026, 7, 1, 19, 30, tzinfo=UTC))


def test_vapid_key_made_once_and_kept_private(tmp_path):
    first = vapid_keys.load(tmp_path)
    path = tmp_path / vapid_keys.KEY_FILE_NAME
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert vapid_keys.load(tmp_path).private_numbers() == first.private_numbers()


@pytest.mark.parametrize(("change", "code"), [
    ({"endpoint": "http://push.example.com/x"}, "invalid_endpoint"),
    ({"endpoint": "https://127.0.0.1/x"}, "invalid_endpoint"),
    ({"endpoint": 5}, "invalid_endpoint"),
    ({"keys": {"p256dh": "AAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "invalid_keys"),
    ({"keys": None}, "invalid_keys"),
    ({"cameras": ["attic"]}, "invalid_cameras"),
    ({"classes": ["unicorn"]}, "invalid_classes"),
    ({"quiet_start": "22:00"}, "invalid_quiet_hours"),
    ({"quiet_start": "25:00", "quiet_end": "06:00"}, "invalid_quiet_start"),
    ({"timezone": "Mars/Olympus"}, "invalid_timezone"),
    ({"colour": "red"}, "invalid_field"),
])
def test_subscription_validation(world, service, settings, change, code):
    settings.PETCAM_PUSH_ALLOW_LOCAL = False
    body = {**service.subscribe().as_browser_json(), "endpoint": "https://push.example.com/a",
            **change}
    reply = client(world["viewer"]).post("/api/push/subscriptions/", body, format="json")
    assert reply.status_code == 400 and reply.json()["error"] == code, reply.content


def test_subscription_api_lifecycle(world, service):
    viewer, other = world["viewer"], world["limited"]
    sub = service.subscribe()
    made = subscribe(viewer, sub, label="phone", classes=["cat"])
    # Subscribing the same browser again updates its row.
    again = client(viewer).post("/api/push/subscriptions/",
                                {**sub.as_browser_json(), "label": "Phone"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == made["id"]
    assert client(viewer).get("/api/push/subscriptions/").json()["results"][0]["label"] == "Phone"
    assert client(other).get("/api/push/subscriptions/").json()["results"] == []
    url = f"/api/push/subscriptions/{made['id']}/"
    assert client(other).patch(url, {"label": "x"}, format="json").status_code == 404
    assert client(other).delete(url).status_code == 404
    changed = client(viewer).patch(url, {"quiet_start": "22:00", "quiet_end": "06:30",
                                         "timezone": "Europe/Paris"}, format="json")
    assert changed.status_code == 200 and changed.json()["quiet_end"] == "06:30"
    gone = client(viewer).delete("/api/push/subscriptions/", {"endpoint": sub.endpoint},
                                 format="json")
    assert gone.status_code == 204 and not PushSubscription.objects.exists()
    assert client(viewer).delete(url).status_code == 404
    assert client(world["nobody"]).get("/api/push/vapid-public-key/").status_code == 403
