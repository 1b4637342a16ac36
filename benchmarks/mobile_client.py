"""A mobile app's session against petcam's REST API, end to end, with a short report.

What a phone app does, over plain HTTP with a token (nothing here uses the site's code):
  1. POST /api/auth/token/ with username + password -> token
  2. GET  /api/cameras/ -> cameras with live status; picks --camera (or the first live one)
  3. GET  /api/webrtc/ice-servers/ -> STUN/TURN servers (TURN with a short-lived credential)
     for the peer connection; --relay uses only the TURN relay (iceTransportPolicy relay)
  4. POST /api/cameras/{camera}/webrtc/offer/ -> aiortc peer, decodes --frames frames
     (H.264, like the phone's decoder), then DELETE the session
  5. --record SECONDS: start and stop a recording (recording control)
  6. GET  /api/recordings/?camera=&status=complete -> downloads the newest one and checks
     it with PyAV (container, codec, size, frames decoded)

Run against a running site (`make run`):
  .venv/bin/python -m benchmarks.mobile_client --url http://127.0.0.1:8000 \
      --username admin --password '...' [--camera default] [--frames 60] [--record 3]
Prints a table and, last, one JSON line. Exit status 1 when a step fails.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import av
from aioice import stun, turn
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcicetransport import parse_stun_turn_uri


class StepFailed(Exception):
    pass


@dataclass
class Api:
    base: str
    token: str = ""
    timeout: float = 20.0

    def call(self, method: str, path: str, body: dict | None = None,
             expect: tuple[int, ...] = (200,)) -> tuple[int, dict[str, str], bytes]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, head, payload = resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            status, head, payload = err.code, dict(err.headers), err.read()
        if status not in expect:
            raise StepFailed(f"{method} {path}: HTTP {status} {payload[:300]!r}")
        return status, head, payload

    def json(self, method: str, path: str, body: dict | None = None,
             expect: tuple[int, ...] = (200,)) -> dict:
        return json.loads(self.call(method, path, body, expect)[2])


@dataclass
class Report:
    steps: list[tuple[str, float, str]] = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    ok: bool = True

    def step(self, name: str, started: float, detail: str) -> None:
        self.steps.append((name, (time.monotonic() - started) * 1000, detail))

    def print(self) -> None:
        width = max(len(s[0]) for s in self.steps) if self.steps else 10
        print(f"{'step':<{width}}  {'ms':>8}  result")
        for name, ms, detail in self.steps:
            print(f"{name:<{width}}  {ms:8.1f}  {detail}")
        print(json.dumps({"ok": self.ok, **self.figures}, sort_keys=True))


def rtc_configuration(ice: dict, relay: bool) -> RTCConfiguration:
    """The peer connection's configuration from GET /api/webrtc/ice-servers/."""
    policy = "relay" if relay else ice.get("iceTransportPolicy", "all")
    return RTCConfiguration(iceServers=[RTCIceServer(**s) for s in ice["iceServers"]],
                            iceTransportPolicy=RTCIceTransportPolicy(policy))


async def turn_refusal(config: RTCConfiguration) -> str:
    """Why the TURN server gave no relay address: an allocation of our own says it (aioice
    drops the error). Only the first TURN URL counts, as aiortc uses only that one."""
    for server in config.iceServers or []:
        for url in server.urls if isinstance(server.urls, list) else [server.urls]:
            if not url.startswith(("turn:", "turns:")):
                continue
            where = parse_stun_turn_uri(url)
            try:
                transport, _ = await turn.create_turn_endpoint(
                    asyncio.DatagramProtocol, server_addr=(where["host"], where["port"]),
                    username=server.username, password=server.credential, lifetime=60,
                    ssl=where["scheme"] == "turns", transport=where["transport"])
            except stun.TransactionFailed as exc:
                code, reason = exc.response.attributes.get("ERROR-CODE", (0, "error"))
                return f"{url} refused the credential: {code} {reason}"
            except (OSError, stun.TransactionTimeout) as exc:
                return f"{url} cannot be reached ({type(exc).__name__})"
            transport.close()
            return f"{url} accepts the credential now; try again"
    return "no turn: server in the ICE servers"


async def watch_live(api: Api, camera: str, frames: int, timeout: float,
                     config: RTCConfiguration | None = None) -> dict:
    """Offer, decode `frames` frames, end the session: the live figures."""
    pc = RTCPeerConnection(config)
    pc.addTransceiver("video", direction="recvonly")
    received: asyncio.Future = asyncio.get_running_loop().create_future()
    pc.on("track", lambda track: received.done() or received.set_result(track))
    session = None
    try:
        await pc.setLocalDescription(await pc.createOffer())
        relay = config is not None and config.iceTransportPolicy == RTCIceTransportPolicy.RELAY
        if relay and " typ relay" not in pc.localDescription.sdp:
            raise StepFailed(f"no TURN relay address: {await turn_refusal(config)}")
        t_offer = time.monotonic()
        answer = await asyncio.to_thread(
            api.json, "POST", f"/api/cameras/{camera}/webrtc/offer/",
            {"type": "offer", "sdp": pc.localDescription.sdp})
        session = answer["session"]
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        track = await asyncio.wait_for(received, timeout)
        first_at, sizes, pts, count = None, set(), [], 0
        deadline = time.monotonic() + timeout
        while count < frames:
            frame = await asyncio.wait_for(track.recv(), max(0.1, deadline - time.monotonic()))
            first_at = first_at or time.monotonic()
            sizes.add((frame.width, frame.height))
            pts.append(float(frame.pts * frame.time_base))
            count += 1
        # The server replays the current GOP first (faster than real time), so the
        # wall-clock rate says little: report how much video arrived, and in what time.
        return {"session": session, "frames": count,
                "first_frame_ms": round((first_at - t_offer) * 1000, 1),
                "video_seconds": round(max(pts) - min(pts), 3),
                "wall_seconds": round(time.monotonic() - first_at, 3),
                "sizes": sorted(f"{w}x{h}" for w, h in sizes)}
    finally:
        if session is not None:
            await asyncio.to_thread(api.call, "DELETE",
                                    f"/api/cameras/{camera}/webrtc/{session}/", None,
                                    (204, 404))
        await pc.close()


def check_video(data: bytes, fmt: str) -> dict:
    """Open the downloaded bytes with PyAV and decode every frame."""
    options = {"format": "h264"} if fmt == "h264" else {}
    with av.open(io.BytesIO(data), **options) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        ctx = stream.codec_context
        return {"codec": ctx.name, "width": ctx.width, "height": ctx.height,
                "decoded_frames": frames, "container": container.format.name}


def run(args: argparse.Namespace, report: Report) -> None:
    api = Api(args.url.rstrip("/"), timeout=args.timeout)

    t = time.monotonic()
    api.token = api.json("POST", "/api/auth/token/",
                         {"username": args.username, "password": args.password})["token"]
    report.step("token", t, "POST /api/auth/token/ -> token")

    t = time.monotonic()
    cameras = api.json("GET", "/api/cameras/")["results"]
    live = [c["camera"] for c in cameras if c.get("live")]
    camera = args.camera or (live[0] if live else cameras[0]["camera"] if cameras else "")
    if camera not in {c["camera"] for c in cameras}:
        raise StepFailed(f"camera {camera!r} not in {[c['camera'] for c in cameras]}")
    status = next(c for c in cameras if c["camera"] == camera)
    report.step("cameras", t, f"{len(cameras)} camera(s), {len(live)} live; using {camera!r} "
                f"({status.get('width')}x{status.get('height')}, {status.get('state')})")
    report.figures.update(cameras=[c["camera"] for c in cameras], camera=camera)

    t = time.monotonic()
    ice = api.json("GET", "/api/webrtc/ice-servers/")
    config = rtc_configuration(ice, args.relay)
    urls = [u for s in ice["iceServers"] for u in
            (s["urls"] if isinstance(s["urls"], list) else [s["urls"]])]
    turn_urls = [u for u in urls if u.startswith("turn")]
    report.step("ice", t, f"{len(ice['iceServers'])} server(s), TURN {turn_urls or 'none'}, "
                f"credentials for {ice['ttl']} s, policy {config.iceTransportPolicy.value}")

    t = time.monotonic()
    figures = asyncio.run(watch_live(api, camera, args.frames, args.timeout, config))
    report.step("live", t, f"{figures['frames']} frames decoded, first after "
                f"{figures['first_frame_ms']} ms, {figures['video_seconds']} s of video in "
                f"{figures['wall_seconds']} s, {figures['sizes']}")
    report.figures["live"] = figures

    if args.record > 0:
        t = time.monotonic()
        rec = api.json("POST", f"/api/cameras/{camera}/recording/start/",
                       {"name": "mobile client"}, expect=(201,))
        time.sleep(args.record)
        rec = api.json("POST", f"/api/cameras/{camera}/recording/stop/")
        report.step("record", t, f"recording {rec['id']}: {rec['frame_count']} frames, "
                    f"{rec['duration']} s, {rec['status']}")
        report.figures["recorded"] = rec["id"]

    t = time.monotonic()
    query = urllib.parse.urlencode({"camera": camera, "status": "complete", "limit": 5})
    page = api.json("GET", f"/api/recordings/?{query}")
    if not page["results"]:
        raise StepFailed(f"no complete recording of {camera!r} to download (try --record 3)")
    newest = page["results"][0]
    report.step("recordings", t, f"{page['count']} complete, newest {newest['id']} "
                f"({newest['format']}, {newest['duration']} s)")

    t = time.monotonic()
    _, headers, data = api.call("GET", newest["download_url"])
    if int(headers.get("Content-Length", len(data))) != len(data):
        raise StepFailed("download shorter than its Content-Length")
    video = check_video(data, newest["format"])
    if video["decoded_frames"] < 1:
        raise StepFailed(f"recording {newest['id']} decodes to no frames")
    report.step("download", t, f"{len(data)} bytes, {video['container']}/{video['codec']} "
                f"{video['width']}x{video['height']}, {video['decoded_frames']} frames decoded")
    report.figures["download"] = {"id": newest["id"], "bytes": len(data),
                                  "content_type": headers.get("Content-Type"), **video}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.mobile_client",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--username", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--camera", default="", help="camera slug (default: the first live one)")
    ap.add_argument("--frames", type=int, default=60, help="live frames to decode")
    ap.add_argument("--record", type=float, default=0.0,
                    help="record this many seconds before listing recordings (0: don't)")
    ap.add_argument("--relay", action="store_true",
                    help="watch only through the TURN relay (iceTransportPolicy relay)")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per step")
    args = ap.parse_args(argv)
    report = Report()
    try:
        run(args, report)
    except (StepFailed, OSError, TimeoutError, KeyError, ValueError, av.error.FFmpegError) as exc:
        report.ok = False
        report.steps.append(("FAILED", 0.0, f"{type(exc).__name__}: {exc}"))
        report.figures["error"] = str(exc)
    report.print()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
