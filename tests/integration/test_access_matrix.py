"""Who may reach what: every route of the URL map and the WebSocket, for every kind of user.

Users: anonymous, a logged-in user without a role, viewer, operator, admin (the admins
group + staff), superuser, and "limited": a viewer limited to the second camera `garden`,
for whom `default` must look exactly like a camera that does not exist.

Part 1 is in-process and table-driven (Django's test client: Bearer tokens for the API,
sessions for pages). No media worker runs there: endpoints that ask it answer 504
worker_timeout quickly, which proves the request got past every access check. A guard
test fails when a route is added to the URL map without a row here.
Part 2 uses one real site (`manage.py serve`: daphne + in-process worker, + simulator)
for what needs the worker or a socket: the WebSocket for every user, a real WHEP answer
for a viewer, a real recording start/stop for an operator, the same refused for a viewer.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from dataclasses import dataclass
from datetime import time
from pathlib import Path

import pytest
import websockets
from aiortc import RTCPeerConnection
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from events.models import Event, EventRule
from recordings.models import Recording, RecordingSchedule, recording_relpath
from streaming.media.shm import segment as shm_segment
from streaming.models import Camera
from tests.support.processes import (
    manage,
    migrate,
    pick_free_port,
    site_env,
    start_simulator,
    start_site,
)
from tests.support.roles import make_user
from tests.support.tokens import make_token
from tests.support.webrtc_client import http, wait_live

USERS = ("anonymous", "norole", "viewer", "operator", "admin", "superuser", "limited")

# Outcomes: P passed every access check, D denied (401/403), H hidden (404 exactly like an
# unknown camera or recording), L redirected to a login page.
P, D, H, L = "passed", "denied", "hidden", "login"


def _kind(anonymous=D, norole=D, viewer=P, operator=P, admin=P, superuser=P, limited=P):
    return {"anonymous": anonymous, "norole": norole, "viewer": viewer, "operator": operator,
            "admin": admin, "superuser": superuser, "limited": limited}


KINDS = {
    "public": _kind(anonymous=P, norole=P),
    "role": _kind(),  # any role; lists filtered per user
    "watch": _kind(limited=H),  # under camera `default`
    "watch_garden": _kind(),  # under camera `garden`: the limited user may
    "watch_any": _kind(),  # the watch right, no camera (ICE servers)
    "control": _kind(viewer=D, limited=H),  # start/stop on `default`
    "rec_read": _kind(limited=H),  # a recording of `default`
    "rec_read_garden": _kind(),
    "rec_write": _kind(viewer=D, limited=D),  # the method is refused before any lookup
    "page": _kind(anonymous=L),
    "page_rec": _kind(anonymous=L, limited=H),
    "page_control": _kind(anonymous=L, viewer=D, limited=D),  # operators' pages
    "account": _kind(anonymous=L, norole=P),
    "admin": _kind(anonymous=L, norole=L, viewer=L, operator=L, limited=L),
    "revoke": _kind(norole=P),  # DELETE /api/auth/token/: any logged-in user
    "logout": dict.fromkeys(USERS, L),  # everyone ends on the login page
    "nowhere": dict.fromkeys(USERS, H),  # the JSON 404 for unknown /api/ paths
    # another user's (or no) push device: refused without a role, else 404 like unknown
    "not_yours": _kind(viewer=H, operator=H, admin=H, superuser=H, limited=H),
}


@dataclass(frozen=True)
class Row:
    route: str  # as in the URL map
    method: str
    path: str  # {rec} / {garden_rec}: recording ids; {event} / {rule}: of camera default
    kind: str
    ok: tuple[int, ...] = ()  # statuses that count as passed (empty: any non-refusal)
    body: object = None
    content_type: str = "application/json"

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


OFFER = {"type": "offer", "sdp": "v=0"}  # refused as invalid_sdp, after the access checks
ROWS = [
    Row("", "GET", "/", "page", (200,)),
    Row("recordings/", "GET", "/recordings/", "page", (200,)),
    Row("health", "GET", "/health", "public", (200, 503)),
    Row("admin/", "GET", "/admin/", "admin", (200,)),
    Row("accounts/login/", "GET", "/accounts/login/", "public", (200, 302)),
    Row("accounts/logout/", "POST", "/accounts/logout/", "logout"),
    Row("account/", "GET", "/account/", "account", (200,)),
    Row("account/password/", "GET", "/account/password/", "account", (200,)),
    Row("favicon.ico", "GET", "/favicon.ico", "public", (302,)),
    # the installable app's shell: nothing about any user in them
    Row("manifest.webmanifest", "GET", "/manifest.webmanifest", "public", (200,)),
    Row("sw.js", "GET", "/sw.js", "public", (200,)),
    # the pages' JS strings in the asker's language: the same for everyone (the login page too)
    Row("jsi18n/", "GET", "/jsi18n/", "public", (200,)),
    # no password: refused before any authentication (a wrong one would count towards a lockout)
    Row("api/auth/token/", "POST", "/api/auth/token/", "public", (400,), {"username": "nobody"}),
    Row("api/auth/token/", "DELETE", "/api/auth/token/", "revoke", (204,)),
    Row("api/schema/", "GET", "/api/schema/", "role", (200,)),
    Row("api/cameras/", "GET", "/api/cameras/", "role", (200,)),
    Row("api/cameras/<slug:camera>/", "GET", "/api/cameras/default/", "watch", (200,)),
    Row("api/cameras/<slug:camera>/", "GET", "/api/cameras/garden/", "watch_garden", (200,)),
    Row("api/cameras/<slug:camera>/webrtc/offer/", "POST", "/api/cameras/default/webrtc/offer/",
        "watch", (400,), OFFER),
    Row("api/cameras/<slug:camera>/webrtc/<str:session>/", "DELETE",
        "/api/cameras/default/webrtc/abc/", "watch", (504,)),
    Row("api/cameras/<slug:camera>/detections/", "GET", "/api/cameras/default/detections/",
        "watch", (200,)),
    Row("api/cameras/<slug:camera>/detections/", "GET", "/api/cameras/garden/detections/",
        "watch_garden", (200,)),
    Row("api/webrtc/offer", "POST", "/api/webrtc/offer", "watch", (400,), OFFER),
    Row("api/webrtc/ice-servers/", "GET", "/api/webrtc/ice-servers/", "watch_any", (200,)),
    Row("api/cameras/<slug:camera>/recording/", "GET", "/api/cameras/default/recording/",
        "watch", (504,)),
    Row("api/cameras/<slug:camera>/recording/start/", "POST",
        "/api/cameras/default/recording/start/", "control", (504,), {}),
    Row("api/cameras/<slug:camera>/recording/stop/", "POST",
        "/api/cameras/default/recording/stop/", "control", (504,)),
    Row("api/recording/start", "POST", "/api/recording/start", "control", (504,), {}),
    Row("api/recording/stop", "POST", "/api/recording/stop", "control", (504,)),
    Row("api/recording/status", "GET", "/api/recording/status", "watch", (504,)),
    Row("api/recordings/", "GET", "/api/recordings/", "role", (200,)),
    Row("api/recordings/<int:pk>/", "GET", "/api/recordings/{rec}/", "rec_read", (200,)),
    Row("api/recordings/<int:pk>/", "GET", "/api/recordings/{garden_rec}/", "rec_read_garden",
        (200,)),
    Row("api/recordings/<int:pk>/", "PATCH", "/api/recordings/{rec}/", "rec_write", (200,),
        {"keep": True}),
    Row("api/recordings/<int:pk>/", "DELETE", "/api/recordings/{rec}/", "rec_write", (204,)),
    Row("api/recordings/<int:pk>/download/", "GET", "/api/recordings/{rec}/download/",
        "rec_read", (200,)),
    Row("api/recordings/<int:pk>/thumbnail/", "GET", "/api/recordings/{rec}/thumbnail/",
        "rec_read", (404,)),  # the file is not a video: 404 no_thumbnail, after the checks
    Row("whep/<slug:camera>", "POST", "/whep/default", "watch", (400,), "v=0",
        "application/sdp"),
    Row("whep/<slug:camera>/<str:session>", "DELETE", "/whep/default/abc", "watch", (504,)),
    Row("whep/<slug:camera>/<str:session>", "PATCH", "/whep/default/abc", "watch", (405,)),
    Row("^(api|whep)/", "GET", "/api/no-such-thing/", "nowhere", (404,)),
    # the playback page and its API (recordings/playback_urls.py)
    Row("recordings/<int:pk>/", "GET", "/recordings/{rec}/", "page_rec", (200,)),
    Row("api/recordings/<int:pk>/keyframes/", "GET", "/api/recordings/{rec}/keyframes/",
        "rec_read"),
    Row("api/recordings/<int:pk>/thumbnails/", "GET", "/api/recordings/{rec}/thumbnails/",
        "rec_read"),
    Row("api/recordings/<int:pk>/thumbnails/sprite.jpg", "GET",
        "/api/recordings/{rec}/thumbnails/sprite.jpg", "rec_read"),
    Row("api/recordings/<int:pk>/hls/index.m3u8", "GET", "/api/recordings/{rec}/hls/index.m3u8",
        "rec_read"),
    Row("api/recordings/<int:pk>/hls/link/", "GET", "/api/recordings/{rec}/hls/link/",
        "rec_read"),
    Row("api/recordings/<int:pk>/hls/media.mp4", "GET", "/api/recordings/{rec}/hls/media.mp4",
        "rec_read"),
    Row("api/recordings/<int:pk>/timeline/", "GET", "/api/recordings/{rec}/timeline/",
        "rec_read"),
    Row("api/recordings/<int:pk>/detections/", "GET", "/api/recordings/{rec}/detections/",
        "rec_read"),
    # the day strip: a camera's recordings in a span, like the recordings list
    Row("api/cameras/<slug:camera>/recording-spans/", "GET",
        "/api/cameras/default/recording-spans/?start=2026-12-04T00:00:00Z"
        "&end=2026-12-05T00:00:00Z", "watch", (200,)),
    Row("api/cameras/<slug:camera>/recording-spans/", "GET",
        "/api/cameras/garden/recording-spans/?start=2026-12-04T00:00:00Z"
        "&end=2026-12-05T00:00:00Z", "watch_garden", (200,)),
    # recording schedules (recordings/schedule_urls.py): like event rules, under the camera
    Row("recordings/schedules/", "GET", "/recordings/schedules/", "page", (200,)),
    Row("api/cameras/<slug:camera>/recording-schedules/", "GET",
        "/api/cameras/default/recording-schedules/", "watch", (200,)),
    Row("api/cameras/<slug:camera>/recording-schedules/", "POST",
        "/api/cameras/default/recording-schedules/", "control", (201,),
        {"start": "08:00", "end": "18:00"}),
    Row("api/cameras/<slug:camera>/recording-schedules/<int:pk>/", "GET",
        "/api/cameras/default/recording-schedules/{schedule}/", "watch", (200,)),
    Row("api/cameras/<slug:camera>/recording-schedules/<int:pk>/", "PATCH",
        "/api/cameras/default/recording-schedules/{schedule}/", "control", (200,),
        {"enabled": False}),
    Row("api/cameras/<slug:camera>/recording-schedules/<int:pk>/", "DELETE",
        "/api/cameras/default/recording-schedules/{schedule}/", "control", (204,)),
    # events and event rules (events/urls.py): events like recordings, rules like control
    Row("events/", "GET", "/events/", "page", (200,)),
    Row("events/rules/", "GET", "/events/rules/", "page", (200,)),
    Row("events/rules/new/", "GET", "/events/rules/new/", "page_control", (200,)),
    Row("events/rules/<int:pk>/", "GET", "/events/rules/{rule}/", "page_control", (200,)),
    Row("api/events/", "GET", "/api/events/", "role", (200,)),
    Row("api/events/<int:pk>/", "GET", "/api/events/{event}/", "rec_read", (200,)),
    Row("api/events/<int:pk>/", "DELETE", "/api/events/{event}/", "rec_write", (204,)),
    Row("api/events/<int:pk>/snapshot/", "GET", "/api/events/{event}/snapshot/", "rec_read",
        (404,)),  # no snapshot yet: 404 no_snapshot, after the checks
    Row("api/event-rules/", "GET", "/api/event-rules/", "role", (200,)),
    Row("api/event-rules/", "POST", "/api/event-rules/", "rec_write", (201,),
        {"camera": "default", "classes": ["cat"]}),
    Row("api/event-rules/<int:pk>/", "GET", "/api/event-rules/{rule}/", "rec_read", (200,)),
    Row("api/event-rules/<int:pk>/", "PATCH", "/api/event-rules/{rule}/", "rec_write", (200,),
        {"enabled": False}),
    Row("api/event-rules/<int:pk>/", "DELETE", "/api/event-rules/{rule}/", "rec_write", (204,)),
    Row("api/cameras/<slug:camera>/still/", "GET", "/api/cameras/default/still/", "watch",
        (504,)),
    # phone notifications: one's own devices, for any role that may see events
    Row("api/push/vapid-public-key/", "GET", "/api/push/vapid-public-key/", "role", (200,)),
    Row("api/push/subscriptions/", "GET", "/api/push/subscriptions/", "role", (200,)),
    Row("api/push/subscriptions/<int:pk>/", "DELETE", "/api/push/subscriptions/999999/",
        "not_yours"),  # nobody's device: 404 after the role check
]
# Routes this module does not judge, and why.
NOT_HERE = {
    "metrics": "loopback or a staff token (tests/integration/test_metrics.py)",
}
UNKNOWN_CAMERA = "nosuchcam"
UNKNOWN_RECORDING = 987654


def url_routes(resolver=None, prefix: str = "") -> set[str]:
    routes = set()
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            # the admin site is one surface (its own login and staff check)
            routes |= {route} if route == "admin/" else url_routes(entry, route)
        elif isinstance(entry, URLPattern):
            routes.add(route)
    return routes


def test_every_route_is_in_the_table():
    covered = {row.route for row in ROWS} | set(NOT_HERE)
    missing = url_routes() - covered
    assert not missing, f"routes without a row in the access matrix: {sorted(missing)}"
    stale = covered - url_routes()
    assert not stale, f"rows for routes that no longer exist: {sorted(stale)}"


# --- part 1: in-process ------------------------------------------------------------------


@dataclass
class World:
    users: dict[str, object]
    tokens: dict[str, str]
    rec: Recording
    garden_rec: Recording
    media: Path
    event: Event
    rule: EventRule
    schedule: RecordingSchedule

    def ensure_files(self) -> None:
        """A DELETE row removes the files; every request starts with them in place."""
        for rec in (self.rec, self.garden_rec):
            path = self.media / rec.file.name
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_bytes(b"\0\0\0\1not really h264 " * 64)


@pytest.fixture
def world(db, settings, tmp_path) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    # No media worker in-process: fail fast with 504 where a view asks it.
    settings.PETCAM_SIGNALING_TIMEOUT = 0.1
    settings.PETCAM_HEALTH_TIMEOUT = 0.1
    async_to_sync(get_channel_layer().flush)()  # unanswered requests from earlier tests
    Camera.objects.create(slug="garden", name="Garden", stream_segment="/petcam_nowhere")
    users = {
        "norole": make_user("norole"),
        "viewer": make_user("viewer", "viewers"),
        "operator": make_user("operator", "operators"),
        "admin": make_user("admin", "admins", staff=True),
        "superuser": make_user("root", superuser=True),
        "limited": make_user("limited", "viewers", cameras=("garden",)),
    }
    tokens = {name: make_token(user) for name, user in users.items()}
    now = timezone.now()
    recs = [Recording.objects.create(camera=cam, file=recording_relpath(cam, now, "h264"),
                                     format="h264", status="complete", started_at=now)
            for cam in ("default", "garden")]
    rule = EventRule.objects.create(camera="default", classes=["cat"])
    event = Event.objects.create(rule=rule, camera="default", class_name="cat", started_at=now,
                                 peak_confidence=0.9)
    schedule = RecordingSchedule.objects.create(camera="default", start=time(8), end=time(18),
                                                enabled=False)
    world = World(users, tokens, recs[0], recs[1], settings.MEDIA_ROOT, event, rule, schedule)
    world.ensure_files()
    return world


def send(world: World, user: str, row: Row, path: str | None = None):
    """The row's request as `user`: Bearer token for /api/ and /whep/, a session otherwise.
    Whatever it changes in the database is rolled back (the next user finds it as it was)."""
    with transaction.atomic():
        response = _send(world, user, row, path)
        transaction.set_rollback(True)
    return response


def _send(world: World, user: str, row: Row, path: str | None):
    world.ensure_files()
    client = Client()
    headers = {}
    path = (path or row.path).format(rec=world.rec.pk, garden_rec=world.garden_rec.pk,
                                     event=world.event.pk, rule=world.rule.pk,
                                     schedule=world.schedule.pk)
    if user != "anonymous":
        if path.startswith(("/api/", "/whep/")):
            headers["HTTP_AUTHORIZATION"] = f"Bearer {world.tokens[user]}"
        else:
            client.force_login(world.users[user])
    data = row.body
    if data is not None and row.content_type == "application/json":
        data = json.dumps(data)
    return client.generic(row.method, path, data=data or "", content_type=row.content_type,
                          **headers)


def body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def error_code(response) -> str | None:
    text = body(response).decode(errors="replace")
    if "openapi" in response.get("Content-Type", ""):  # /api/schema/ answers in YAML
        found = re.match(r"error: (\S+)", text)
        return found.group(1) if found else None
    if "json" not in response.get("Content-Type", ""):
        return None
    try:
        return json.loads(text).get("error")
    except (ValueError, AttributeError):
        return None


def outcome(response) -> str:
    status = response.status_code
    if status == 302 and response["Location"].startswith(("/accounts/login/", "/admin/login/")):
        return L
    if status in (401, 403):
        return D
    if status == 404 and error_code(response) in ("unknown_camera", "not_found"):
        return H
    if status == 404 and b'data-testid="not-found"' in body(response):  # the HTML 404 page
        return H
    return P


def no_csrf(text: str) -> str:
    """An HTML page without its per-response CSRF token (the header's logout form)."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)


def unknown_twin(path: str) -> str:
    """The same request on a camera or recording that does not exist."""
    if "{rec}" in path or "{garden_rec}" in path:
        return path.replace("{rec}", str(UNKNOWN_RECORDING))
    if "{event}" in path or "{rule}" in path:
        return path.replace("{event}", str(UNKNOWN_RECORDING)).replace(
            "{rule}", str(UNKNOWN_RECORDING))
    return path.replace("/default", f"/{UNKNOWN_CAMERA}")


def assert_no_leak(world: World, response, what: str) -> None:
    text = body(response).decode(errors="replace")
    for secret in ("Traceback", str(world.media), world.rec.file.name, world.garden_rec.file.name,
                   f'"id": {world.rec.pk},', f'"id":{world.rec.pk},'):
        assert secret not in text, f"{what}: the refusal shows {secret!r}: {text[:300]}"


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_access_matrix(world, row):
    expected = KINDS[row.kind]
    wrong = []
    for user in USERS:
        response = send(world, user, row)
        got = outcome(response)
        what = f"{user} {row.id} -> {response.status_code} {body(response)[:160]!r}"
        if got != expected[user]:
            wrong.append(f"{what}: expected {expected[user]}, got {got}")
            continue
        if got == P and row.ok:
            if response.status_code not in row.ok:
                wrong.append(f"{what}: passed, but status not in {row.ok}")
        elif got == D and row.path.startswith(("/api/", "/whep/")):
            code = error_code(response)
            want = "not_authenticated" if user == "anonymous" else "forbidden"
            if code != want:
                wrong.append(f"{what}: refused with {code!r}, expected {want!r}")
        elif got == H:
            # exactly what the same user gets for a camera/recording that does not exist
            twin = send(world, user, row, unknown_twin(row.path))
            twin_text = body(twin).decode().replace(UNKNOWN_CAMERA, "default")
            twin_text = no_csrf(twin_text.replace(str(UNKNOWN_RECORDING), str(world.rec.pk)))
            if (twin.status_code, twin_text) != (response.status_code,
                                                 no_csrf(body(response).decode())):
                wrong.append(f"{what}: differs from an unknown one: {twin.status_code} "
                             f"{body(twin)[:160]!r}")
        if got != P or (response.status_code >= 400 and row.kind != "public"):
            assert_no_leak(world, response, what)
    assert not wrong, "\n".join(wrong)


def api_get(world: World, user: str, path: str) -> dict:
    response = Client().get(path, HTTP_AUTHORIZATION=f"Bearer {world.tokens[user]}")
    assert response.status_code == 200, response.content
    return response.json()


def test_lists_show_only_what_the_user_may_see(world):
    def cameras(user):
        return [c["camera"] for c in api_get(world, user, "/api/cameras/")["results"]]

    def recordings(user):
        return sorted(r["id"] for r in api_get(world, user, "/api/recordings/")["results"])

    both = sorted([world.rec.pk, world.garden_rec.pk])
    for user in ("viewer", "operator", "admin", "superuser"):
        assert sorted(cameras(user)) == ["default", "garden"], user
        assert recordings(user) == both, user
    assert cameras("limited") == ["garden"]
    assert recordings("limited") == [world.garden_rec.pk]
    # a filter cannot widen it
    limited = api_get(world, "limited", "/api/recordings/?camera=default")
    assert limited["count"] == 0 and limited["results"] == []


def test_pages_show_only_allowed_cameras_and_buttons(world):
    def page(user, path):
        client = Client()
        client.force_login(world.users[user])
        response = client.get(path)
        assert response.status_code == 200, (user, path, response.status_code)
        return response.content.decode()

    viewer, operator = (page(u, "/?camera=default") for u in ("viewer", "operator"))
    assert 'id="record-button"' not in viewer  # viewers watch, they do not record
    assert 'id="record-button"' in operator
    assert 'data-camera="default"' in viewer
    limited = page("limited", "/")  # their only camera
    assert 'data-camera="garden"' in limited and 'data-camera="default"' not in limited
    client = Client()
    client.force_login(world.users["limited"])
    assert client.get("/?camera=default").status_code == 404  # like ?camera=nosuchcam
    Camera.objects.filter(slug="garden").update(enabled=False)  # nothing left to see
    empty = client.get("/")
    assert empty.status_code == 200 and b'data-testid="no-cameras"' in empty.content
    client.force_login(world.users["norole"])
    refused = client.get("/")
    assert refused.status_code == 403 and b"ask an admin to give you a role" in refused.content
    # recordings page: the camera filter offers only the limited user's camera
    rec_page = page("limited", "/recordings/")
    assert 'value="garden"' in rec_page and 'value="default"' not in rec_page
    # Delete and Keep only for roles that may use them
    assert 'data-can-delete="0" data-can-change="0"' in rec_page
    assert 'data-can-delete="1" data-can-change="1"' in page("operator", "/recordings/")
    # every logged-in page links the account page
    assert 'href="/account/"' in viewer


def test_roles_are_seeded_by_the_migration(db):
    """The groups exist after `migrate` alone (pytest-django migrates the test database)."""
    from django.contrib.auth.models import Group

    perms = {g.name: {f"{p.content_type.app_label}.{p.codename}" for p in g.permissions.all()}
             for g in Group.objects.filter(name__in=("viewers", "operators", "admins"))}
    assert perms["viewers"] == {"streaming.watch_camera", "recordings.view_recording"}
    assert perms["operators"] == perms["viewers"] | {
        "streaming.control_recording", "recordings.change_recording",
        "recordings.delete_recording"}
    assert perms["operators"] < perms["admins"]
    assert {"auth.change_user", "streaming.change_camera",
            "streaming.add_cameraaccess"} <= perms["admins"]
    # API tokens: listed and revoked, never made for someone else, never DRF's clear keys
    assert {"accounts.view_apitoken", "accounts.delete_apitoken"} <= perms["admins"]
    assert not {p for p in perms["admins"]
                if p.startswith("authtoken.") or p == "accounts.add_apitoken"}


# --- part 2: one real site ------------------------------------------------------------------

MAKE_USERS = """
import json
from django.contrib.auth.models import Group, User
from tests.support.tokens import make_token
from streaming.models import Camera, CameraAccess
garden = Camera.objects.create(slug="garden", name="Garden", stream_segment={segment!r})
def user(name, group=None):
    u = User.objects.create_user(name, password=None)
    if group:
        u.groups.add(Group.objects.get(name=group))
    return u
users = {{"norole": user("norole"), "viewer": user("viewer", "viewers"),
         "operator": user("operator", "operators"), "limited": user("limited", "viewers"),
         "superuser": User.objects.create_superuser("root", password=None)}}
CameraAccess.objects.create(user=users["limited"], camera=garden)
print(json.dumps({{n: make_token(u) for n, u in users.items()}}))
"""


@dataclass
class Site:
    base: str
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("access")
    env = site_env(tmp)
    migrate(env)
    # garden's segment never appears: its reader just waits (no CPU)
    out = manage(env, "shell", "-c", MAKE_USERS.format(
        segment=f"{env['PETCAM_SHM_STREAM']}_{secrets.token_hex(3)}"))
    tokens = json.loads(out.strip().splitlines()[-1])
    port = pick_free_port()
    proc = start_site(env, port, tmp / "logs")
    sim = None
    try:
        sim = start_simulator(env, tmp / "logs", "--bitrate", "300")
        site = Site(f"http://127.0.0.1:{port}", tokens)
        wait_live(site.base, tokens["superuser"], width=320)
        yield site
    finally:
        if sim is not None:
            sim.stop()
        proc.stop()
        shm_segment.unlink(env["PETCAM_SHM_STREAM"])
        shm_segment.unlink(env["PETCAM_SHM_DETECTIONS"])


async def ws_first(site, camera: str, token: str | None) -> tuple[dict, int | None]:
    """Connect, send a ping; (first message that is not a status event, close code)."""
    port = site.base.rsplit(":", 1)[1]
    query = f"?token={token}" if token else ""
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/cameras/{camera}/{query}") as ws:
        try:
            await ws.send(json.dumps({"type": "ping"}))
        except websockets.ConnectionClosed:
            pass  # a refused socket may be closed already; its error message is still queued
        while True:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            except websockets.ConnectionClosed:
                return {}, ws.close_code
            if message.get("type") not in ("status", "clock", "detections"):
                break
        if message.get("type") == "error":
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
        return message, ws.close_code


@pytest.mark.parametrize("user, camera, expected", [
    ("anonymous", "default", ("not_authenticated", 4401)),
    ("norole", "default", ("forbidden", 4403)),
    ("viewer", "default", ("pong", None)),
    ("limited", "garden", ("pong", None)),
    ("limited", "default", ("unknown_camera", 4404)),
    ("superuser", "garden", ("pong", None)),
])
def test_websocket_access(site, user, camera, expected):
    token = site.tokens.get(user)
    message, code = asyncio.run(ws_first(site, camera, token))
    assert (message.get("error", message.get("type")), code) == expected, message
    if expected[0] == "unknown_camera":  # word for word what an unknown camera gets
        twin, twin_code = asyncio.run(ws_first(site, UNKNOWN_CAMERA, token))
        assert twin_code == code
        assert twin["detail"].replace(UNKNOWN_CAMERA, camera) == message["detail"]


async def real_offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def test_real_worker_answers_only_allowed_users(site):
    def call(user, method, path, body=None, content_type="application/json"):
        headers = {"Authorization": f"Bearer {site.tokens[user]}", "Content-Type": content_type}
        return http(method, site.base + path, body, headers)

    async def whep() -> None:
        pc, sdp = await real_offer()
        try:
            # a viewer gets a real WHEP answer, and ends the session
            answer = await asyncio.to_thread(call, "viewer", "POST", "/whep/default",
                                             sdp.encode(), "application/sdp")
            assert answer.status == 201 and answer.body.startswith(b"v=0"), answer
            ended = await asyncio.to_thread(call, "viewer", "DELETE", answer.header("Location"))
            assert ended.status == 200
            # the limited viewer: default is an unknown camera, even with a valid offer
            hidden = await asyncio.to_thread(call, "limited", "POST", "/whep/default",
                                             sdp.encode(), "application/sdp")
            assert (hidden.status, hidden.json()["error"]) == (404, "unknown_camera")
        finally:
            await pc.close()

    asyncio.run(whep())
    # a viewer may not record; an operator may
    start = "/api/cameras/default/recording/start/"
    refused = call("viewer", "POST", start, b"{}")
    assert (refused.status, refused.json()["error"]) == (403, "forbidden"), refused
    started = call("operator", "POST", start, b'{"name": "access test"}')
    assert started.status == 201, started
    stopped = call("operator", "POST", "/api/cameras/default/recording/stop/")
    assert stopped.status == 200 and stopped.json()["id"] == started.json()["id"], stopped
    # the viewer lists it and downloads it; the limited viewer does not see it
    rec_id = started.json()["id"]
    assert call("viewer", "GET", f"/api/recordings/{rec_id}/download/").status == 200
    assert call("limited", "GET", f"/api/recordings/{rec_id}/").status == 404
    # anonymous over daphne: refused, pages redirect to the login page
    anon = http("GET", site.base + "/api/cameras/")
    assert anon.status in (401, 403) and json.loads(anon.body)["error"] == "not_authenticated"
    page = http("GET", site.base + "/")
    assert page.status == 302 and page.header("Location").startswith("/accounts/login/")
