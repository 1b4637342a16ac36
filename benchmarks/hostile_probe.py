"""Hostile-user probe (issue 14): the probe's inputs, item by item, against a real site.

A throw-away install (benchmarks/_harness.py, embedded `manage.py serve` on loopback,
the simulator at 320x240 with detections) with these principals: anonymous, a user with
no role, a viewer limited to one camera (a second camera, `attic`, is hidden from them),
a viewer, an operator, an admins-group member (staff) and a superuser, plus a few
viewers who lose their access on purpose. The site runs as a default install would,
except: 5 live slots, 3 per user, a 5 s ICE deadline, loopback as its trusted reverse
proxy (so "outside" clients can be played with X-Forwarded-For) and the access log on.

Items (the issue's numbering; 3 and 2 run first, right after a warm-up, so that their
RSS compares with the server's size before any probe):

1. shm: the detections segment truncated to 0 and the stream segment to 4 KiB while
   write_index advances; the simulator restarted after each.
2. detection buckets: a month in 1 s buckets (three at once), a month's CSV export;
   "RSS after the memory probes" is read here (items 3 and 2 so far). Then, for what
   legitimate load costs, the largest query allowed (10,000 buckets), three at once.
3. bodies: two anonymous 1 GB POSTs at once (Content-Length), 300 MB chunked,
   Expect: 100-continue, every route's limit. Senders stop at 256 MB.
4. slots: a viewer's 10 never-connecting offers and re-offers while others offer.
5. revocation: sockets and their live sessions after a token revoke, a deactivation
   and a group removal in the admin.
6. admin rights: the admins-group member, through the admin's forms, tries to make
   itself superuser, to edit a superuser and to read tokens.
7. SDP and candidates: 1000 candidates, 50 and 30 loopback candidates (packets
   counted), forbidden addresses, ~80 malformed offers over JSON, WHEP, the seeds'
   endpoint and the WebSocket.
8. hostile numbers, ranges, nested JSON, surrogates, path tricks, unknown WebSocket
   paths.
9. the smaller ones: anonymous /health, X-Forwarded-For spoofing to /metrics and the
   login caps, Origin spoofing, signed links after a password change and a revoke, the
   access log, CSV formulas, password rules, file modes.

Each HTTP status (and WebSocket handshake: 101, or the refusal's status; a socket the
server closes 1011 counts as a 5xx) is recorded per item. The end is a table (requests,
4xx, 5xx, crashes, expected-behaviour checks passed/failed, seconds, server RSS after
the item), the server's RSS at start / after the memory probes / after the largest
queries / peak / at the end (VmRSS of the serve process), the server log's ERROR lines,
and the JSON. Exit status 1 on any 5xx, any crash (the
server process exited; it is then restarted so the other items still run), RSS after
the memory probes above start + 20 MB, or any failed check.

    .venv/bin/python -m benchmarks.hostile_probe [--json PATH] [--keep-logs]

Not part of `make test`: it is load, not a test. The same inputs are tests, one file per
theme (docs/operations.md, "Security: hostile input").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import os
import re
import select
import socket
import stat
import struct
import sys
import threading
import time
import traceback
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import websockets

from benchmarks._harness import Stack, emit, loadavg, print_table
from tests.support.admin_forms import form_fields, with_changes
from tests.support.processes import Client, wait_for
from tests.support.webrtc_client import UdpBlackHole, with_candidates

MB = 2**20
PASSWORD = "Probe-passphrase-2026"
OUTSIDE = "203.0.113.9"  # a client beyond the (simulated) reverse proxy
RSS_SLACK_MB = 20
UPLOAD_CAP = 256 * MB  # an upload the server never answers stops here
MAX_VIEWERS, PER_USER, ICE_TIMEOUT = 5, 3, 5.0
DIGITS_4301 = "1" * 4301
NESTED = "[" * 5000 + "]" * 5000  # 10 KB, deeper than Python's recursion limit
NESTED_OBJECT = '{"a": ' * 3000 + "1" + "}" * 3000
FORMULA = "=cmd|' /C calc'!A0"
HISTORY_STEP_S = 60  # one stored detection a minute for the last 30 days

# The principals and the users who lose their access on purpose: make_user()'s arguments
# (tests/support/roles.py) after the name.
PEOPLE = {
    "norole": "None", "limited": '"viewers", cameras=("default",)', "viewer": '"viewers"',
    "operator": '"operators"', "admin": '"admins", staff=True', "root": "superuser=True",
    "revoked": '"viewers"', "deactivated": '"viewers"', "demoted": '"viewers"',
    "linker": '"viewers"',
}
MAKE_PEOPLE = "\n".join(f"users[{name!r}] = make_user({name!r}, {args}, password={PASSWORD!r})"
                        for name, args in PEOPLE.items())
MAKE_WORLD = """
import json
from datetime import timedelta
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from detections.models import DetectionSample
from streaming.models import Camera
from tests.support.roles import make_user
from tests.support.tokens import make_token

Camera.objects.create(slug="attic", name="Attic", stream_segment={attic_stream!r},
                      detections_segment={attic_det!r}, position=5)
users = {{}}
{people}
now = timezone.now()
classes = ("cat", "dog", "person")
rows = [DetectionSample(camera="default", time=now - timedelta(seconds=s), frame_number=i,
                        class_name={formula!r} if i == 7 else classes[i % 3],
                        confidence=0.9, x=1, y=2, w=3, h=4)
        for i, s in enumerate(range(120, 30 * 86400, {step}))]
DetectionSample.objects.bulk_create(rows, batch_size=5000)
print(json.dumps({{
    "users": {{n: {{"id": u.pk, "token": make_token(u, "probe")}} for n, u in users.items()}},
    "groups": {{g.name: g.pk for g in Group.objects.all()}},
    "perms": {{p.codename: p.pk for p in Permission.objects.filter(
        codename__in=["delete_session", "add_apitoken", "change_user"])}},
    "history": len(rows)}}))
"""


# --- recording what the server answered --------------------------------------------------------


@dataclass
class Item:
    key: str
    title: str
    statuses: Counter = field(default_factory=Counter)
    passed: int = 0
    failed: list[str] = field(default_factory=list)
    crashes: int = 0
    seconds: float = 0.0
    rss_after_mb: float | None = None

    def row(self) -> dict:
        return {"item": self.key, "what": self.title,
                "requests": sum(self.statuses.values()),
                "4xx": sum(n for s, n in self.statuses.items() if 400 <= s < 500),
                "5xx": sum(n for s, n in self.statuses.items() if s >= 500),
                "no answer": self.statuses.get(0, 0), "crashes": self.crashes,
                "checks ok": self.passed, "checks failed": len(self.failed),
                "seconds": round(self.seconds, 1), "RSS after MB": self.rss_after_mb}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        try:
            return json.loads(self.body)
        except ValueError:
            return {}

    def is_error(self, status: int, code: str | None = None) -> bool:
        """The documented error shape: {"error", "detail"} with this status (and code)."""
        body = self.json()
        return (self.status == status and set(body) == {"error", "detail"}
                and (code is None or body["error"] == code))


def server_pid(stack: Stack) -> int:
    """The serve process: the child of the `timeout` wrapper the harness starts it under."""
    wrapper = stack.site.pid
    children = Path(f"/proc/{wrapper}/task/{wrapper}/children").read_text().split()
    return int(children[0]) if children else wrapper


def vm_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class RssSampler(threading.Thread):
    """The server's VmRSS every 0.1 s: the peak over the whole run."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.1):
            rss = vm_rss_mb(self.pid)
            if rss is not None:
                self.peak = max(self.peak, rss)


class Socket:
    """A WebSocket that keeps every message it gets; its close code is recorded."""

    def __init__(self, probe: Probe, ws) -> None:
        self.probe, self.ws, self.item = probe, ws, probe.item
        self.messages: list[dict] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                self.messages.append(json.loads(raw))
        if self.ws.close_code == 1011:  # the server's internal error
            self.item.statuses[500] += 1

    async def next(self, *kinds: str, timeout: float = 10.0) -> dict | None:
        """The next message of one of `kinds` (or an error) from now on; None if the
        socket closed or nothing came."""
        start = len(self.messages)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages[start:]:
                if message.get("type") in (*kinds, "error"):
                    return message
            if self.reader.done():
                return None
            await asyncio.sleep(0.02)
        return None

    async def send(self, message: dict | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def ended(self, timeout: float = 10.0) -> int | None:
        """The close code once the server closed the socket; None if it stayed open."""
        try:
            await asyncio.wait_for(asyncio.shield(self.reader), timeout)
        except TimeoutError:
            return None
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
        await self.reader


# --- the probe ------------------------------------------------------------------------------------


class Probe:
    def __init__(self, stack: Stack, world: dict, template_sdp: str) -> None:
        self.stack = stack
        self.port = stack.port
        self.base = stack.base
        self.users = world["users"]
        self.groups = world["groups"]
        self.perms = world["perms"]
        self.history = world["history"]
        self.sdp = template_sdp  # an aiortc offer without candidates
        self.items: list[Item] = []
        self.item = Item("setup", "setup")
        self.recording: int | None = None
        self.root_browser: Client | None = None
        self.notes: list[str] = []
        self.sampler: RssSampler | None = None
        self.rss: dict[str, float | None] = {}

    # --- recording ------------------------------------------------------------------------------

    def seen(self, status: int) -> None:
        self.item.statuses[status] += 1

    def check(self, ok: bool, what: str) -> bool:
        if ok:
            self.item.passed += 1
        else:
            self.item.failed.append(what)
            print(f"  FAILED [{self.item.key}] {what}", flush=True)
        return ok

    def mark(self, name: str) -> None:
        """The server's RSS now (after a second for the last answers' buffers to go), and
        its peak so far."""
        time.sleep(1)
        self.rss[name] = vm_rss_mb(self.sampler.pid)
        self.rss[f"peak until {name}"] = self.sampler.peak

    def token(self, who: str) -> str:
        return self.users[who]["token"]

    # --- HTTP -----------------------------------------------------------------------------------

    def http(self, method: str, path: str, body: bytes | str | dict | list | None = None,
             headers: dict[str, str] | None = None, who: str | None = None,
             timeout: float = 60) -> Reply:
        """One request as `who` (a token; None: anonymous). dict/list bodies go as JSON."""
        headers = dict(headers or {})
        if who:
            headers["Authorization"] = f"Bearer {self.token(who)}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode("utf-8", "surrogatepass")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            reply = Reply(resp.status, dict(resp.getheaders()), resp.read())
        except OSError as exc:
            reply = Reply(0, {}, str(exc).encode())
        finally:
            conn.close()
        self.seen(reply.status)
        if reply.status == 0:
            self.check(False, f"{method} {path[:80]} answered ({reply.body.decode()})")
        return reply

    def page(self, client: Client, method: str, path: str,
             form: dict | list | None = None) -> Reply:
        """A browser's request with its cookies; a form gets the CSRF token added."""
        body, headers = None, {}
        if form is not None:
            pairs = list(form.items()) if isinstance(form, dict) else list(form)
            if not any(k == "csrfmiddlewaretoken" for k, _ in pairs):
                pairs.append(("csrfmiddlewaretoken", client.csrf()))
            body = urllib.parse.urlencode(pairs, doseq=True).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded",
                       "Referer": self.base + path}
        try:
            status, got, data = client.request(method, path, body, headers)
            reply = Reply(status, got, data)
        except OSError as exc:
            reply = Reply(0, {}, str(exc).encode())
            self.check(False, f"{method} {path} answered ({exc})")
        self.seen(reply.status)
        return reply

    def login(self, who: str) -> Client:
        client = Client(self.base)
        self.page(client, "GET", "/accounts/login/")
        reply = self.page(client, "POST", "/accounts/login/",
                          {"username": who, "password": PASSWORD, "next": "/"})
        self.check(reply.status == 302, f"{who} logs in on the login page")
        return client

    def form(self, client: Client, path: str) -> dict[str, list[str]]:
        reply = self.page(client, "GET", path)
        return form_fields(reply.body.decode(errors="replace"))

    def submit(self, client: Client, path: str, **changes) -> Reply:
        """GET an admin form, apply `changes` (a list replaces a field, None removes it),
        POST it back as a browser's Save would."""
        data = with_changes(self.form(client, path), **changes)
        return self.page(client, "POST", path, [(k, v) for k, vs in data.items() for v in vs])

    def camera(self, slug: str = "default") -> dict:
        return self.http("GET", f"/api/cameras/{slug}/", who="root").json()

    def sessions(self) -> set[str]:
        return {s["session"] for s in self.camera().get("viewers", {}).get("sessions", [])}

    def offer(self, who: str | None, sdp: object, via: str = "json") -> Reply:
        """Send an offer; via json (the camera API), whep or seed (/api/webrtc/offer)."""
        if via == "whep":
            return self.http("POST", "/whep/default", sdp, {"Content-Type": "application/sdp"},
                             who=who)
        path = "/api/webrtc/offer" if via == "seed" else "/api/cameras/default/webrtc/offer/"
        return self.http("POST", path, {"type": "offer", "sdp": sdp}, who=who)

    def end_sessions(self, replies: list[Reply]) -> None:
        """DELETE (as root, who may end any) the sessions these answers opened."""
        for reply in replies:
            if reply.status == 201 and reply.headers.get("Location"):
                self.http("DELETE", reply.headers["Location"], who="root")
            elif reply.status == 200 and reply.json().get("session"):
                self.http("DELETE", f"/api/cameras/default/webrtc/{reply.json()['session']}/",
                          who="root")

    # --- raw sockets: bodies the server must refuse while they arrive --------------------

    def upload(self, head: bytes, total: int, *, chunked: bool) -> tuple[int, int]:
        """Send `head`, then body bytes in 64 KiB pieces (at most UPLOAD_CAP) until the server
        answers; (status, body bytes sent before the answer)."""
        piece = b"a" * 65536
        framed = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
        sent, status = 0, 0
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(head)
            while sent < min(total, UPLOAD_CAP):
                if select.select([sock], [], [], 0)[0]:
                    break
                try:
                    sock.sendall(framed)
                except OSError:
                    break
                sent += len(piece)
            with contextlib.suppress(OSError):
                answer = sock.recv(4096)
                if answer.startswith(b"HTTP/1.1 100"):  # the go-ahead: not the answer
                    answer = answer.split(b"\r\n\r\n", 1)[1] or sock.recv(4096)
                status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
        self.seen(status)
        return status, sent


def raw_head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def query(path: str, **params) -> str:
    return f"{path}?{urllib.parse.urlencode(params)}"


async def ws_open(probe: Probe, path: str = "/ws/cameras/default/", *, token: str | None = None,
                  cookies: Client | None = None, origin: str | None = None,
                  headers: dict[str, str] | None = None) -> Socket | int:
    """Open a WebSocket: a Socket, or the HTTP status its handshake was refused with."""
    url = f"ws://127.0.0.1:{probe.port}{path}" + (f"?token={token}" if token else "")
    extra = dict(headers or {})
    if cookies is not None:
        extra["Cookie"] = "; ".join(f"{c.name}={c.value}" for c in cookies.jar)
    if origin is not None:
        extra["Origin"] = origin
    try:
        ws = await websockets.connect(url, additional_headers=extra, open_timeout=20,
                                      max_size=2**22)
    except websockets.InvalidStatus as refused:
        probe.seen(refused.response.status_code)
        return refused.response.status_code
    probe.seen(101)
    return Socket(probe, ws)


# --- 1. shared memory ----------------------------------------------------------------------------


def item_shm_shrink(p: Probe) -> None:
    """Segments shrunk under the server: it stays up, counts them, and comes back when the
    daemon (the simulator, which dies of SIGBUS itself at its next write) restarts."""
    stack = p.stack
    stream = Path("/dev/shm") / stack.env["PETCAM_SHM_STREAM"].lstrip("/")
    detections = Path("/dev/shm") / stack.env["PETCAM_SHM_DETECTIONS"].lstrip("/")

    def detecting(after: int = 0) -> dict | None:
        body = p.camera()
        found = body.get("detections") or {}
        return body if body.get("live") and found.get("state") == "attached" \
            and found.get("results", 0) > after else None

    results = wait_for(detecting, 30, "live video and detections", 0.3)["detections"]["results"]
    os.truncate(detections, 0)
    shrunk = time.monotonic()
    counted = wait_for(lambda: (b := p.camera()).get("detections", {}).get("dropped", {})
                       .get("truncated") and b, 15, "the truncation counted", 0.3)
    p.check(bool(counted), "the detections segment truncated to 0 is counted as truncated")
    time.sleep(max(0.0, 3 - (time.monotonic() - shrunk)))  # it used to die within 0.5-3 s
    p.check(stack.site.alive(), "the server survives the detections segment at 0 bytes")
    health = p.http("GET", "/health").json()
    p.check(health.get("components", {}).get("detections_reader", {}).get("status")
            == "degraded", "/health says the detections reader is degraded")

    stack.simulator.stop()
    stack.start_simulator()
    back = wait_for(lambda: detecting(results), 30, "detections back", 0.3)
    p.check(bool(back), "video and detections come back after the daemon restarts")
    results = back["detections"]["results"]

    os.truncate(stream, 4096)
    shrunk = time.monotonic()
    fd = os.open(stream, os.O_RDWR)
    try:  # write_index keeps advancing in the shrunk file, as the probe did it
        index = struct.unpack("<I", os.pread(fd, 4, 0))[0]
        for _ in range(45):
            index += 1
            os.pwrite(fd, struct.pack("<I", index), 0)
            time.sleep(1 / 15)
    finally:
        os.close(fd)
    counted = wait_for(lambda: (b := p.camera()).get("reader", {}).get("skipped", {})
                       .get("truncated") and b, 15, "the stream truncation counted", 0.3)
    p.check(bool(counted) and not counted.get("live"),
            "the stream segment at 4 KiB is counted as truncated, the camera not live")
    time.sleep(max(0.0, 3 - (time.monotonic() - shrunk)))
    p.check(stack.site.alive(), "the server survives the stream segment at 4 KiB")

    stack.simulator.stop()
    stack.start_simulator()
    back = wait_for(lambda: detecting(results), 30, "the picture back", 0.3)
    p.check(bool(back) and back["reader"].get("restarts", 0) >= 1,
            "the picture and detections come back, no server restart")


# --- 2. detection buckets ------------------------------------------------------------------------


def item_detection_buckets(p: Probe) -> None:
    """A month in 1-second buckets as any viewer: 400 at once, counted by the database;
    a month's CSV streamed. Then (after "RSS after the memory probes") the largest query
    allowed, three at once, for what legitimate load costs."""
    now = time.time()
    month = {"from": f"{now - 31 * 86400 + 60:.0f}", "to": f"{now:.0f}"}
    path = "/api/cameras/default/detections/"

    with ThreadPoolExecutor(3) as pool:  # the probe's input, three at once
        bombs = list(pool.map(lambda _: p.http("GET", query(path, bucket=1, **month),
                                               who="viewer"), range(3)))
    p.check(all(r.is_error(400, "too_many_buckets") for r in bombs),
            "a month in 1 s buckets is 400 too_many_buckets (x3 at once)")
    p.check(p.http("GET", query(path, bucket=60, **month), who="viewer")
            .is_error(400, "too_many_buckets"), "a month in 60 s buckets is 400")
    csv = p.http("GET", query(path, format="csv", **month), who="viewer")
    lines = csv.body.count(b"\n")
    p.check(csv.status == 200 and csv.headers.get("Content-Type", "").startswith("text/csv")
            and lines >= p.history, f"a month's CSV export ({lines} lines) is answered")
    p.mark("after the memory probes")

    largest = math.ceil((float(month["to"]) - float(month["from"])) / 10_000) + 1
    with ThreadPoolExecutor(4) as pool:
        full = [pool.submit(p.http, "GET", query(path, bucket=largest, **month), who="viewer")
                for _ in range(3)]
        started = time.monotonic()
        health = p.http("GET", "/health")
        health_s = time.monotonic() - started
        full = [f.result() for f in full]
    series = [r.json().get("series", []) for r in full]
    p.check(all(r.status == 200 for r in full) and all(0 < len(s) <= 10_000 for s in series),
            f"a month in {largest} s buckets (the largest allowed) is answered (x3 at once)")
    counted = sum(sum(b["counts"].values()) for b in series[0]) if series[0] else 0
    p.check(counted >= p.history, f"the buckets count every stored detection "
                                  f"({counted}; {p.history} stored before the run)")
    p.check(health.status == 200, f"/health answers meanwhile ({health_s:.2f} s)")
    p.notes.append(f"2: /health during three month-long bucket queries: {health_s:.2f} s")
    p.check(p.http("GET", query(path, limit=500, offset=p.history - 10, **month),
                   who="viewer").status == 200, "a month's history, paged")
    p.mark("after three largest bucket queries")


# --- 3. request bodies ---------------------------------------------------------------------------


def item_request_bodies(p: Probe) -> None:
    """Bodies over their route's limit: 413 on the headers or the first bytes past it."""
    gigabyte = 1024 * MB
    token = raw_head("POST", "/api/auth/token/", "Content-Type: application/json",
                     f"Content-Length: {gigabyte}")
    with ThreadPoolExecutor(2) as pool:  # the probe's input: two at once
        both = list(pool.map(lambda _: p.upload(token, gigabyte, chunked=False), range(2)))
    for status, sent in both:
        p.check(status == 413 and sent < 64 * MB, f"an anonymous 1 GB POST to /api/auth/token/ "
                                                  f"is {status} after {sent // 1024} KiB")
    chunked = raw_head("POST", "/api/auth/token/", "Content-Type: application/json",
                       "Transfer-Encoding: chunked")
    status, sent = p.upload(chunked, 300 * MB, chunked=True)
    p.check(status == 413 and sent < 64 * MB,
            f"300 MB chunked to /api/auth/token/ is {status} after {sent // 1024} KiB")
    status, sent = p.upload(raw_head("POST", "/api/auth/token/", f"Content-Length: {gigabyte}",
                                     "Expect: 100-continue"), 0, chunked=False)
    p.check(status == 413, "Expect: 100-continue with 1 GB gets 413, not the go-ahead")
    for path in ("/accounts/login/", "/admin/login/", "/api/cameras/default/webrtc/offer/",
                 "/whep/default", "/api/webrtc/offer", "/api/recordings/1/", "/static/x",
                 "/anything/else"):
        status, sent = p.upload(raw_head("POST", path, f"Content-Length: {gigabyte}"),
                                gigabyte, chunked=False)
        p.check(status == 413 and sent < 64 * MB, f"1 GB to {path} is {status}")
    for path in ("/whep/default", "/accounts/login/"):
        status, sent = p.upload(raw_head("POST", path, "Transfer-Encoding: chunked"), 100 * MB,
                                chunked=True)
        p.check(status == 413 and sent < 64 * MB, f"100 MB chunked to {path} is {status}")


# --- 4. viewer slots -----------------------------------------------------------------------------


def item_viewer_slots(p: Probe) -> None:
    """A viewer's offers that never connect hold at most their share; everyone else gets
    in; pending sessions go at the ICE deadline."""
    hole = UdpBlackHole()
    dangling = with_candidates(p.sdp, hole.candidates())
    try:
        hog = [p.offer("viewer", dangling) for _ in range(10)]  # the probe's input
        p.check(all(r.status == 200 for r in hog), "the viewer's 10 offers are answered "
                                                   "(each past the third replaces her oldest)")
        viewers = p.camera()["viewers"]
        live = p.sessions()
        p.check(live == {r.json()["session"] for r in hog[-PER_USER:]}
                and viewers.get("pending") == PER_USER,
                f"she holds {PER_USER} pending slots, her newest")
        others = []
        for who in ("root", "operator", "limited"):  # while she keeps re-offering
            others.append(p.offer(who, dangling))
            hog.append(p.offer("viewer", dangling))
        p.check(all(r.status == 200 for r in others),
                f"root, an operator and a limited viewer get in: "
                f"{[r.status for r in others]} (it was 503 max_viewers)")
        p.check(all(r.status == 200 for r in hog[-3:]), "her re-offers replace her own")
        live = p.sessions()
        p.check({r.json().get("session") for r in others} <= live
                and len(live) <= MAX_VIEWERS, "the others' sessions are live")
        for who, status in ((None, (401, 403)), ("norole", (403,))):
            reply = p.offer(who, dangling)
            p.check(reply.status in status, f"{who or 'anonymous'}'s offer is {reply.status}")
        reply = p.http("POST", "/api/cameras/attic/webrtc/offer/",
                       {"type": "offer", "sdp": dangling}, who="limited")
        p.check(reply.is_error(404), "the limited viewer's offer to a hidden camera is 404")
        started = time.monotonic()
        gone = wait_for(lambda: not p.camera()["viewers"].get("sessions"),
                        ICE_TIMEOUT + 10, "pending sessions dropped", 0.5)
        p.check(bool(gone), f"every pending session is dropped at the ICE deadline "
                            f"({time.monotonic() - started:.1f} s)")
        p.check(hole.received() == 0, "no STUN to the loopback candidates of her offers")
    finally:
        hole.close()


# --- 5. revocation -------------------------------------------------------------------------------


def item_revocation(p: Probe) -> None:
    """Revoking a token, deactivating a user and removing their group closes their sockets
    and ends their live sessions; their offers are refused afterwards."""
    offer = {"type": "offer", "sdp": with_candidates(p.sdp, [])}

    async def opened(**kw) -> Socket | None:
        sock = await ws_open(p, **kw)
        if not isinstance(sock, Socket):
            p.check(False, f"a socket opens (got {sock})")
            return None
        await sock.next("status")
        return sock

    async def with_session(sock: Socket) -> str | None:
        await sock.send(offer)
        answer = await sock.next("answer")
        return answer.get("session") if answer else None

    async def ends(sock: Socket, who: str, why: str, codes: tuple[int, ...]) -> None:
        code = await sock.ended()
        count = len(sock.messages)
        p.check(code in codes and sock.messages and sock.messages[-1].get("type") == "error",
                f"{who}'s socket closes after {why} (code {code}, last "
                f"{sock.messages[-1] if sock.messages else None})")
        await asyncio.sleep(1)
        p.check(len(sock.messages) == count, f"nothing reaches {who}'s socket after {why}")

    async def refused_later(who: str, why: str) -> None:
        again = await ws_open(p, token=p.token(who))
        if not isinstance(again, Socket):
            p.check(again in (401, 403), f"{who}'s new socket after {why}: {again}")
        else:
            first = await again.next("status")
            p.check(first is not None and first.get("type") == "error",
                    f"{who}'s new socket after {why} is refused: {first}")
            await again.ended(5)
        reply = await asyncio.to_thread(p.offer, who, offer["sdp"])
        p.check(reply.status in (401, 403), f"{who}'s offer after {why} is {reply.status}")

    def admin_saves(who: str, **changes) -> Reply:
        return p.submit(p.root_browser, f"/admin/auth/user/{p.users[who]['id']}/change/",
                        **changes)

    async def run() -> None:
        # a token revoked (DELETE /api/auth/token/ with it)
        sock = await opened(token=p.token("revoked"))
        session = await with_session(sock)
        reply = await asyncio.to_thread(p.http, "DELETE", "/api/auth/token/", None, None,
                                        "revoked")
        p.check(reply.status == 204, "the token is revoked")
        await ends(sock, "revoked", "the token's revocation", (4401,))
        live = await asyncio.to_thread(p.sessions)
        p.check(session is not None and session not in live,
                "the revoked token's live session is ended")
        await refused_later("revoked", "the revocation")

        # a user deactivated in the admin: their token socket and their browser's
        browser = await asyncio.to_thread(p.login, "deactivated")
        sockets = [await opened(token=p.token("deactivated")),
                   await opened(cookies=browser, origin=p.base)]
        session = await with_session(sockets[0])
        reply = await asyncio.to_thread(admin_saves, "deactivated", is_active=None)
        p.check(reply.status == 302, f"root deactivates the user ({reply.status})")
        for sock in sockets:
            await ends(sock, "deactivated", "the deactivation", (4401,))
        p.check(session not in await asyncio.to_thread(p.sessions),
                "the deactivated user's live session is ended")
        await refused_later("deactivated", "the deactivation")

        # a user taken out of their group
        sock = await opened(token=p.token("demoted"))
        session = await with_session(sock)
        reply = await asyncio.to_thread(admin_saves, "demoted", groups=None)
        p.check(reply.status == 302, f"root removes the user's group ({reply.status})")
        await ends(sock, "demoted", "the group removal", (4403, 4401))
        p.check(session not in await asyncio.to_thread(p.sessions),
                "the demoted user's live session is ended")
        await refused_later("demoted", "the group removal")

    asyncio.run(run())


# --- 6. admin rights -----------------------------------------------------------------------------


def item_admin_rights(p: Probe) -> None:
    """The admins-group member, through the admin's own forms, cannot raise their rights,
    touch a superuser or read a token."""
    admin = p.login("admin")
    me = f"/admin/auth/user/{p.users['admin']['id']}/change/"
    root = f"/admin/auth/user/{p.users['root']['id']}/change/"
    page = p.page(admin, "GET", me)
    p.check(page.status == 200 and b'name="is_superuser"' not in page.body,
            "the admin's own page has no Superuser box")
    everything = list(p.groups.values())
    reply = p.submit(admin, me, is_superuser="on", is_staff="on", groups=everything,
                     user_permissions=list(p.perms.values()), first_name="Mallory")
    p.check(reply.status in (200, 302, 403), f"saving their own page with is_superuser "
                                             f"is {reply.status}")
    seen_by_root = p.form(p.root_browser, me)
    p.check("is_superuser" not in seen_by_root
            and seen_by_root.get("groups") == [str(p.groups["admins"])]
            and not seen_by_root.get("user_permissions"),
            f"the admin is still an admin only: {seen_by_root.get('groups')}, "
            f"superuser {'is_superuser' in seen_by_root}")
    for method, form in (("GET", None), ("POST", {"username": "root", "is_active": ""})):
        reply = p.page(admin, method, root, form)
        p.check(reply.status == 302 and reply.headers.get("Location") == "/admin/",
                f"{method} a superuser's page: treated as unknown ({reply.status})")
    for path, form in ((f"/admin/auth/user/{p.users['root']['id']}/password/",
                        {"password1": "taken over 12345", "password2": "taken over 12345"}),
                       (f"/admin/auth/user/{p.users['root']['id']}/delete/", {"post": "yes"})):
        reply = p.page(admin, "POST", path, form)
        p.check(reply.status in (302, 403, 404), f"POST {path}: {reply.status}")
    still = p.http("GET", "/api/cameras/", who="root")
    p.check(still.status == 200, "the superuser's token still works")
    p.login("root")  # checks that the password still works

    listing = p.page(admin, "GET", "/admin/accounts/apitoken/")
    keys = [u["token"] for u in p.users.values()]
    p.check(listing.status == 200 and not any(k[:15].encode() in listing.body for k in keys),
            "the token list shows no key")
    p.check(p.page(admin, "GET", "/admin/authtoken/tokenproxy/").status == 404,
            "DRF's clear-text token list is gone")
    p.check(p.page(admin, "GET", "/admin/accounts/apitoken/add/").status == 403,
            "nobody makes a token for someone else")
    group = f"/admin/auth/group/{p.groups['admins']}/change/"
    reply = p.page(admin, "POST", group, {"name": "admins",
                                          "permissions": list(p.perms.values())})
    p.check(reply.status == 403, f"the admin cannot edit their own group ({reply.status})")


# --- 7. offers and candidates --------------------------------------------------------------------


def malformed_offers(sdp: str) -> list[tuple[str, object]]:
    """(label, sdp value) of offers that are wrong in every way the probe tried."""
    lines = sdp.splitlines()
    offers: list[tuple[str, object]] = [
        ("null", None), ("number", 0), ("list", []), ("object", {}), ("true", True),
        ("empty", ""), ("blank", "  \r\n"), ("v=0 only", "v=0"), ("text", "hello"),
        ("v=1", sdp.replace("v=0", "v=1", 1)), ("no video", "\r\n".join(
            line for line in lines if not line.startswith("m=video")) + "\r\n"),
        ("audio only", sdp.replace("m=video", "m=audio")),
        ("over 64 KiB", sdp + "a=x:" + "y" * 65536 + "\r\n"),
        ("bytes", bytes(range(256)).decode("latin-1")),
        ("nul", sdp.replace("\r\n", "\0", 3)),
        ("200 m-lines", sdp + "".join(f"m=video {9 + i} UDP/TLS/RTP/SAVPF 96\r\n"
                                      for i in range(200))),
        ("cr only", sdp.replace("\r\n", "\r")),
        ("u2028", sdp.replace("\r\n", "\u2028")),
        ("no fingerprint", "\r\n".join(x for x in lines if "fingerprint" not in x) + "\r\n"),
        ("no ice-ufrag", "\r\n".join(x for x in lines if "ice-ufrag" not in x) + "\r\n"),
        ("no setup", "\r\n".join(x for x in lines if "a=setup" not in x) + "\r\n"),
        ("no rtpmap", "\r\n".join(x for x in lines if "rtpmap" not in x) + "\r\n"),
        ("bad payload", re.sub(r"a=rtpmap:\d+", "a=rtpmap:999", sdp)),
        ("vp8 only", re.sub(r"H264/90000", "VP8/90000", sdp)),
        ("bad fingerprint", re.sub(r"(a=fingerprint:\S+ ).*", r"\1zz:zz", sdp)),
        ("huge port", sdp.replace("m=video 9", "m=video 99999999999999999999")),
        ("answer type", sdp.replace("a=setup:actpass", "a=setup:passive")),
        ("surrogate", sdp + "a=x:\ud800\r\n"),
    ]
    for fraction in (0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.97):
        offers.append((f"truncated at {fraction:.0%}", sdp[:int(len(sdp) * fraction)]))
    for i, bad in enumerate((
            "a=candidate:1 1 udp", "a=candidate:x y z w 1.2.3.4 99999 typ host",
            "a=candidate:1 1 udp 1 198.51.100.1 0 typ host",
            "a=candidate:1 1 udp 1 198.51.100.1 70000 typ host",
            "a=candidate:1 1 udp 1 198.51.100.1 " + DIGITS_4301 + " typ host",
            "a=candidate:1 " + DIGITS_4301 + " udp 1 198.51.100.1 9 typ host",
            "a=candidate:1 1 udp " + DIGITS_4301 + " 198.51.100.1 9 typ host",
            "a=candidate:1 1 udp 1 198.51.100.1 5\u00b2 typ host",
            "a=candidate:1 \u00b9 udp 1 198.51.100.1 9 typ host",
            "a=candidate:1 1 udp 1 ::ffff:127.0.0.1 9 typ host",
            "a=candidate:1 1 udp 1 not_an_ip 9 typ host",
            "a=candidate:1 1 tcp 1 198.51.100.1 9 typ host tcptype active",
            "a=candidate:1 99 udp 1 198.51.100.1 9 typ relay raddr x rport y",
            "a=candidate:" + "1" * 5000 + " 1 udp 1 198.51.100.1 9 typ host")):
        offers.append((f"bad candidate {i}", with_candidates(sdp, [bad])))
    for i, where in enumerate(range(0, len(lines), max(1, len(lines) // 20))):  # lines mangled
        mangled = list(lines)
        mangled[where] = mangled[where][::-1]
        offers.append((f"line {where} reversed", "\r\n".join(mangled) + "\r\n"))
        mangled[where] = "=" * (i + 1)
        offers.append((f"line {where} blanked", "\r\n".join(mangled) + "\r\n"))
    return offers


def item_offers_and_candidates(p: Probe) -> None:
    """Offers are capped at 32 candidates, forbidden addresses dropped, every malformed
    offer a 4xx (or an answer when it is still a usable offer), never a 5xx."""
    # short lines: 1000 of them stay under the 64 KiB offer limit, so the cap is what answers
    flood = [f"a=candidate:{i} 1 udp 1 198.51.100.{i % 250 + 1} {10000 + i} typ host"
             for i in range(1000)]
    answered: list[Reply] = []
    for via in ("json", "whep", "seed"):
        reply = p.offer("operator", with_candidates(p.sdp, flood), via)
        p.check(reply.is_error(400, "invalid_sdp"), f"1000 candidates over {via}: {reply.status}")
        answered.append(reply)

    hole = UdpBlackHole(count=50)  # the probe's 50 loopback candidates: over the cap
    try:
        reply = p.offer("operator", with_candidates(p.sdp, hole.candidates()))
        answered.append(reply)
        p.check(reply.is_error(400, "invalid_sdp"), f"an offer with 50 loopback candidates: "
                                                    f"{reply.status}")
        reply = p.offer("operator", with_candidates(p.sdp, hole.candidates()[:30]))
        answered.append(reply)
        p.check(reply.status == 200, f"an offer with 30 loopback candidates is answered "
                                     f"({reply.status}), the candidates dropped")
        time.sleep(3)
        p.check(hole.received() == 0, f"no packet reaches the loopback ports "
                                      f"({hole.received()})")
    finally:
        hole.close()
    forbidden = [f"a=candidate:{i} 1 udp 1 {a} 9 typ host" for i, a in enumerate(
        ("0.0.0.0", "224.0.0.1", "255.255.255.255", "169.254.1.1", "fe80::1", "::",
         "::1", "127.0.0.2", "evil.example", "metadata.google.internal"))]
    reply = p.offer("operator", with_candidates(p.sdp, forbidden))
    answered.append(reply)
    p.check(reply.status == 200, f"an offer naming only forbidden addresses: {reply.status}")

    for via in ("json", "whep", "seed"):
        for label, value in malformed_offers(p.sdp):
            if via == "whep" and not isinstance(value, str):
                continue
            reply = p.offer("operator", value, via)
            answered.append(reply)
            p.check(reply.status < 500, f"malformed offer {label!r} over {via}: {reply.status}")
            if reply.status >= 400:
                p.check(reply.is_error(reply.status),
                        f"malformed offer {label!r} over {via}: the error format")
    p.end_sessions(answered)

    async def over_socket() -> None:
        sock = await ws_open(p, token=p.token("operator"))
        if not isinstance(sock, Socket):
            p.check(False, f"the operator's socket opens ({sock})")
            return
        await sock.next("status")
        for label, value in [("1000 candidates", with_candidates(p.sdp, flood)),
                             *malformed_offers(p.sdp)[:30]]:
            await sock.send({"type": "offer", "sdp": value})
            answer = await sock.next("answer", timeout=20)
            if answer and answer.get("type") == "answer":
                await sock.send({"type": "close", "session": answer["session"]})
            p.check(answer is not None, f"{label!r} over the socket is answered: "
                                        f"{answer and answer.get('error', 'answer')}")
        await sock.send({"type": "ping"})
        p.check(await sock.next("pong") == {"type": "pong"}, "the socket is still open")
        await sock.close()

    asyncio.run(over_socket())


# --- 8. hostile inputs ---------------------------------------------------------------------------


def item_hostile_inputs(p: Probe) -> None:
    """Numbers, ranges, nested JSON, surrogates, path tricks: each a 4xx in the documented
    format (or the right 2xx), never a 500."""
    history = "/api/cameras/default/detections/"
    for params in ({"from": "inf"}, {"from": "-inf"}, {"from": "nan"}, {"from": "1e20"},
                   {"from": "-1e20"}, {"to": "1e300"}, {"from": DIGITS_4301},
                   {"to": DIGITS_4301},
                   {"from": "0001-01-01T00:00:00", "to": "0001-01-02T00:00:00"},
                   {"from": "0001-01-01T00:00:00", "to": "0001-01-02T00:00:00", "bucket": 60},
                   {"to": "0001-01-01T00:00:00"}, {"from": "0001-01-01T00:00:00+01:00"},
                   {"from": "9999-12-31T23:59:59-01:00"}):
        reply = p.http("GET", query(history, **params), who="viewer")
        p.check(reply.is_error(400, "invalid_time") and len(reply.body) < 400,
                f"detections {str(params)[:60]}: {reply.status}")
    for params in ({"bucket": DIGITS_4301}, {"bucket": "1e3"}, {"bucket": "-1"},
                   {"bucket": "nan"}):
        p.check(p.http("GET", query(history, **params), who="viewer").is_error(400),
                f"detections {str(params)[:40]} is 400")
    for value in (DIGITS_4301, "9" * 30, "-5", "1e5", "nan"):
        p.check(p.http("GET", query(history, offset=value, limit=value), who="viewer")
                .status == 200, f"offset/limit {value[:20]} fall back to the defaults")

    rec = p.recording
    for path in (f"/api/recordings/{rec}/download/", f"/api/recordings/{rec}/hls/media.mp4"):
        for header, status in ((f"bytes={DIGITS_4301}-", 416), (f"bytes=0-{DIGITS_4301}", 206),
                               (f"bytes=-{DIGITS_4301}", 206), ("bytes=99999999999999999999-",
                                                                416),
                               (f"bytes=10-{'0' * 4300}20", 206), ("bytes=abc", 200)):
            reply = p.http("GET", path, headers={"Range": header}, who="viewer")
            p.check(reply.status == status, f"Range {header[:24]} on {path}: {reply.status}")
    for params in ({"at": "1e15"}, {"at": "1e300"}, {"at": DIGITS_4301}, {"at": "inf"},
                   {"start": "1e15"}, {"start": "0", "end": "1e300"},
                   {"at": "1", "tolerance": "1e300"}):
        reply = p.http("GET", query(f"/api/recordings/{rec}/detections/", **params),
                       who="viewer")
        p.check(reply.is_error(400, "invalid_parameter"),
                f"recording detections {str(params)[:40]}: {reply.status}")
    for value in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "x" * 4301):
        for name in ("started_after", "started_before"):
            reply = p.http("GET", query("/api/recordings/", **{name: value}), who="viewer")
            p.check(reply.is_error(400), f"{name}={value[:26]}: {reply.status}")

    json_endpoints = [("POST", "/api/auth/token/", None),
                      ("POST", "/api/cameras/default/webrtc/offer/", "operator"),
                      ("POST", "/api/webrtc/offer", "operator"),
                      ("POST", "/api/cameras/default/recording/start/", "operator"),
                      ("POST", "/api/recording/start", "operator"),
                      ("PATCH", f"/api/recordings/{rec}/", "operator")]
    for body in (NESTED, NESTED_OBJECT):
        for method, path, who in json_endpoints:
            reply = p.http(method, path, body, {"Content-Type": "application/json"}, who=who)
            p.check(reply.is_error(400, "parse_error"), f"nested JSON to {path}: {reply.status}")
    surrogate = '{"name": "\\ud800"}'
    for method, path in (("PATCH", f"/api/recordings/{rec}/"),
                         ("POST", "/api/cameras/default/recording/start/")):
        reply = p.http(method, path, surrogate, {"Content-Type": "application/json"},
                       who="operator")
        p.check(reply.is_error(400, "parse_error"), f"a lone surrogate to {path}: "
                                                    f"{reply.status}")
    p.check(p.http("GET", f"/api/recordings/{rec}/", who="viewer").json().get("name")
            == "probe",
            "the recording's name is unchanged")
    for path in ("/static/../../etc/passwd", "/static/../../../../etc/passwd",
                 "/static/detections/../../../../etc/passwd", "/static/..",
                 "/static/../petcam_site/settings.py", "/static/%2e%2e/%2e%2e/etc/passwd",
                 "/media/../../etc/passwd", "/api/recordings/../../etc/passwd"):
        reply = p.http("GET", path)
        p.check(reply.status == 404 and b"root:" not in reply.body, f"{path}: {reply.status}")

    async def sockets() -> None:
        for path in ("/ws/cameras/default/nope/", "/ws/", "/ws/nope", "/ws/cameras/",
                     "/anything/else", "/ws/cameras/attic/", "/ws/cameras/" + "x" * 3000 + "/"):
            sock = await ws_open(p, path, token=p.token("limited"))
            if not isinstance(sock, Socket):
                p.check(False, f"WebSocket {path[:40]}: handshake {sock}")
                continue
            code = await sock.ended()
            p.check(code == 4404, f"WebSocket {path[:40]}: closed {code}")
        sock = await ws_open(p, token=p.token("viewer"))
        if isinstance(sock, Socket):
            for text in (NESTED, NESTED_OBJECT, '{"type": "close", "session": "\\ud800"}',
                         "not json", "[]", '"a string"', '{"type": "' + "x" * 10_000 + '"}'):
                await sock.send(text)
                answer = await sock.next("pong")
                p.check(answer is not None and answer.get("type") == "error",
                        f"a bad socket message gets an error: {answer}")
            await sock.send({"type": "ping"})
            p.check(await sock.next("pong") == {"type": "pong"}, "the socket stays open")
            await sock.close()

    asyncio.run(sockets())


# --- 9. the smaller ones -------------------------------------------------------------------------


def item_smaller_ones(p: Probe) -> None:
    """/health and /metrics for strangers, spoofed X-Forwarded-For and Origin, signed
    links, the access log, CSV formulas, password rules, file modes."""
    outside = {"X-Forwarded-For": OUTSIDE}  # as the (trusted, loopback) proxy passes it
    secrets = ("attic", "default", "pid", "petcam_bench", "viewers", "rss", "segment")
    for who in (None, "viewer"):
        reply = p.http("GET", "/health", headers=outside, who=who)
        body = reply.json()
        p.check(reply.status == 200 and set(body) == {"status", "components"}
                and not any(s in reply.body.decode() for s in secrets),
                f"/health for {who or 'anonymous'} from outside: status words only")
    full = p.http("GET", "/health", headers=outside, who="root").json()
    p.check(set(full.get("cameras", {})) == {"default", "attic"},
            "/health for staff from outside has the figures")

    for headers, who, status in (({"X-Forwarded-For": f"127.0.0.1, {OUTSIDE}"}, None, 403),
                                 ({"X-Forwarded-For": f"::1, 10.0.0.1, {OUTSIDE}"}, None, 403),
                                 (outside, None, 403), (outside, "viewer", 403),
                                 (outside, "root", 200), ({}, None, 200)):
        reply = p.http("GET", "/metrics", headers=headers, who=who)
        p.check(reply.status == status, f"/metrics, X-Forwarded-For "
                                        f"{headers.get('X-Forwarded-For')!r}, {who}: "
                                        f"{reply.status}")

    # 30 usernames from one address, each with a made-up first X-Forwarded-For entry
    statuses = []
    for i in range(30):
        reply = p.http("POST", "/api/auth/token/", {"username": f"guess{i}", "password": "x"},
                       {"X-Forwarded-For": f"10.9.{i}.1, 203.0.113.77"})
        statuses.append(reply.status)
        if reply.status == 429:
            p.check(reply.headers.get("Retry-After", "").isdigit(), "429 has Retry-After")
    p.check(429 in statuses[:21] and set(statuses[statuses.index(429):]) == {429},
            f"30 usernames from one address are capped: {statuses}")
    for _ in range(6):
        reply = p.http("POST", "/api/auth/token/", {"username": "viewer", "password": "x"},
                       {"X-Forwarded-For": "203.0.113.88"})
    p.check(reply.status == 429 and reply.headers.get("Retry-After", "").isdigit(),
            f"a username locked for one address: {reply.status} with Retry-After")

    async def origins() -> None:
        browser = await asyncio.to_thread(p.login, "viewer")
        port = p.port
        for origin in ("http://127.0.0.1:9999", f"https://127.0.0.1:{port}", "http://127.0.0.1",
                       f"http://localhost:{port}", f"http://127.0.0.1.evil.example:{port}",
                       "null"):
            sock = await ws_open(p, cookies=browser, origin=origin)
            if isinstance(sock, Socket):
                await sock.close()
            p.check(sock == 403, f"a socket from Origin {origin}: {sock}")
        sock = await ws_open(p, cookies=browser, origin=p.base)
        p.check(isinstance(sock, Socket), "a socket from the site's own origin opens")
        if isinstance(sock, Socket):
            await sock.close()

    asyncio.run(origins())

    # signed HLS links: bound to the credentials they were asked with
    link_path = f"/api/recordings/{p.recording}/hls/link/"
    def signed_link(who: str) -> str:
        url = urllib.parse.urlsplit(p.http("GET", link_path, who=who).json().get("url", ""))
        return f"{url.path}?{url.query}"

    first = signed_link("linker")
    p.check("recording" not in first.split("?", 1)[-1] and
            f":{p.users['linker']['id']}" not in first, "a signed link shows no ids")
    p.check(p.http("GET", first).status == 200, "the signed link plays")
    page = f"/admin/auth/user/{p.users['linker']['id']}/password/"
    reply = p.submit(p.root_browser, page, password1="Another passphrase 2026",
                     password2="Another passphrase 2026", usable_password="true")
    p.check(reply.status == 302, f"root changes the linker's password ({reply.status})")
    p.check(p.http("GET", first).status == 403, "the link ends with the password change")
    made = p.http("POST", "/api/auth/token/", {"username": "linker",
                                               "password": "Another passphrase 2026"})
    second_token = made.json().get("token", "")
    p.users["linker2"] = {"id": p.users["linker"]["id"], "token": second_token}
    second = signed_link("linker2")
    p.check(p.http("GET", second).status == 200, "a new link plays")
    p.http("DELETE", "/api/auth/token/", who="linker2")
    p.check(p.http("GET", second).status == 403, "the link ends with its token's revocation")
    sig = urllib.parse.parse_qs(urllib.parse.urlsplit(second).query).get("sig", [""])[0]
    log = p.stack.site.log()
    p.check("sig=[redacted]" in log and sig and sig not in log
            and not any(u["token"] in log for u in p.users.values()),
            "the access log names no link or token")

    reply = p.http("GET", query("/api/cameras/default/detections/", format="csv",
                                **{"class": FORMULA, "from": f"{time.time() - 86400:.0f}"}),
                   who="viewer")
    cells = [c for line in reply.body.decode().splitlines()[1:] for c in line.split(",")]
    p.check(reply.status == 200 and any(c.startswith("'=cmd") for c in cells)
            and not any(c.startswith("=") for c in cells), "a formula class name is text")

    for weak in ("98127364", "petcam12", "newuser123"):
        reply = p.submit(p.root_browser, "/admin/auth/user/add/", username="newuser",
                         usable_password="true", password1=weak, password2=weak)
        p.check(reply.status == 200 and b"errorlist" in reply.body,
                f"the password {weak!r} is refused ({reply.status})")

    var = Path(p.stack.env["PETCAM_VAR_DIR"])
    for path, allowed in ((var / "petcam.sqlite3", 0o600), (var / "secret_key", 0o600),
                          (Path("/dev/shm") / p.stack.segment.lstrip("/"), 0o640)):
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
        p.check(mode is not None and mode & ~allowed == 0,
                f"{path.name} is {oct(mode) if mode is not None else 'missing'}")


ITEMS = [  # (key, title, function) in the issue's order
    ("1", "shm segment shrunk", item_shm_shrink),
    ("2", "detection bucket bombs", item_detection_buckets),
    ("3", "oversized bodies", item_request_bodies),
    ("4", "viewer slot hogging", item_viewer_slots),
    ("5", "revocation", item_revocation),
    ("6", "admin escalation", item_admin_rights),
    ("7", "SDP and candidates", item_offers_and_candidates),
    ("8", "hostile inputs (500s)", item_hostile_inputs),
    ("9", "health/proxy/origin/links", item_smaller_ones),
]
MEMORY_ITEMS = ("3", "2")  # run first: item 2 reads "RSS after the memory probes"


# --- the run -------------------------------------------------------------------------------------


async def template_offer() -> str:
    """A real receive-only aiortc offer, its candidates removed (added per probe)."""
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return with_candidates(sdp, [])


def setup(stack: Stack) -> Probe:
    stack.manage("migrate", "--noinput")
    tag = stack.env["PETCAM_SHM_STREAM"].rsplit("_", 1)[0]
    out = stack.manage("shell", "-c", MAKE_WORLD.format(
        attic_stream=f"{tag}_attic", attic_det=f"{tag}_attic_det", people=MAKE_PEOPLE,
        formula=FORMULA, step=HISTORY_STEP_S))
    world = json.loads(out.strip().splitlines()[-1])
    stack.token = world["users"]["root"]["token"]
    stack.start_server()
    stack.start_simulator()
    stack.wait_live()
    probe = Probe(stack, world, asyncio.run(template_offer()))
    probe.root_browser = probe.login("root")
    # a short recording for ranges, HLS and signed links
    started = probe.http("POST", "/api/cameras/default/recording/start/", {"name": "probe"},
                         who="operator")
    time.sleep(3)
    probe.http("POST", "/api/cameras/default/recording/stop/", {}, who="operator")
    probe.recording = started.json().get("id")
    if not probe.recording:
        raise RuntimeError(f"could not record: {started.status} {started.body[:300]!r}")
    return probe


def warm_up(p: Probe) -> None:
    """One of each kind of request, so that the RSS at start includes what any first
    request loads (views, templates, the schema)."""
    now = time.time()
    for _ in range(2):
        p.http("GET", "/health")
        p.http("GET", "/metrics")
        p.http("GET", "/api/cameras/", who="viewer")
        p.http("GET", query("/api/cameras/default/detections/", bucket=3600,
                            **{"from": f"{now - 86400:.0f}"}), who="viewer")
        p.http("GET", query("/api/cameras/default/detections/", format="csv"), who="viewer")
        p.http("POST", "/api/auth/token/", "{}", {"Content-Type": "application/json"})
        p.page(Client(p.base), "GET", "/accounts/login/")
    p.upload(raw_head("POST", "/api/auth/token/", f"Content-Length: {MB}"), MB, chunked=False)


def run_items(p: Probe) -> None:
    by_key = {key: (key, title, fn) for key, title, fn in ITEMS}
    order = [*MEMORY_ITEMS, *(k for k, _, _ in ITEMS if k not in MEMORY_ITEMS)]
    done: dict[str, Item] = {}
    for n, key in enumerate(order, 1):
        key, title, fn = by_key[key]
        p.item = item = Item(key, title)
        print(f"[{n}/{len(order)}] item {key}: {title} (load {loadavg()})", flush=True)
        started = time.monotonic()
        try:
            fn(p)
        except Exception as exc:  # the probe's own failure is a failed check, not the end
            traceback.print_exc()
            p.check(False, f"the probe itself: {type(exc).__name__}: {str(exc)[:200]}")
        item.seconds = time.monotonic() - started
        if not p.stack.site.alive():
            item.crashes += 1
            print(f"  CRASH: the server exited ({p.stack.site.popen.returncode}):\n"
                  f"{p.stack.site.log_tail()}", flush=True)
            p.stack.start_server()
            p.sampler.pid = server_pid(p.stack)
        item.rss_after_mb = vm_rss_mb(p.sampler.pid)
        done[key] = item
    p.items = [done[key] for key, _, _ in ITEMS]


def logged_errors(log: str) -> dict[str, int]:
    """The server's ERROR log records (logger and first 120 characters), counted."""
    found = Counter(f"[{m.group(1)}] {m.group(2)[:120]}" for m in re.finditer(
        r"^\S+ \S+ ERROR\s+\[([^\]]+)\] (.*)$", log, re.MULTILINE))
    return dict(found.most_common())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the JSON here")
    parser.add_argument("--keep-logs", action="store_true", help="keep the site's logs")
    args = parser.parse_args()

    began = time.monotonic()
    stack = Stack(width=320, height=240, fps=15, bitrate=300, detect_fps=5, mode="inprocess",
                  max_viewers=MAX_VIEWERS, keep_logs=args.keep_logs, extra_env={
                      "PETCAM_MAX_VIEWERS_PER_USER": str(PER_USER),
                      "PETCAM_ALLOW_LOCAL_CANDIDATES": "0",  # the default: none on loopback
                      "PETCAM_ICE_TIMEOUT": str(ICE_TIMEOUT),
                      "PETCAM_TRUSTED_PROXIES": "127.0.0.1,::1",  # nginx on this host
                      "PETCAM_ACCESS_LOG": "1",
                      "PETCAM_STALL_SECONDS": "1.0",
                  })
    with stack:
        p = setup(stack)
        warm_up(p)
        time.sleep(1)
        p.sampler = RssSampler(server_pid(stack))
        p.rss["start"] = vm_rss_mb(p.sampler.pid)
        p.sampler.start()
        setup_item = p.item
        try:
            run_items(p)
        finally:
            p.sampler.stopped.set()
        p.rss["peak"] = p.sampler.peak
        p.rss["end"] = vm_rss_mb(p.sampler.pid)
        errors = logged_errors(stack.site.log())
        if args.keep_logs:
            print(f"logs kept in {stack.log_dir}")

    rows = [item.row() for item in p.items]
    totals = {k: sum(r[k] for r in rows) for k in ("requests", "4xx", "5xx", "no answer",
                                                      "crashes", "checks ok", "checks failed")}
    print()
    print_table([*rows, {"item": "all", "what": "", **totals,
                         "seconds": round(time.monotonic() - began, 1)}],
                ["item", "what", "requests", "4xx", "5xx", "no answer", "crashes", "checks ok",
                 "checks failed", "seconds", "RSS after MB"])
    rss = {k: round(v, 1) if v is not None else float("nan") for k, v in p.rss.items()}
    start, after = rss["start"], rss.get("after the memory probes", float("nan"))
    targets = {
        "0 crashes": totals["crashes"] == 0,
        "0 5xx": totals["5xx"] == 0,
        f"RSS after the memory probes within {RSS_SLACK_MB} MB of the start "
        f"({start:.0f} -> {after:.0f} MB)": after - start <= RSS_SLACK_MB,
        "every expected behaviour seen": totals["checks failed"] == 0
        and totals["no answer"] == 0 and not setup_item.failed,
    }
    result = {
        "items": rows, "totals": totals, "rss_mb": rss,
        "failed_checks": {item.key: item.failed for item in [setup_item, *p.items]
                          if item.failed},
        "server_log_errors": errors,
        "targets_met": targets,
        "notes": [*p.notes, "server RSS MB: " + ", ".join(f"{k} {v}" for k, v in rss.items()),
                  f"ERROR lines in the server log: {sum(errors.values())}",
                  f"run {time.monotonic() - began:.0f} s, load {loadavg()}"],
    }
    emit(result, args.json, shown={k: result[k] for k in ("totals", "rss_mb", "failed_checks",
                                                          "server_log_errors")})
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
