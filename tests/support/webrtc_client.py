"""A real WebRTC viewer for tests: aiortc, receive-only, keeps the raw access units.

`WebRtcClient` sends an offer over the JSON API, WHEP or the seeds' endpoint
(token auth), and captures every access unit aiortc's jitter buffer
reassembles, *without decoding*: the receiver's decoder queue is replaced by a
`CaptureQueue` before the connection starts, so the decoder thread only ever
sees our queue's end marker. It can also misbehave the way real viewers do:
`stall()` stops reading the socket and sending anything (no RTCP, no STUN
answers) while keeping it open; `kill_socket()` closes the UDP sockets at once
without a goodbye, so only the server's watchdog can notice.

HTTP runs in a thread (`asyncio.to_thread`) so many clients share one event
loop without blocking each other's media.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from streaming.media.shm import segment as shm_segment
from tests.support.processes import (
    Proc,
    create_admin,
    install,
    pick_free_port,
    start_simulator,
    start_site,
    wait_for,
)

# --- HTTP ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def http(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 20) -> HttpReply:
    """One plain HTTP request (no cookies, no redirects); error statuses are replies too."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return HttpReply(resp.status, dict(resp.headers), resp.read())
    except urllib.error.HTTPError as err:
        return HttpReply(err.code, dict(err.headers), err.read())


def get_token(base: str, username: str, password: str) -> str:
    """A new API token from POST /api/auth/token/ (what the mobile app does)."""
    reply = http("POST", base.rstrip("/") + "/api/auth/token/",
                 json.dumps({"username": username, "password": password}).encode(),
                 {"Content-Type": "application/json"})
    assert reply.status == 200, (reply.status, reply.body)
    return reply.json()["token"]


def camera_status(base: str, token: str, camera: str = "default") -> dict:
    """GET /api/cameras/{camera}/ with the token: the worker's status incl. viewers, process."""
    reply = http("GET", f"{base.rstrip('/')}/api/cameras/{camera}/",
                 headers={"Authorization": f"Bearer {token}"})
    assert reply.status == 200, (reply.status, reply.body)
    return reply.json()


def create_event_rule(base: str, token: str, **rule: object) -> dict:
    """POST /api/event-rules/ with the token (201 asserted): the rule as the API shows it."""
    reply = http("POST", f"{base.rstrip('/')}/api/event-rules/", json.dumps(rule).encode(),
                 {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert reply.status == 201, (reply.status, reply.body)
    return reply.json()


def viewers(base: str, token: str, camera: str = "default") -> dict:
    """The worker's viewer figures: {count, max, rejected_full, sessions: [...]}."""
    return camera_status(base, token, camera)["viewers"]


def wait_live(base: str, token: str, *, width: int | None = None, timeout: float = 30) -> dict:
    """The camera's status once the worker reads frames (at `width`, if given)."""

    def live() -> dict | None:
        body = camera_status(base, token)
        ok = body.get("live") and body.get("width") and (width is None or body["width"] == width)
        return body if ok else None

    return wait_for(live, timeout, f"the camera to go live at width {width}", interval=0.2)


# --- a site for a test module --------------------------------------------------------


def camera_mark(site) -> tuple[float, int]:
    """(time.monotonic(), frames the worker has read from the camera so far).

    Two marks give the camera's own frame rate over a window; a viewer's rate is judged
    against it, not against a fixed 30: on a loaded machine the simulator itself may
    fall behind, and that is not the fan-out's fault."""
    frames = site.status()["reader"]["frames_read"]
    return time.monotonic(), frames


def camera_fps(first: tuple[float, int], last: tuple[float, int]) -> float:
    return (last[1] - first[1]) / (last[0] - first[0])


# Each viewer gets at least this share of the frames the camera sent in the same window.
MIN_SHARE = 0.85


@dataclass
class Site:
    env: dict[str, str]
    base: str
    token: str
    username: str
    password: str
    proc: Proc
    logs: Path

    def viewers(self) -> dict:
        return viewers(self.base, self.token)

    def status(self) -> dict:
        return camera_status(self.base, self.token)


@contextlib.contextmanager
def running_site(env: dict[str, str], logs: Path, *, plain_daphne: bool = False,
                 migrate: bool = True) -> Iterator[Site]:
    """Migrate, create the admin, start the site, get an API token; stop the site after."""
    username, password = install(env) if migrate else create_admin(env)
    port = pick_free_port()
    proc = start_site(env, port, logs, plain_daphne=plain_daphne)
    try:
        base = f"http://127.0.0.1:{port}"
        yield Site(env, base, get_token(base, username, password), username, password, proc,
                   logs)
    finally:
        proc.stop()


@contextlib.contextmanager
def simulated_camera(site: Site, *sim_args: str, width: int = 320) -> Iterator[Proc]:
    """The simulator writing `site`'s segments (default 300 kbit/s) until the block ends,
    with the camera live at the site first; its segments unlinked afterwards."""
    sim = start_simulator(site.env, site.logs, *(sim_args or ("--bitrate", "300")))
    try:
        wait_live(site.base, site.token, width=width)
        yield sim
    finally:
        sim.stop()
        shm_segment.unlink(site.env["PETCAM_SHM_STREAM"])
        shm_segment.unlink(site.env["PETCAM_SHM_DETECTIONS"])


class LoopThread:
    """An asyncio loop in a thread: WebRTC clients that live across synchronous tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="webrtc-clients",
                                        daemon=True)
        self._thread.start()

    def run(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


# --- capture ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    arrival: float  # time.monotonic() when aiortc finished reassembling it
    rtp_ts: int  # 90 kHz; aiortc maps the first frame's timestamp to 0
    data: bytes  # Annex-B as aiortc's depayloader writes it (4-byte start codes)


class CaptureQueue(queue.Queue):
    """Stands in for RTCRtpReceiver's decoder queue: keeps frames, decodes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Frame] = []

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        if item is None:  # the end marker stops aiortc's decoder thread
            super().put(None, block, timeout)
            return
        _codec, encoded = item
        self.frames.append(Frame(time.monotonic(), encoded.timestamp, bytes(encoded.data)))


class SignalingError(Exception):
    """The server refused the offer: `status` and the parsed `body` (JSON or text)."""

    def __init__(self, reply: HttpReply) -> None:
        try:
            body: object = reply.json()
        except ValueError:
            body = reply.body.decode(errors="replace")
        super().__init__(f"offer refused: {reply.status} {body}")
        self.status = reply.status
        self.body = body
        self.reply = reply


# --- the client ------------------------------------------------------------------------


class WebRtcClient:
    """One viewer. `signaling`: "json" (/api/cameras/{camera}/webrtc/offer/), "whep" or "seed".

    Build it inside a coroutine (aiortc's peer connection wants a current event loop).
    """

    def __init__(self, base: str, token: str | None, *, camera: str = "default",
                 signaling: str = "json", name: str = "", auth_scheme: str = "Bearer",
                 configuration: RTCConfiguration | None = None) -> None:
        if signaling not in ("json", "whep", "seed"):
            raise ValueError(f"unknown signaling {signaling!r}")
        self.base = base.rstrip("/")
        self.token = token
        self.auth_scheme = auth_scheme  # "Bearer" (WHEP, RFC 9725) or "Token" (DRF style)
        self.camera = camera
        self.signaling = signaling
        self.name = name
        self.pc = RTCPeerConnection(configuration)  # e.g. TURN only (test_turn_relay.py)
        self.pc.addTransceiver("video", direction="recvonly")
        self.capture = CaptureQueue()
        self.session: str | None = None
        self.location: str | None = None  # WHEP resource URL (path)
        self.answer_sdp: str | None = None
        self.offer_reply: HttpReply | None = None
        self.offer_sent_at: float | None = None
        self.answered_at: float | None = None
        self.connected_at: float | None = None
        self.stalled = False
        self.killed = False
        self.closed = False
        self._connected = asyncio.Event()
        self.pc.on("connectionstatechange", self._on_state)

    def __repr__(self) -> str:
        return f"<WebRtcClient {self.name or self.session} {self.pc.connectionState}>"

    async def _on_state(self) -> None:
        if self.pc.connectionState == "connected":
            self.connected_at = time.monotonic()
            self._connected.set()

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"{self.auth_scheme} {self.token}"} if self.token else {}

    async def create_offer(self) -> str:
        """The local offer SDP (ICE candidates gathered; aiortc does not trickle)."""
        if self.pc.localDescription is None:
            await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def send_offer(self, sdp: str) -> HttpReply:
        """POST `sdp` the way `signaling` says; the raw reply."""
        if self.signaling == "whep":
            url = f"{self.base}/whep/{self.camera}"
            body = sdp.encode()
            headers = {"Content-Type": "application/sdp", **self._auth()}
        else:
            if self.signaling == "json":
                url = f"{self.base}/api/cameras/{self.camera}/webrtc/offer/"
            else:
                url = f"{self.base}/api/webrtc/offer"
            body = json.dumps({"type": "offer", "sdp": sdp}).encode()
            headers = {"Content-Type": "application/json", **self._auth()}
        self.offer_sent_at = time.monotonic()
        return await asyncio.to_thread(http, "POST", url, body, headers)

    async def connect(self, *, sdp_transform=None, wait_connected: bool = True,
                      timeout: float = 20) -> WebRtcClient:
        """Offer, take the answer, start receiving. Raises SignalingError if refused."""
        sdp = await self.create_offer()
        if sdp_transform is not None:
            sdp = sdp_transform(sdp)
        reply = self.offer_reply = await self.send_offer(sdp)
        if reply.status not in (200, 201):
            raise SignalingError(reply)
        self.answered_at = time.monotonic()
        if self.signaling == "whep":
            self.answer_sdp = reply.body.decode()
            self.location = reply.header("Location")
            self.session = self.location.rstrip("/").rsplit("/", 1)[-1] if self.location else None
        else:
            answer = reply.json()
            assert answer["type"] == "answer", answer
            self.answer_sdp = answer["sdp"]
            self.session = answer.get("session")
        # Before setRemoteDescription: that starts the receiver and its decoder thread.
        receiver = self.pc.getReceivers()[0]
        receiver._RTCRtpReceiver__decoder_queue = self.capture
        await self.pc.setRemoteDescription(RTCSessionDescription(self.answer_sdp, "answer"))
        if wait_connected:
            await asyncio.wait_for(self._connected.wait(), timeout)
        return self

    # --- what arrived ------------------------------------------------------------------

    @property
    def frames(self) -> list[Frame]:
        return self.capture.frames

    async def wait_frames(self, n: int, timeout: float = 10) -> list[Frame]:
        """At least n frames, or AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.frames) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self!r}: {len(self.frames)} frames after {timeout}s, "
                                     f"wanted {n}")
            await asyncio.sleep(0.02)
        return self.frames

    def frames_between(self, start: float, end: float) -> list[Frame]:
        return [f for f in self.frames if start <= f.arrival < end]

    def fps(self, start: float, end: float) -> float:
        """Frames per second that arrived in [start, end) (time.monotonic() values)."""
        return len(self.frames_between(start, end)) / (end - start)

    @property
    def first_frame_latency(self) -> float | None:
        """Seconds from sending the offer to the first complete access unit."""
        if not self.frames or self.offer_sent_at is None:
            return None
        return self.frames[0].arrival - self.offer_sent_at

    # --- misbehaving ---------------------------------------------------------------------

    def _protocols(self) -> list:
        """The aioice StunProtocols (one per local candidate) under this peer connection."""
        protocols = []
        for transceiver in self.pc.getTransceivers():
            dtls = transceiver.receiver.transport
            if dtls is None:
                continue
            protocols += list(dtls.transport._connection._protocols)
        return protocols

    def stall(self) -> None:
        """Stop consuming: the socket stays open, nothing is read or sent (no RTCP, no STUN)."""
        self.stalled = True
        for protocol in self._protocols():
            _mute(protocol)
            protocol.transport.pause_reading()

    def kill_socket(self) -> None:
        """Close the UDP sockets abruptly: no RTCP BYE, no DTLS close_notify, nothing."""
        self.killed = True
        for protocol in self._protocols():
            _mute(protocol)  # whatever aiortc or aioice try next goes nowhere
            protocol.transport.abort()

    # --- leaving ---------------------------------------------------------------------------

    async def delete_session(self) -> HttpReply:
        """End the session on the server (DELETE on the session / WHEP resource)."""
        if self.signaling == "whep":
            url = self.base + (self.location or "")
        else:
            url = f"{self.base}/api/cameras/{self.camera}/webrtc/{self.session}/"
        return await asyncio.to_thread(http, "DELETE", url, None, self._auth())

    async def close(self, *, delete: bool = True) -> HttpReply | None:
        """DELETE the session (if asked and it has one), then close the peer connection."""
        if self.closed:
            return None
        self.closed = True
        reply = None
        if delete and self.session and not self.killed:
            reply = await self.delete_session()
        await self.pc.close()
        return reply

    async def __aenter__(self) -> WebRtcClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


def _mute(protocol) -> None:
    """Make an aioice StunProtocol send nothing: no media, RTCP, DTLS or STUN."""

    async def send_data(data: bytes, addr) -> None:
        return None

    def send_stun(message, addr) -> None:
        return None

    protocol.send_data = send_data
    protocol.send_stun = send_stun


async def close_all(clients: list[WebRtcClient], *, delete: bool = True) -> None:
    await asyncio.gather(*(c.close(delete=delete) for c in clients), return_exceptions=True)


# --- H.264 helpers for comparing access units ----------------------------------------------


def nal_units(au: bytes) -> list[bytes]:
    """The NAL units of an Annex-B access unit, start codes (3 or 4 bytes) and trailing zeros
    (trailing_zero_8bits, not part of a NAL unit) removed."""
    nals = []
    i = au.find(b"\0\0\1")
    while i != -1:
        start = i + 3
        nxt = au.find(b"\0\0\1", start)
        end = len(au) if nxt == -1 else nxt
        nal = au[start:end].rstrip(b"\0")
        if nal:
            nals.append(nal)
        i = nxt
    return nals


def nal_types(au: bytes) -> list[int]:
    return [nal[0] & 0x1F for nal in nal_units(au)]


def strip_video_codecs(sdp: str, keep: str) -> str:
    """The SDP with only the `keep` codec (e.g. "VP8") and its rtx in the video section."""
    lines = sdp.replace("\r\n", "\n").split("\n")
    pt_codec: dict[str, str] = {}
    apt: dict[str, str] = {}
    for line in lines:
        if line.startswith("a=rtpmap:"):
            pt, rest = line[len("a=rtpmap:"):].split(" ", 1)
            pt_codec[pt] = rest.split("/")[0].upper()
        elif line.startswith("a=fmtp:") and "apt=" in line:
            pt, rest = line[len("a=fmtp:"):].split(" ", 1)
            apt[pt] = rest.split("apt=")[1].split(";")[0]
    keep_pts = {pt for pt, c in pt_codec.items() if c == keep.upper()}
    keep_pts |= {pt for pt, a in apt.items() if a in keep_pts}
    out = []
    in_video = False
    for line in lines:
        if line.startswith("m="):
            in_video = line.startswith("m=video")
            if in_video:
                head = line.split(" ")[:3]
                pts = [p for p in line.split(" ")[3:] if p in keep_pts]
                line = " ".join(head + pts)
        elif in_video and line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")):
            pt = line.split(":", 1)[1].split(" ", 1)[0]
            if pt not in keep_pts:
                continue
        out.append(line)
    return "\r\n".join(out)


# --- viewers that never connect ---------------------------------------------------------------


class UdpBlackHole:
    """UDP sockets that take packets and never answer: what the ICE candidates of a viewer
    that never connects point at. `received()` counts what the server sent them."""

    def __init__(self, host: str = "127.0.0.1", count: int = 1) -> None:
        self.host = host
        self.sockets: list[socket.socket] = []
        for _ in range(count):
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                 socket.SOCK_DGRAM)
            sock.bind((host, 0))
            sock.setblocking(False)
            self.sockets.append(sock)
        self._received = 0

    def candidates(self) -> list[str]:
        return [f"a=candidate:{i} 1 udp 2122260223 {self.host} {s.getsockname()[1]} typ host"
                for i, s in enumerate(self.sockets, 1)]

    def received(self) -> int:
        """Datagrams that arrived so far (all sockets)."""
        for sock in self.sockets:
            while True:
                try:
                    sock.recv(2048)
                except BlockingIOError:
                    break
                self._received += 1
        return self._received

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def with_candidates(sdp: str, candidates: list[str], *, end: bool = False) -> str:
    """The offer with its own ICE candidates (and end-of-candidates) replaced by
    `candidates`. Without end-of-candidates the server keeps waiting for more, so the
    session stays "connecting" until the server's ICE deadline."""
    lines = [line for line in sdp.replace("\r\n", "\n").split("\n")
             if line and not line.startswith(("a=candidate:", "a=end-of-candidates"))]
    lines += candidates + (["a=end-of-candidates"] if end else [])
    return "\r\n".join(lines) + "\r\n"


async def dangling_offer(base: str, token: str, hole: UdpBlackHole, *,
                         camera: str = "default", name: str = "") -> WebRtcClient:
    """Send an offer whose candidates lead into `hole` and never take the answer: the
    server's session never connects. The reply is in `.offer_reply`, the session id (if
    answered) in `.session`; close() the client afterwards."""
    client = WebRtcClient(base, token, camera=camera, name=name or "dangling")
    sdp = with_candidates(await client.create_offer(), hole.candidates())
    reply = client.offer_reply = await client.send_offer(sdp)
    if reply.status == 200:
        client.session = reply.json()["session"]
    return client
