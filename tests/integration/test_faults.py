"""Faults in production mode, on real processes: Redis restarts, the database goes away,
the media worker is SIGKILLed. Each test says what the user sees and checks that
nothing is lost or leaked.

One stack for the module: daphne + a separate `manage.py media_worker`, a
SCRATCH redis-server on a free port (started and stopped here, never the
machine's 6379), a scratch PostgreSQL database reached through a TCP proxy in
this process (cutting the proxy is the database outage: new connections are
refused, open ones die), and the simulator. The camera's own rate comes from
the shared-memory segment's write_index, which needs neither Redis nor the
database.

Faults covered elsewhere (see README "Faults"): camera off at start and back
(test_site_live_status), segment recreated / writer reset / garbage and torn
slots (test_shm_reader, test_simulator, test_site_live_status), max viewers
(test_webrtc_viewers), dead and stalled viewers (test_webrtc_viewers), worker
killed before an offer (test_production_signaling), a full disk and a killed
worker mid-recording in depth (test_recording_api), recording start while
recording (test_recorder).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import signal
import socket
import struct
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis

from streaming.media.shm import segment as shm_segment
from tests.support.processes import (
    Proc,
    pick_free_port,
    site_env,
    start_simulator,
    start_worker,
    wait_for,
)
from tests.support.recordings import decode_file
from tests.support.services import scratch_postgres_database
from tests.support.webrtc_client import (
    MIN_SHARE,
    SignalingError,
    WebRtcClient,
    http,
    running_site,
    wait_live,
)

pytestmark = pytest.mark.production

GOP = 15
SIM_ARGS = ("--gop", str(GOP), "--encode", "live", "--bitrate", "600")


# --- the scratch services ------------------------------------------------------------------


class ScratchRedis:
    """A throw-away redis-server on its own port: stopping it hurts nobody else."""

    def __init__(self, logs: Path) -> None:
        self.port = pick_free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.logs = logs
        self.proc: Proc | None = None

    def start(self) -> None:
        self.proc = Proc("redis", ["redis-server", "--port", str(self.port), "--bind",
                                   "127.0.0.1", "--save", "", "--appendonly", "no"], {}, self.logs)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def pong() -> bool:
            assert self.proc.alive(), self.proc.log()
            with contextlib.suppress(redis.RedisError):
                return client.ping()
            return False

        wait_for(pong, 10, "the scratch redis-server")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


class TcpProxy:
    """127.0.0.1:port -> target port. cut(): the listener closes and every open connection
    is reset, as when the database host goes away; restore() listens again."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = pick_free_port()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()  # RST: the peer sees the connection die

    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut()
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=3)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.close()
            with self._lock:
                self._conns.discard(s)


def camera_index(env: dict[str, str]) -> tuple[float, int]:
    """(now, the simulator's write_index): the camera's own frame count, read from shm."""
    path = Path("/dev/shm") / env["PETCAM_SHM_STREAM"].lstrip("/")
    with open(path, "rb") as f:
        return time.monotonic(), struct.unpack("<I", f.read(4))[0]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make test installs it)")
    tmp = tmp_path_factory.mktemp("faults")
    logs = tmp / "logs"
    scratch = ScratchRedis(logs)
    scratch.start()
    with scratch_postgres_database("petcam_faults") as postgres_url:
        proxy = TcpProxy(5432)
        env = site_env(tmp, DATABASE_URL=postgres_url.replace(":5432/", f":{proxy.port}/"),
                       REDIS_URL=scratch.url,
                       PETCAM_CHANNEL_PREFIX=f"petcam-faults-{uuid.uuid4().hex[:6]}",
                       DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
                       PETCAM_SIGNALING_TIMEOUT="5", PETCAM_HEALTH_TIMEOUT="1",
                       PETCAM_METRICS_TIMEOUT="1", PETCAM_ICE_TIMEOUT="5",
                       PETCAM_PEER_SILENCE_TIMEOUT="5",
                       PETCAM_RECORDING_CHECKPOINT_SECONDS="1")
        try:
            with running_site(env, logs, plain_daphne=True) as site:
                site.worker = start_worker(env, logs)
                site.redis, site.proxy, site.media = scratch, proxy, tmp / "var" / "media"
                sim = start_simulator(env, logs, *SIM_ARGS)
                try:
                    wait_live(site.base, site.token, width=320)
                    yield site
                finally:
                    sim.stop()
                    site.worker.stop()
        finally:
            proxy.cut()
            scratch.stop()
            shm_segment.unlink(env["PETCAM_SHM_STREAM"])
            shm_segment.unlink(env["PETCAM_SHM_DETECTIONS"])


# --- helpers -------------------------------------------------------------------------------


def api(site, method: str, path: str, body: bytes | None = None):
    reply = http(method, site.base + path, body, {"Authorization": f"Bearer {site.token}",
                                                  "Content-Type": "application/json"})
    return reply.status, reply.json() if reply.body else {}


def health(site) -> tuple[int, dict]:
    reply = http("GET", site.base + "/health")
    return reply.status, reply.json()


async def watch(site, signaling: str = "json", *, retry_for: float = 0) -> WebRtcClient:
    """A viewer with frames arriving; re-offers (as the live page does) for `retry_for` s
    while the worker cannot answer (504/503)."""
    deadline = time.monotonic() + retry_for
    while True:
        client = WebRtcClient(site.base, site.token, signaling=signaling, name=signaling)
        try:
            await client.connect()
            await client.wait_frames(15)
            return client
        except SignalingError as exc:
            await client.close(delete=False)
            if exc.status not in (503, 504) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def rates(clients: list[WebRtcClient], first: tuple[float, int],
          last: tuple[float, int]) -> tuple[float, list[float]]:
    camera = (last[1] - first[1]) / (last[0] - first[0])
    return camera, [c.fps(first[0], last[0]) for c in clients]


async def no_viewers_left(site) -> None:
    await asyncio.to_thread(wait_for, lambda: site.viewers()["count"] == 0, 10,
                            "every viewer session gone")


# --- the faults ------------------------------------------------------------------------------


def test_redis_restart_while_viewers_watch(stack):
    """User: the video keeps playing while Redis is down (media goes worker -> browser
    directly); a new viewer or an API call meanwhile gets a clear 504, /health says 503;
    once Redis is back everything works again, with the same viewers."""
    site = stack

    async def run() -> None:
        clients = [await watch(site, "json"), await watch(site, "whep")]
        third = None
        try:
            await asyncio.to_thread(site.redis.stop)
            first = camera_index(site.env)
            status, body = await asyncio.to_thread(health, site)
            assert status == 503 and body["components"]["media_worker"]["status"] == "error"
            assert "channel layer" in body["components"]["media_worker"]["detail"] or \
                "did not answer" in body["components"]["media_worker"]["detail"], body
            with pytest.raises(SignalingError) as refused:
                await watch(site)
            assert refused.value.status == 504
            assert refused.value.body["error"] == "worker_timeout", refused.value.body
            await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - first[0])))
            last = camera_index(site.env)
            camera, fps = rates(clients, first, last)
            assert camera > 5 and min(fps) >= MIN_SHARE * camera, (camera, fps)

            await asyncio.to_thread(site.redis.start)
            third = await watch(site, retry_for=20)
            # A retried offer that the web tier gave up on (504) just as Redis came back
            # may still have reached the worker: that session never completes ICE and
            # the watchdog removes it after PETCAM_ICE_TIMEOUT (5 s here).
            status = await asyncio.to_thread(
                wait_for, lambda: (s := site.status())["viewers"]["count"] == 3 and s, 10,
                "only the three real viewers left")
            assert {s["session"] for s in status["viewers"]["sessions"]} == {
                c.session for c in [*clients, third]}
            assert all(s["dropped"] == 0 for s in status["viewers"]["sessions"])
            await asyncio.to_thread(wait_for, lambda: health(site)[0] == 200, 10,
                                    "/health ok again")
            assert site.worker.alive()
            # The operator reads one warning for the outage and one line when it ended,
            # not a traceback a second.
            log = site.worker.log()
            assert log.count("channel layer unreachable") == 1, log[-3000:]
            assert "channel layer back after" in log
        finally:
            for client in [*clients, third]:
                if client is not None:
                    await client.close()
        await no_viewers_left(site)

    asyncio.run(run())


def test_database_unavailable_for_a_few_seconds(stack):
    """User: the video keeps playing and the recording keeps recording; the API answers
    503 database_unavailable instead of a crash page; afterwards it all works again and
    the recording is complete with every frame."""
    site = stack

    async def run() -> None:
        viewer = await watch(site)
        try:
            status, started = await asyncio.to_thread(
                api, site, "POST", "/api/cameras/default/recording/start/", b'{"name": "db"}')
            assert status == 201, started
            await asyncio.sleep(1)
            site.proxy.cut()
            first = camera_index(site.env)
            status, body = await asyncio.to_thread(health, site)
            assert status == 503 and body["components"]["database"]["status"] == "error"
            assert body["components"]["media_worker"]["status"] == "ok"
            status, body = await asyncio.to_thread(api, site, "GET", "/api/recordings/")
            assert status == 503 and body["error"] == "database_unavailable", body
            await asyncio.sleep(max(0.0, 4.0 - (time.monotonic() - first[0])))
            last = camera_index(site.env)
            camera, fps = rates([viewer], first, last)
            assert min(fps) >= MIN_SHARE * camera, (camera, fps)
            site.proxy.restore()

            await asyncio.to_thread(wait_for, lambda: health(site)[0] == 200, 15,
                                    "/health ok again")
            status, live = await asyncio.to_thread(api, site, "GET",
                                                   "/api/cameras/default/recording/")
            assert status == 200 and live["recording"], live
            status, done = await asyncio.to_thread(
                api, site, "POST", "/api/cameras/default/recording/stop/", b"{}")
            assert status == 200 and done["status"] == "complete", done
            assert done["dropped_frames"] == 0 and done["gaps"] == 0, done
            # The row saved after the outage matches the file, frame for frame.
            status, row = await asyncio.to_thread(api, site, "GET",
                                                  f"/api/recordings/{started['id']}/")
            assert status == 200 and row["frame_count"] == done["frame_count"] > 4 * 30 * 0.8
            frames, errors, packets = await asyncio.to_thread(
                decode_file, site.media / done["file"])
            assert errors == [] and packets[0].is_keyframe
            assert len(frames) == done["frame_count"]
            # Checkpoints failed every second during the outage: one folded warning.
            assert site.worker.log().count("checkpoint of recording") == 1
        finally:
            await viewer.close()
        await no_viewers_left(site)

    asyncio.run(run())


def test_worker_killed_and_restarted(stack):
    """User: the picture freezes; the page re-offers and gets 504 until the new worker is
    up, then plays again; the recording that was running is listed as interrupted and
    plays up to its last complete fragment. /metrics says petcam_worker_up 0 meanwhile."""
    site = stack

    async def run() -> None:
        viewer = await watch(site)
        fresh = None
        try:
            status, started = await asyncio.to_thread(
                api, site, "POST", "/api/cameras/default/recording/start/", b'{"name": "kill"}')
            assert status == 201, started
            await asyncio.sleep(1.5)  # three GOPs: fragments on disk
            site.worker.stop(signal.SIGKILL)
            frozen = len(viewer.frames)
            metrics = await asyncio.to_thread(http, "GET", site.base + "/metrics")
            assert 'petcam_worker_up{camera="default"} 0.0' in metrics.body.decode()
            assert len(viewer.frames) <= frozen + 2  # nothing arrives from a dead worker
            await viewer.close(delete=False)

            site.worker = await asyncio.to_thread(start_worker, site.env, site.logs)
            fresh = await watch(site, retry_for=30)

            def recovered() -> dict | None:
                status, row = api(site, "GET", f"/api/recordings/{started['id']}/")
                return row if status == 200 and row["status"] != "recording" else None

            row = await asyncio.to_thread(wait_for, recovered, 15, "the interrupted row")
            assert row["status"] == "interrupted", row
            frames, errors, packets = await asyncio.to_thread(
                decode_file, site.media / row["file"])
            assert errors == [] and packets[0].is_keyframe
            assert len(frames) == row["frame_count"] >= 2 * GOP
            status = await asyncio.to_thread(site.status)
            assert status["process"]["pid"] == site.worker.popen.pid
            assert [s["session"] for s in status["viewers"]["sessions"]] == [fresh.session]
        finally:
            await viewer.close(delete=False)
            if fresh is not None:
                await fresh.close()
        await no_viewers_left(site)

    asyncio.run(run())
