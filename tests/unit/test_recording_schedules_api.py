"""Recording schedules over REST (per camera: viewers read, operators change, a camera one
may not see is 404 like an unknown one, every bad field a 400 naming it), the schedules
page in words, and the day strip's API (a camera's recordings overlapping a span)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from rest_framework.test import APIClient

from recordings.models import Recording, RecordingSchedule, recording_relpath
from recordings.schedule_fields import describe
from streaming.models import Camera
from tests.support.roles import make_user

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
LIST = "/api/cameras/default/recording-schedules/"
GOOD = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00",
        "timezone": "Europe/Paris", "segment_minutes": 10}


@pytest.fixture
def users(db):
    Camera.objects.create(slug="garden", name="Garden", stream_segment="/petcam_nowhere")
    return {"operator": make_user("operator", "operators"),
            "viewer": make_user("viewer", "viewers"),
            "limited": make_user("limited", "operators", cameras=("garden",))}


def client(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def test_schedule_crud(users):
    api = client(users["operator"])
    created = api.post(LIST, GOOD, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert {k: body[k] for k in GOOD} == GOOD
    assert body["camera"] == "default" and body["enabled"] is True and body["overnight"] is False
    row = RecordingSchedule.objects.get()
    assert (row.start, row.end, row.days) == (time(8), time(18), GOOD["days"])
    url = f"{LIST}{body['id']}/"
    assert api.get(url).json() == body
    assert api.get(LIST).json() == {"camera": "default", "results": [body]}
    # an overnight window is a window, not an error
    night = api.patch(url, {"start": "22:00", "end": "06:00", "days": ["fri", "sat"]},
                      format="json")
    assert night.status_code == 200, night.content
    assert night.json()["overnight"] is True and night.json()["segment_minutes"] == 10
    off = api.patch(url, {"enabled": False}, format="json")
    assert off.status_code == 200 and RecordingSchedule.objects.get().enabled is False
    assert api.delete(url).status_code == 204
    assert not RecordingSchedule.objects.exists()
    assert api.get(url).json()["error"] == "not_found"


def test_defaults_every_day_utc_ten_minute_files(users):
    body = client(users["operator"]).post(LIST, {"start": "00:00", "end": "23:59"},
                                          format="json").json()
    assert body["days"] == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert (body["timezone"], body["segment_minutes"], body["enabled"]) == ("UTC", 10, True)


def test_start_equal_to_end_records_whole_days(users):
    api = client(users["operator"])
    made = api.post(LIST, {"start": "00:00", "end": "00:00", "days": ["sat", "sun"]},
                    format="json")
    assert made.status_code == 201, made.content
    assert (made.json()["start"], made.json()["end"]) == ("00:00", "00:00")
    assert describe(["sat", "sun"], "00:00", "00:00", 10, {}) == (
        "Record continuously: weekends all day, in 10-minute files")
    assert describe(["mon"], "07:30", "07:30", 5, {}) == (
        "Record continuously: mon for 24 hours from 07:30, in 5-minute files")


@pytest.mark.parametrize(("change", "code", "words"), [
    ({"days": ["funday"]}, "invalid_days", "mon"),
    ({"days": []}, "invalid_days", "mon"),
    ({"days": "mon"}, "invalid_days", "mon"),
    ({"start": "25:00"}, "invalid_start", "08:00"),
    ({"start": 800}, "invalid_start", "08:00"),
    ({"end": "6pm"}, "invalid_end", "24-hour"),
    ({"timezone": "Mars/Olympus"}, "invalid_timezone", "Mars/Olympus"),
    ({"timezone": ""}, "invalid_timezone", "time zone"),
    ({"segment_minutes": 0}, "invalid_segment_minutes", "between 1 and 60"),
    ({"segment_minutes": 61}, "invalid_segment_minutes", "between 1 and 60"),
    ({"segment_minutes": 2.5}, "invalid_segment_minutes", "whole number"),
    ({"segment_minutes": True}, "invalid_segment_minutes", "whole number"),
    ({"enabled": "yes"}, "invalid_enabled", "true or false"),
    ({"colour": "red"}, "invalid_field", "colour"),
])
def test_bad_fields_are_400_naming_the_field(users, change, code, words):
    api = client(users["operator"])
    refused = api.post(LIST, {**GOOD, **change}, format="json")
    assert refused.status_code == 400, refused.content
    assert refused.json()["error"] == code and words in refused.json()["detail"], refused.json()
    # the same on an update, and nothing changed
    url = f"{LIST}{api.post(LIST, GOOD, format='json').json()['id']}/"
    assert api.patch(url, change, format="json").json()["error"] == code
    assert RecordingSchedule.objects.get().segment_minutes == 10


def test_missing_times_and_bodies_that_are_not_objects(users):
    api = client(users["operator"])
    assert api.post(LIST, {"start": "08:00"}, format="json").json()["error"] == "invalid_end"
    assert api.post(LIST, ["08:00"], format="json").json()["error"] == "invalid"
    wrong_type = api.post(LIST, "start=08:00", content_type="text/plain")
    assert wrong_type.status_code == 415


def test_viewers_read_operators_change_other_cameras_are_unknown(users):
    RecordingSchedule.objects.create(camera="garden", start=time(8), end=time(9))
    mine = RecordingSchedule.objects.create(camera="default", start=time(8), end=time(9))
    viewer = client(users["viewer"])
    assert viewer.get(LIST).status_code == 200
    assert [s["id"] for s in viewer.get(LIST).json()["results"]] == [mine.pk]  # not garden's
    refused = viewer.post(LIST, GOOD, format="json")
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    assert viewer.delete(f"{LIST}{mine.pk}/").status_code == 403
    # limited to garden: default is exactly an unknown camera, whatever the method
    limited = client(users["limited"])
    for method, path in (("get", LIST), ("post", LIST), ("patch", f"{LIST}{mine.pk}/"),
                         ("delete", f"{LIST}{mine.pk}/")):
        hidden = getattr(limited, method)(path, GOOD, format="json")
        twin = getattr(limited, method)(path.replace("/default/", "/nosuchcam/"), GOOD,
                                         format="json")
        assert hidden.status_code == twin.status_code == 404
        assert hidden.json()["detail"] == twin.json()["detail"].replace("nosuchcam", "default")
    # another camera's schedule under this camera's URL: as if unknown
    garden_id = RecordingSchedule.objects.get(camera="garden").pk
    assert client(users["operator"]).get(f"{LIST}{garden_id}/").json()["error"] == "not_found"
    assert RecordingSchedule.objects.count() == 2
    assert APIClient().get(LIST).status_code in (401, 403)


def test_the_page_says_it_in_words(users, client):
    RecordingSchedule.objects.create(camera="default", days=GOOD["days"], start=time(8),
                                     end=time(18), segment_minutes=10, timezone="Europe/Paris")
    RecordingSchedule.objects.create(camera="default", days=["fri", "sat"], start=time(22),
                                     end=time(6), segment_minutes=1, enabled=False)
    client.force_login(users["viewer"])
    page = client.get("/recordings/schedules/").content.decode()
    assert "Record continuously: weekdays 08:00–18:00, in 10-minute files" in page
    assert "Record continuously: Fri, Sat 22:00–06:00 (overnight), in 1-minute files" in page
    assert 'data-testid="schedule-add"' not in page  # viewers read only
    client.force_login(users["operator"])
    assert 'data-testid="schedule-add"' in client.get("/recordings/schedules/").content.decode()
    assert describe(["sat", "sun"], "00:00", "23:59", 5, {}) == (
        "Record continuously: weekends 00:00–23:59, in 5-minute files")


# --- the day strip's API ------------------------------------------------------------------


def rec(camera="default", trigger="schedule", start=T0, minutes=10.0, previous=None,
        **kw) -> Recording:
    return Recording.objects.create(
        camera=camera, trigger=trigger, status=kw.pop("status", "complete"),
        file=recording_relpath(camera, start, "mp4"), started_at=start,
        ended_at=None if minutes is None else start + timedelta(minutes=minutes),
        duration=(minutes or 0) * 60, previous_segment=previous, **kw)


def spans(api, camera="default", start=T0 - timedelta(hours=8), end=T0 + timedelta(hours=16)):
    return api.get(f"/api/cameras/{camera}/recording-spans/",
                   {"start": start.isoformat(), "end": end.isoformat()})


def test_spans_of_a_day_oldest_first_with_links(users):
    first = rec()
    second = rec(start=T0 + timedelta(minutes=10), previous=first)
    event = rec(trigger="event", start=T0 + timedelta(minutes=12), minutes=1,
                detection_classes=["cat"])
    rec(start=T0 - timedelta(days=2))  # another day
    rec(camera="garden", start=T0)  # another camera
    running = rec(trigger="manual", start=T0 + timedelta(hours=2), minutes=None,
                  status="recording")
    body = spans(client(users["viewer"])).json()
    assert body["camera"] == "default" and body["truncated"] is False
    assert [r["id"] for r in body["recordings"]] == [first.pk, second.pk, event.pk, running.pk]
    by_id = {r["id"]: r for r in body["recordings"]}
    assert by_id[second.pk]["previous_segment"] == first.pk
    assert by_id[event.pk]["trigger"] == "event"
    assert by_id[event.pk]["detection_classes"] == ["cat"]
    assert by_id[running.pk]["ended_at"] is None
    assert by_id[first.pk]["playback_url"] == f"/recordings/{first.pk}/"
    # overlapping the edge counts: a segment that began before the span and ends in it
    edge = spans(client(users["viewer"]), start=T0 + timedelta(minutes=5),
                 end=T0 + timedelta(minutes=11)).json()
    assert [r["id"] for r in edge["recordings"]] == [first.pk, second.pk]


@pytest.mark.parametrize(("query", "words"), [
    ({}, "'start' is required"),
    ({"start": "2026-12-04T00:00:00Z"}, "'end' is required"),
    ({"start": "yesterday", "end": "2026-12-04T00:00:00Z"}, "ISO 8601"),
    ({"start": "2026-12-04T00:00:00Z", "end": "2026-12-04T00:00:00Z"}, "after 'start'"),
    ({"start": "2026-12-04T00:00:00Z", "end": "2026-12-12T00:00:00Z"}, "7 days"),
])
def test_spans_bad_parameters_are_400(users, query, words):
    refused = client(users["viewer"]).get("/api/cameras/default/recording-spans/", query)
    assert refused.status_code == 400, refused.content
    assert refused.json()["error"] == "invalid_filter" and words in refused.json()["detail"]


def test_spans_of_unknown_or_hidden_cameras_are_404(users):
    viewer, limited = client(users["viewer"]), client(users["limited"])
    unknown = spans(viewer, camera="nosuchcam")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_camera")
    hidden = spans(limited, camera="default")
    twin = spans(limited, camera="nosuchcam")
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == twin.json()["detail"].replace("nosuchcam", "default")
    assert spans(limited, camera="garden").status_code == 200
    # a removed camera's recordings stay in the catalog: their day still shows
    rec(camera="oldcam")
    assert [r["camera"] for r in [spans(viewer, camera="oldcam").json()]] == ["oldcam"]
    norole = client(make_user("norole"))
    assert spans(norole).status_code == 403
