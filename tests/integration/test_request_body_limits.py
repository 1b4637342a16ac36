"""Request bodies over a route's limit get 413 too_large before they are read, on a real
daphne (issue 14, item 3: two anonymous 1 GB POSTs to /api/auth/token/ took the server
from 354 MB to 1.13 GB of RAM before a 400).

Twisted reads a whole body before daphne calls the app, and daphne then queues all of it
for the app at once, so the limit sits in daphne's parser (petcam_site/daphne_compat.py);
BodySizeLimit (petcam_site/body_limits.py) does the same as ASGI middleware for any other
server. The server's RSS is read from /proc: a body that were held would show as hundreds
of MB; refused ones leave it within a few.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from asgiref.testing import ApplicationCommunicator
from django.conf import settings

from petcam_site import body_limits, daphne_compat
from tests.support.processes import ROOT, site_env, start_install, start_site

MB = 1024 * 1024
RSS_SLACK_MB = 20  # what handling a few requests may cost; a held body costs its size
TOKEN = "/api/auth/token/"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    install = start_install(tmp_path_factory.mktemp("body-limits"))
    try:
        yield install
    finally:
        install.site.stop()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    header, _, body = answer.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    length = int(fields.get("Content-Length", len(body)))
    return int(lines[0].split()[1]), fields, body[:length]


def read_answer(sock: socket.socket) -> bytes:
    """Up to the end of the response's body (Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < int(
            parse(data)[1].get("Content-Length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def upload(port: int, request_head: bytes, total: int, *, chunked: bool) -> tuple[bytes, int]:
    """Send the head, then up to `total` body bytes, looking for an answer after every 64 KB;
    (the answer, how many body bytes were sent before it came)."""
    piece = b"a" * 65536
    framed = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request_head)
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                return read_answer(sock), sent
            try:
                sock.sendall(framed)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        if chunked and sent >= total:
            sock.sendall(b"0\r\n\r\n")
        return read_answer(sock), sent


def assert_too_large(answer: bytes, limit: int) -> None:
    status, fields, body = parse(answer)
    assert status == 413, answer[:200]
    assert fields["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": "too_large",
                                "detail": f"The request body may be at most {limit} bytes here."}


def warm(site) -> None:
    """A few ordinary requests, so later RSS readings compare like with like."""
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", site.port), timeout=30) as sock:
            sock.sendall(head("GET", "/accounts/login/", "Connection: close"))
            assert parse(read_answer(sock))[0] == 200


# --- on daphne -----------------------------------------------------------------------------

def test_a_declared_gigabyte_is_refused_before_any_of_it_is_sent(site):
    limit = settings.PETCAM_MAX_API_BODY_BYTES
    with socket.create_connection(("127.0.0.1", site.port), timeout=30) as sock:
        # Expect: 100-continue: a client that waits for the go-ahead never sends the body
        sock.sendall(head("POST", TOKEN, "Content-Type: application/json",
                          f"Content-Length: {1024 * MB}", "Expect: 100-continue"))
        answer = read_answer(sock)
    assert not answer.startswith(b"HTTP/1.1 100")
    assert_too_large(answer, limit)
    assert parse(answer)[1]["Connection"] == "close"


def test_two_anonymous_gigabyte_posts_leave_memory_alone(site):
    """The probe's input: two 1 GB bodies at once, sent until the server answers."""
    warm(site)
    before = rss_mb(site.site.pid)

    async def both() -> list[tuple[bytes, int]]:
        request = head("POST", TOKEN, "Content-Type: application/json",
                       f"Content-Length: {1024 * MB}")
        return await asyncio.gather(*(asyncio.to_thread(upload, site.port, request, 1024 * MB,
                                                        chunked=False) for _ in range(2)))

    results = asyncio.run(both())
    for answer, sent in results:
        assert_too_large(answer, settings.PETCAM_MAX_API_BODY_BYTES)
        assert sent < 64 * MB  # answered while the body was coming, not after a gigabyte
    assert rss_mb(site.site.pid) - before < RSS_SLACK_MB


def test_a_chunked_upload_is_cut_off_at_the_limit(site):
    """200 MB without a length: counted as it arrives, refused once past 64 KB."""
    warm(site)
    before = rss_mb(site.site.pid)
    request = head("POST", TOKEN, "Content-Type: application/json", "Transfer-Encoding: chunked")
    answer, sent = upload(site.port, request, 200 * MB, chunked=True)
    assert_too_large(answer, settings.PETCAM_MAX_API_BODY_BYTES)
    assert sent < 64 * MB
    assert rss_mb(site.site.pid) - before < RSS_SLACK_MB
    log = site.site.log()
    assert f"refused a request body: POST '{TOKEN}' from 127.0.0.1: more than" in log


def test_bodies_within_the_limit_still_arrive_whole(site):
    """A login, a JSON body just under the API limit and a small chunked body get the
    view's answer. (Django and DRF read no body without a Content-Length: the chunked one
    reaches the view empty, as before.)"""
    credentials = json.dumps({"username": site.username, "password": site.password}).encode()
    with socket.create_connection(("127.0.0.1", site.port), timeout=30) as sock:
        sock.sendall(head("POST", TOKEN, "Content-Type: application/json",
                          f"Content-Length: {len(credentials)}", "Connection: close")
                     + credentials)
        status, _, body = parse(read_answer(sock))
    assert status == 200 and json.loads(body)["token"], body

    with socket.create_connection(("127.0.0.1", site.port), timeout=30) as sock:
        sock.sendall(head("POST", TOKEN, "Content-Type: application/json",
                          "Transfer-Encoding: chunked", "Connection: close")
                     + b"%x\r\n%s\r\n0\r\n\r\n" % (len(credentials), credentials))
        status, _, body = parse(read_answer(sock))
    assert status == 400 and json.loads(body)["error"] == "required", body

    padded = json.dumps({"username": "nobody", "password": "wrong",
                         "pad": "x" * (settings.PETCAM_MAX_API_BODY_BYTES - 100)}).encode()
    assert len(padded) <= settings.PETCAM_MAX_API_BODY_BYTES
    with socket.create_connection(("127.0.0.1", site.port), timeout=30) as sock:
        sock.sendall(head("POST", TOKEN, "Content-Type: application/json",
                          f"Content-Length: {len(padded)}", "Connection: close") + padded)
        status, _, body = parse(read_answer(sock))
    assert status == 400 and json.loads(body)["error"] != "too_large"


@pytest.mark.parametrize(("path", "limit_setting"), [
    ("/api/cameras/default/webrtc/offer/", "PETCAM_MAX_SDP_BYTES"),
    ("/api/webrtc/offer", "PETCAM_MAX_SDP_BYTES"),
    ("/whep/default", "PETCAM_MAX_SDP_BYTES"),
    ("/api/recordings/1/", "PETCAM_MAX_API_BODY_BYTES"),
    ("/admin/login/", "PETCAM_MAX_ADMIN_BODY_BYTES"),
    ("/accounts/login/", "PETCAM_MAX_BODY_BYTES"),
    ("/anything/else", "PETCAM_MAX_BODY_BYTES"),
])
def test_each_route_has_its_limit(site, path, limit_setting):
    limit = getattr(settings, limit_setting)
    assert body_limits.limit_for(path) == limit
    for size, refused in ((limit, False), (limit + 1, True)):
        with socket.create_connection(("127.0.0.1", site.port), timeout=30) as sock:
            sock.sendall(head("POST", path, "Content-Type: application/json",
                              f"Content-Length: {size}", "Connection: close"))
            if refused:  # answered on the headers alone
                answer = read_answer(sock)
                assert_too_large(answer, limit)
                continue
            sock.sendall(b"x" * size)
            status, _, _ = parse(read_answer(sock))
            assert status != 413, (path, size)


def test_multipart_bodies_are_the_apps_to_parse_not_twisteds(site):
    """Twisted parsed multipart/form-data itself and answered a malformed one (schemathesis
    sent an empty one: `--boundary--`) with an empty 400 outside the error format. The app
    parses it now: a JSON 400, and a well-formed form still logs in."""
    boundary = "c637e12e2b1a998d80d1b087531af51c"
    for body, expected in [
        (f"--{boundary}--\r\n".encode(), 400),
        ("".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                 f"{value}\r\n" for name, value in (("username", site.username),
                                                    ("password", site.password)))
         .encode() + f"--{boundary}--\r\n".encode(), 200),
    ]:
        with socket.create_connection(("127.0.0.1", site.port), timeout=30) as sock:
            sock.sendall(head("POST", TOKEN,
                              f"Content-Type: multipart/form-data; boundary={boundary}",
                              f"Content-Length: {len(body)}", "Connection: close") + body)
            status, fields, answer = parse(read_answer(sock))
        assert (status, fields.get("Content-Type")) == (expected, "application/json"), answer
        assert ("error" in json.loads(answer)) == (expected == 400)


def test_plain_daphne_as_the_production_unit_runs_it(site, tmp_path, free_port):
    env = site_env(tmp_path, PETCAM_VAR_DIR=site.env["PETCAM_VAR_DIR"],
                   PETCAM_WORKER_MODE="off", PETCAM_HEALTH_TIMEOUT="0.5")
    daphne = start_site(env, free_port, tmp_path / "logs", plain_daphne=True)
    try:
        request = head("POST", TOKEN, "Content-Type: application/json",
                       "Transfer-Encoding: chunked")
        answer, sent = upload(free_port, request, 50 * MB, chunked=True)
        assert_too_large(answer, settings.PETCAM_MAX_API_BODY_BYTES)
        assert sent < 50 * MB
    finally:
        daphne.stop()


# --- the ASGI middleware (any other ASGI server) -------------------------------------------

def scope(path: str, *headers: tuple[bytes, bytes]) -> dict:
    return {"type": "http", "http_version": "1.1", "method": "POST", "path": path,
            "raw_path": path.encode(), "query_string": b"", "root_path": "", "scheme": "http",
            "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000),
            "headers": [(b"host", b"127.0.0.1"), *headers]}


class BodyReader:
    """An app that reads its whole body first, as Django does; counts what it got."""

    def __init__(self) -> None:
        self.received = 0
        self.called = False

    async def __call__(self, scope, receive, send):
        self.called = True
        while True:
            message = await receive()
            self.received += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def exchange(app, request_scope: dict, pieces: list[bytes]) -> list[dict]:
    communicator = ApplicationCommunicator(app, request_scope)
    for i, piece in enumerate(pieces):
        await communicator.send_input({"type": "http.request", "body": piece,
                                       "more_body": i < len(pieces) - 1})
    start = await communicator.receive_output(10)
    body = await communicator.receive_output(10)
    await communicator.wait(10)
    return [start, body]


def test_middleware_refuses_a_declared_length_without_calling_the_app():
    inner = BodyReader()
    start, body = asyncio.run(exchange(body_limits.BodySizeLimit(inner),
                                       scope(TOKEN, (b"content-length", b"1073741824")), [b""]))
    assert start["status"] == 413 and not inner.called
    assert json.loads(body["body"])["error"] == "too_large"


def test_middleware_cuts_a_chunked_body_off_at_the_limit():
    inner = BodyReader()
    limit = settings.PETCAM_MAX_API_BODY_BYTES
    pieces = [b"a" * 16384] * 200  # 3.2 MB in 16 KB messages
    start, body = asyncio.run(exchange(body_limits.BodySizeLimit(inner), scope(TOKEN), pieces))
    assert start["status"] == 413
    assert json.loads(body["body"]) == json.loads(body_limits.too_large_body(limit))
    assert inner.received <= limit  # the app never got the message that went past it


def test_middleware_passes_bodies_within_the_limit():
    inner = BodyReader()
    start, body = asyncio.run(exchange(body_limits.BodySizeLimit(inner), scope(TOKEN),
                                       [b"a" * 16384] * 4))
    assert (start["status"], body["body"], inner.received) == (200, b"ok", 65536)


def test_the_site_application_cuts_a_chunked_body_off_before_django_reads_it():
    from petcam_site.asgi import application

    router = application  # under the site-wide wrappers (proxy headers, access log, worker)
    while not hasattr(router, "application_mapping"):
        router = router.app
    http_app = router.application_mapping["http"]
    assert isinstance(http_app, body_limits.BodySizeLimit)  # outermost of the http side
    start, body = asyncio.run(exchange(router, scope(TOKEN), [b"a" * 16384] * 200))
    assert start["status"] == 413 and json.loads(body["body"])["error"] == "too_large"


def test_daphne_hooks_were_checked_against_the_pinned_daphne():
    """A new daphne or Twisted fails here first: re-read daphne_compat against its source."""
    from daphne import http_protocol
    from twisted.web import http

    pinned = next(line.split("==")[1].strip() for line in
                  (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("daphne=="))
    assert daphne_compat.versions() == daphne_compat.CHECKED_AGAINST
    assert pinned == daphne_compat.CHECKED_AGAINST["daphne"] == version("daphne")
    import petcam_site.asgi  # noqa: F401 - installs the hook

    assert http_protocol.WebRequest is daphne_compat.BodyLimitedRequest
    factory_source = Path(sys.modules["daphne.http_protocol"].__file__).read_text()
    assert "protocol.requestFactory = WebRequest" in factory_source
    twisted_source = Path(http.__file__).read_text()
    for needed in ("self._path = request", "self._command = command",
                   "req.gotLength(self.length)", "def handleContentChunk(self, data)",
                   "req.requestReceived(command, path, version)", "_send100Continue()",
                   "and self._parsePOSTFormSubmission"):
        assert needed in twisted_source, needed
