"""Inputs that were unhandled 500s (issue 14, item 8), each with the probe's own input: every
one is now a 4xx in the documented shape {"error", "detail"} (a WebSocket: an error message
and a 4xxx close code).

Huge and non-finite numbers in the detection history's times, a 4,301-digit byte position
in Range (Python refuses int() of more than 4,300 digits), deeply nested JSON on every JSON
endpoint and on the camera socket, a lone surrogate in a recording name, a far-away
?at= in a recording, /static/../ paths and WebSocket paths nobody serves.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from petcam_site.asgi import application
from recordings.models import Recording, clean_recording_name, recording_relpath
from tests.support.roles import make_user

DIGITS_4301 = "1" * 4301
NESTED = "[" * 5000 + "]" * 5000  # 10 KB: deeper than Python's recursion limit
SURROGATE_JSON = '{"name": "\\ud800"}'  # JSON text for a lone surrogate
T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
FILE = bytes(range(256)) * 64  # 16 KiB
ASGI = application.app  # below the embedded media worker's starter: none is started here


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    if code:
        assert body["error"] == code, body
    return body


@pytest.fixture
def operator(db):
    client = APIClient()
    client.force_authenticate(make_user("operator", "operators"))
    return client


@pytest.fixture
def recording(db, settings, tmp_path) -> Recording:
    settings.MEDIA_ROOT = tmp_path
    rel = recording_relpath("default", T0, "mp4")
    (tmp_path / rel).parent.mkdir(parents=True)
    (tmp_path / rel).write_bytes(FILE)
    return Recording.objects.create(camera="default", file=rel, format="mp4",
                                    status="complete", started_at=T0, duration=2.0,
                                    size_bytes=len(FILE), width=320, height=240)


# --- numbers -------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [
    {"from": "inf"}, {"from": "-inf"}, {"from": "nan"},
    {"from": "1e20"}, {"from": "-1e20"}, {"to": "1e300"},
    {"from": DIGITS_4301}, {"to": DIGITS_4301},
    {"from": "0001-01-01T00:00:00", "to": "0001-01-02T00:00:00"},  # a year-1 range
    {"from": "0001-01-01T00:00:00", "to": "0001-01-02T00:00:00", "bucket": "60"},
    {"to": "0001-01-01T00:00:00"},  # the default 'from' (an hour before) was year 0
    {"from": "0001-01-01T00:00:00+01:00"},  # before datetime's year 1 in UTC
    {"from": "9999-12-31T23:00:00", "to": "9999-12-31T23:59:59", "bucket": "86400"},
    {"from": "9999-12-31T23:59:59-01:00"},
])
def test_detection_history_times(operator, params):
    response = operator.get("/api/cameras/default/detections/", params)
    body = assert_error(response, 400, "invalid_time")
    assert len(body["detail"]) < 200  # a 4,301-digit input is not echoed back


def test_detection_history_bucket_and_paging_numbers(operator):
    url = "/api/cameras/default/detections/"
    assert_error(operator.get(url, {"bucket": DIGITS_4301}), 400, "invalid_bucket")
    assert_error(operator.get(url, {"bucket": "1e3"}), 400, "invalid_bucket")
    for value in (DIGITS_4301, "9" * 30, "-5", "1e5", "nan"):  # DRF falls back to defaults
        assert operator.get(url, {"offset": value, "limit": value}).status_code == 200


@pytest.mark.parametrize("path", ["download/", "hls/media.mp4"])
@pytest.mark.parametrize(("header", "status", "first", "last"), [
    (f"bytes={DIGITS_4301}-", 416, None, None),  # starts past any file
    (f"bytes=0-{DIGITS_4301}", 206, 0, len(FILE) - 1),  # to the end
    (f"bytes=-{DIGITS_4301}", 206, 0, len(FILE) - 1),  # the last "n" bytes: all of them
    (f"bytes=10-{'0' * 4300}20", 206, 10, 20),  # leading zeros are still small numbers
    ("bytes=99999999999999999999-", 416, None, None),
])
def test_range_positions_of_any_length(operator, recording, path, header, status, first, last):
    response = operator.get(f"/api/recordings/{recording.pk}/{path}", HTTP_RANGE=header)
    assert response.status_code == status
    if status == 416:
        assert response["Content-Range"] == f"bytes */{len(FILE)}"
        assert_error(response, 416, "range_not_satisfiable")
    else:
        assert response["Content-Range"] == f"bytes {first}-{last}/{len(FILE)}"
        assert b"".join(response.streaming_content) == FILE[first:last + 1]


@pytest.mark.parametrize("params", [
    {"at": "1e15"}, {"at": "1e300"}, {"at": DIGITS_4301}, {"at": "inf"},
    {"start": "1e15"}, {"start": "0", "end": "1e300"}, {"at": "1", "tolerance": "1e300"},
])
def test_recording_detection_offsets(operator, recording, params):
    response = operator.get(f"/api/recordings/{recording.pk}/detections/", params)
    assert_error(response, 400, "invalid_parameter")


def test_a_recording_detection_offset_within_a_year_still_answers(operator, recording):
    response = operator.get(f"/api/recordings/{recording.pk}/detections/", {"at": "31000000"})
    assert response.status_code == 200 and response.json()["result"] is None


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_recording_list_dates_beyond_datetime(operator, value):
    assert_error(operator.get("/api/recordings/", {"started_after": value}), 400,
                 "invalid_filter")
    assert_error(operator.get("/api/recordings/", {"started_before": value}), 400,
                 "invalid_filter")


# --- JSON bodies ---------------------------------------------------------------------------

def json_operations() -> list[tuple[str, str, str]]:
    """(method, path template, operation id) of every documented operation taking JSON."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                found.append((method, path, operation["operationId"]))
    return found


def test_every_json_operation_is_found():
    ids = {op for _, _, op in json_operations()}
    assert {"auth_token", "webrtc_offer", "seed_webrtc_offer", "recording_start",
            "seed_recording_start", "recording_update"} <= ids


@pytest.mark.parametrize("body", [NESTED, '{"a": ' * 3000 + "1" + "}" * 3000],
                         ids=["nested-list", "nested-object"])
def test_deeply_nested_json_on_every_json_endpoint(db, recording, body):
    admin = APIClient()
    admin.force_authenticate(make_user("root", superuser=True))
    for method, path, operation in json_operations():
        url = path.replace("{camera}", "default").replace("{id}", str(recording.pk))
        # the token endpoint as the probe sent it: anonymous
        client = APIClient() if operation == "auth_token" else admin
        response = getattr(client, method)(url, body, content_type="application/json")
        assert_error(response, 400, "parse_error")


def test_a_lone_surrogate_in_a_recording_name(operator, recording):
    response = operator.patch(f"/api/recordings/{recording.pk}/", SURROGATE_JSON,
                              content_type="application/json")
    assert_error(response, 400, "parse_error")
    recording.refresh_from_db()
    assert recording.name == ""
    # start: refused here, before the media worker is asked (it answered 503 worker_error)
    response = operator.post("/api/cameras/default/recording/start/", SURROGATE_JSON,
                             content_type="application/json")
    assert_error(response, 400, "parse_error")
    # a name that reaches the catalog another way (the worker's RPC, the admin) is refused too
    with pytest.raises(DjangoValidationError) as refused:
        clean_recording_name("cat \ud800")
    assert refused.value.code == "invalid_name"


def test_json_surrogate_escapes_of_real_characters_still_work(operator, recording):
    response = operator.patch(f"/api/recordings/{recording.pk}/",
                              '{"name": "cat \\ud83d\\udc08"}', content_type="application/json")
    assert response.status_code == 200 and response.json()["name"] == "cat \U0001f408"


# --- ASGI: static files and WebSockets -----------------------------------------------------

async def asgi_get(path: str) -> tuple[int, bytes]:
    app = ApplicationCommunicator(ASGI, {
        "type": "http", "http_version": "1.1", "method": "GET", "path": path,
        "raw_path": path.encode(), "query_string": b"", "root_path": "", "scheme": "http",
        "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000),
        "headers": [(b"host", b"127.0.0.1")]})
    await app.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await app.receive_output(10)
    body = b""
    while True:
        message = await app.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            return start["status"], body


@pytest.mark.parametrize("path", ["/static/../../etc/passwd", "/static/../../../../etc/passwd",
                                  "/static/detections/../../../../etc/passwd",
                                  "/static/..", "/static/../petcam_site/settings.py"])
def test_static_paths_that_leave_the_static_folders(path):
    status, body = asyncio.run(asgi_get(path))
    assert status == 404
    assert json.loads(body) == {"error": "not_found", "detail": "No such page."}


def test_static_files_are_still_served():
    status, body = asyncio.run(asgi_get("/static/detections/activity_chart.js"))
    assert status == 200 and b"detections" in body


async def ws_until_closed(path: str) -> tuple[list[dict], int]:
    """Connect; the messages the server sends before it closes, and its close code."""
    socket = WebsocketCommunicator(ASGI, path)
    connected, _ = await socket.connect(timeout=10)
    assert connected, path
    received = []
    while (message := await socket.receive_output(timeout=10))["type"] != "websocket.close":
        received.append(json.loads(message["text"]))
    await socket.wait()
    return received, message["code"]


async def ws_exchange(path: str, headers: list, messages: list[str], answers: int) -> list[dict]:
    """Connect, send `messages`, read `answers` messages."""
    socket = WebsocketCommunicator(ASGI, path, headers=headers)
    connected, _ = await socket.connect(timeout=10)
    assert connected, path
    for text in messages:
        await socket.send_to(text_data=text)
    received = []
    for _ in range(answers):
        message = await socket.receive_output(timeout=10)
        received.append(json.loads(message["text"]) if message["type"] == "websocket.send"
                        else message)
    await socket.disconnect()
    return received


@pytest.mark.parametrize("path", ["/ws/cameras/default/nope/", "/ws/", "/ws/nope",
                                  "/ws/cameras/", "/anything/else"])
def test_websocket_paths_nobody_serves(path):
    received, code = asyncio.run(ws_until_closed(path))
    assert code == 4404
    assert received == [{"type": "error", "error": "not_found",
                         "detail": "No WebSocket endpoint here; cameras are at "
                                   "/ws/cameras/<camera>/."}]


@pytest.mark.django_db(transaction=True)
def test_camera_socket_answers_nested_json_and_surrogates_and_stays_open():
    browser = Client()
    browser.force_login(make_user("viewer", "viewers"))
    cookie = f"sessionid={browser.cookies['sessionid'].value}".encode()
    received = asyncio.run(ws_exchange(
        "/ws/cameras/default/", [(b"cookie", cookie)],
        [NESTED, '{"type": "close", "session": "\\ud800"}', '{"type": "ping"}'], answers=3))
    # answered in order, and still open for the ping after them (it used to close 1011)
    assert received == [
        {"type": "error", "error": "invalid_json", "detail": "Messages must be JSON objects."},
        {"type": "error", "error": "invalid_json", "detail": "Messages must be JSON objects."},
        {"type": "pong"}]
