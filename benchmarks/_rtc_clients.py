"""Receive-only aiortc viewers that count frames without decoding, in their own processes.

Each viewer is a real RTCPeerConnection (ICE, DTLS, SRTP, RTCP receiver
reports, NACK/PLI, jitter buffer and H.264 depacketization), but the
receiver's decoder queue is replaced by a counter, so a viewer costs a
fraction of a decoding one and 30 of them fit next to the server on a small
machine. `ClientPool` spreads viewers over a few processes and talks to them
over pipes; each process reports its own CPU time so a saturated client side
is visible in the figures rather than mistaken for a slow server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing as mp
import queue
import time

from benchmarks._harness import http_json

SIGNALING_TIMEOUT = 20.0
CONNECT_TIMEOUT = 20.0
RCVBUF = 4 * 2**20  # capped by net.core.rmem_max


class CaptureQueue(queue.Queue):
    """Stands in for the receiver's decoder queue: counts assembled frames and bytes."""

    def __init__(self, t_offer: float) -> None:
        super().__init__()
        self.count = 0
        self.bytes = 0
        self.t_offer = t_offer
        self.first_at: float | None = None

    def put(self, item, *args, **kwargs):
        if item is None:  # the receiver stopping its decoder thread
            return super().put(None)
        _codec, encoded_frame = item
        if self.first_at is None:
            self.first_at = time.monotonic()
        self.count += 1
        self.bytes += len(encoded_frame.data)
        return None


class ChromeLikeRemb:
    """Stands in for aiortc's receive-side bandwidth estimator: one REMB a second.

    aiortc's estimator sends a REMB on *every* packet while it sees queuing
    delay grow, which a Python client on a busy CPU always does: hundreds of
    RTCP packets a second per viewer that a browser would never send, all of
    which the server must decrypt and parse. Browsers send feedback about once
    a second; so does this. petcam ignores REMB anyway (passthrough has no
    bitrate to steer); the re-encoding baseline gets a fixed 3 Mbit/s, aiortc's cap.
    """

    def __init__(self) -> None:
        self.last_ms = None

    def add(self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int):
        if self.last_ms is None or arrival_time_ms - self.last_ms >= 1000:
            self.last_ms = arrival_time_ms
            return 3_000_000, [ssrc]
        return None


class Viewer:
    def __init__(self) -> None:
        self.pc = None
        self.capture: CaptureQueue | None = None
        self.session: str | None = None
        self.error: str | None = None
        self.connect_ms: float | None = None

    def snapshot(self) -> dict:
        c = self.capture
        return {
            "session": self.session,
            "state": self.pc.connectionState if self.pc else "none",
            "frames": c.count if c else 0,
            "bytes": c.bytes if c else 0,
            "first_frame_ms": (round((c.first_at - c.t_offer) * 1000, 1)
                               if c and c.first_at else None),
            "error": self.error,
        }


# --- signaling -------------------------------------------------------------------------

def _http_json(method: str, url: str, token: str, body: dict | None) -> tuple[int, dict]:
    return http_json(method, url, token, body, SIGNALING_TIMEOUT)


async def _offer_http(signaling: dict, sdp: str) -> dict:
    code, body = await asyncio.to_thread(
        _http_json, "POST", signaling["base"] + "/api/cameras/default/webrtc/offer/",
        signaling["token"], {"type": "offer", "sdp": sdp})
    if code != 200:
        raise RuntimeError(f"offer -> HTTP {code}: {body}")
    return body


async def _close_http(signaling: dict, session: str) -> None:
    await asyncio.to_thread(_http_json, "DELETE",
                            signaling["base"] + f"/api/cameras/default/webrtc/{session}/",
                            signaling["token"], None)


async def _offer_tcp(signaling: dict, sdp: str) -> dict:
    reader, writer = await asyncio.open_connection("127.0.0.1", signaling["port"])
    try:
        writer.write(json.dumps({"op": "offer", "sdp": sdp}).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), SIGNALING_TIMEOUT)
    finally:
        writer.close()
    body = json.loads(line)
    if "error" in body:
        raise RuntimeError(f"offer -> {body['error']}")
    return body


# --- one client process ----------------------------------------------------------------

async def open_viewer(signaling: dict) -> Viewer:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    viewer = Viewer()
    try:
        pc = viewer.pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        t_offer = time.monotonic()
        offer = _offer_http if signaling["kind"] == "http" else _offer_tcp
        answer = await offer(signaling, pc.localDescription.sdp)
        viewer.session = answer.get("session")
        viewer.capture = CaptureQueue(t_offer)
        pc.getReceivers()[0]._RTCRtpReceiver__decoder_queue = viewer.capture
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while pc.connectionState != "connected":
            if pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
                raise RuntimeError(f"connection {pc.connectionState}")
            await asyncio.sleep(0.05)
        viewer.connect_ms = round((time.monotonic() - t_offer) * 1000, 1)
    except Exception as exc:
        viewer.error = f"{type(exc).__name__}: {exc}"
    return viewer


async def _close_viewer(viewer: Viewer, signaling: dict) -> None:
    if viewer.pc is not None:
        await viewer.pc.close()
    if viewer.session and signaling["kind"] == "http":
        try:
            await _close_http(signaling, viewer.session)
        except Exception:
            pass


async def _client_main(conn, signaling: dict) -> None:
    loop = asyncio.get_running_loop()
    viewers: list[Viewer] = []
    while True:
        cmd, arg = await loop.run_in_executor(None, conn.recv)
        if cmd == "connect":
            n, concurrency = arg
            gate = asyncio.Semaphore(concurrency)

            async def one(gate=gate) -> Viewer:
                async with gate:
                    return await open_viewer(signaling)
            new = await asyncio.gather(*(one() for _ in range(n)))
            viewers.extend(new)
            conn.send([{"session": v.session, "connect_ms": v.connect_ms, "error": v.error}
                       for v in new])
        elif cmd == "snapshot":
            conn.send({"t": time.monotonic(), "cpu_s": time.process_time(),
                       "plis": PLI_COUNT[0], "viewers": [v.snapshot() for v in viewers]})
        elif cmd == "close":
            await asyncio.gather(*(_close_viewer(v, signaling) for v in viewers),
                                 return_exceptions=True)
            viewers.clear()
            conn.send("closed")
        elif cmd == "exit":
            await asyncio.gather(*(_close_viewer(v, signaling) for v in viewers),
                                 return_exceptions=True)
            conn.send("bye")
            return


PLI_COUNT = [0]


def client_process(conn, signaling: dict, send_pli: bool = True) -> None:
    import aioice.turn
    import aiortc.rtcrtpreceiver

    logging.basicConfig(level=logging.ERROR)
    # aioice asks for 256 KB; a Python client sharing a busy CPU needs more slack so a
    # catch-up burst is not lost in the kernel (loss -> PLI -> a GOP replay -> more loss).
    aioice.turn.UDP_SOCKET_BUFFER_SIZE = RCVBUF
    aiortc.rtcrtpreceiver.RemoteBitrateEstimator = ChromeLikeRemb
    receiver = aiortc.rtcrtpreceiver.RTCRtpReceiver
    send = receiver._send_rtcp_pli

    async def counted_pli(self, media_ssrc: int) -> None:
        # aiortc sends a PLI when its jitter buffer gives up on a gap (loss, or a
        # retransmission arriving > 100 packets late); with send_pli=False it is
        # only counted, to see the server without its keyframe-request path.
        PLI_COUNT[0] += 1
        if send_pli:
            await send(self, media_ssrc)

    receiver._send_rtcp_pli = counted_pli
    asyncio.run(_client_main(conn, signaling))


# --- the pool, driven from the benchmark process ------------------------------------------

class ClientPool:
    """`processes` client processes; viewers are spread over them round-robin."""

    def __init__(self, signaling: dict, processes: int = 2, send_pli: bool = True) -> None:
        ctx = mp.get_context("spawn")
        self.signaling = signaling
        self.procs = []
        self.conns = []
        self._next = 0
        for _ in range(processes):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=client_process, args=(child, signaling, send_pli),
                            daemon=True)
            p.start()
            self.procs.append(p)
            self.conns.append(parent)

    def _ask_all(self, cmd: str, arg=None, timeout: float = 120) -> list:
        for c in self.conns:
            c.send((cmd, arg))
        return [self._recv(c, timeout) for c in self.conns]

    @staticmethod
    def _recv(conn, timeout: float):
        if not conn.poll(timeout):
            raise RuntimeError("a client process did not answer")
        return conn.recv()

    def connect(self, n: int, concurrency: int = 4) -> list[dict]:
        """Open n more viewers; returns one dict per viewer (session, connect_ms, error)."""
        per = [0] * len(self.conns)
        for _ in range(n):
            per[self._next % len(per)] += 1
            self._next += 1
        busy = []
        for c, k in zip(self.conns, per, strict=True):
            if k:
                c.send(("connect", (k, concurrency)))
                busy.append(c)
        out = []
        for c in busy:
            out.extend(self._recv(c, CONNECT_TIMEOUT * (n // concurrency + 2) + 30))
        return out

    def connect_in(self, index: int, n: int, concurrency: int = 4) -> list[dict]:
        """Open n viewers in client process `index` only."""
        self.conns[index].send(("connect", (n, concurrency)))
        return self._recv(self.conns[index], CONNECT_TIMEOUT * (n // concurrency + 2) + 30)

    def kill(self, index: int) -> None:
        """SIGKILL one client process: its viewers vanish without a word (a phone that
        lost its network, a crashed tab); only the server's timeouts can notice."""
        self.procs[index].kill()
        self.procs[index].join(5)
        del self.procs[index]
        del self.conns[index]

    def snapshot(self) -> dict:
        """All viewers' counters plus each process's (t, cpu_s)."""
        parts = self._ask_all("snapshot")
        return {"procs": [{"t": p["t"], "cpu_s": p["cpu_s"], "plis": p["plis"]} for p in parts],
                "viewers": [v for p in parts for v in p["viewers"]]}

    def close_viewers(self) -> None:
        self._ask_all("close")
        self._next = 0

    def shutdown(self) -> None:
        for c in self.conns:
            try:
                c.send(("exit", None))
                self._recv(c, 20)
            except Exception:
                pass
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
                p.join(5)


def window(before: dict, after: dict) -> dict:
    """Per-viewer frames/s and client CPU between two snapshots (viewers matched by session)."""
    old = {v["session"]: v for v in before["viewers"]}
    dt = max(a["t"] - b["t"] for a, b in zip(after["procs"], before["procs"], strict=True))
    cpu = sum(a["cpu_s"] - b["cpu_s"] for a, b in zip(after["procs"], before["procs"],
                                                      strict=True))
    rows = []
    for v in after["viewers"]:
        b = old.get(v["session"])
        if b is None or v["error"]:
            continue
        rows.append({"session": v["session"], "state": v["state"],
                     "frames": v["frames"] - b["frames"], "bytes": v["bytes"] - b["bytes"],
                     "fps": (v["frames"] - b["frames"]) / dt,
                     "first_frame_ms": v["first_frame_ms"]})
    plis = sum(a["plis"] - b["plis"] for a, b in zip(after["procs"], before["procs"],
                                                     strict=True))
    return {"dt": dt, "client_cpu_pct": 100 * cpu / dt, "client_plis": plis, "viewers": rows}
