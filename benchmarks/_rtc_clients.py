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
import os
import queue
import random
import re
import socket
import struct
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


RTP_HEAD = struct.Struct("!HI")  # sequence number, timestamp (bytes 2-7 of an RTP header)
SRTP_CHECK_EVERY = 64  # decrypt one RTP packet in this many: proof the counted ones are real
RR_INTERVAL = 1.0  # s between the lean viewer's receiver reports (servers' liveness check)
NACK_MAX = 512  # a longer gap is a stall, not loss worth asking again for (as Chrome)


class RtpCounter:
    """One viewer's RTP, counted off the socket without aiortc: no SRTP decryption (the
    header is clear text), no jitter buffer, no depacketizing, no NACK/PLI.

    A frame is the run of packets of one RTP timestamp ending in a marker bit; it is
    *complete* when its packets' sequence numbers are contiguous, follow the previous
    frame's marker packet, and end in its own marker. `bytes` is what follows the RTP
    header and its extensions (payload + SRTP tag). One packet in SRTP_CHECK_EVERY is
    decrypted with the session's keys: `srtp_failures` stays 0 for a real stream.
    With `send_nack`, each gap is asked for again at once with a generic NACK, as a
    browser does (retransmissions arrive as RTX and are counted as `other`).
    """

    def __init__(self, skip_pts: set[int]) -> None:
        self.skip_pts = skip_pts  # RTX payload types: counted apart as `other`
        self.packets = self.bytes = self.frames = self.complete = self.other = 0
        self.forwarded = self.late = self.srtp_checked = self.srtp_failures = 0
        self.nacked = 0  # sequence numbers asked for again
        self.send_nack = None  # (media ssrc, [missing sequence numbers]) -> None
        self.ssrc: int | None = None
        self.first_ext: int | None = None
        self.ext_max = 0  # highest extended sequence number
        self.last_seq = -1
        self.ts = -1
        self.last_marker = False
        self.ok = False
        self.first_at: float | None = None

    def snapshot(self) -> dict:
        return {"packets": self.packets, "bytes": self.bytes, "frames": self.frames,
                "complete": self.complete, "other": self.other, "forwarded": self.forwarded,
                "late": self.late, "ssrc": self.ssrc, "nacked": self.nacked,
                "expected": self.ext_max - self.first_ext + 1 if self.first_ext is not None
                else 0, "srtp_checked": self.srtp_checked,
                "srtp_failures": self.srtp_failures}


def install_rtp_counter(viewer: Viewer, remote_sdp: str, read_every: float = 0.0,
                        nack: bool = False) -> RtpCounter:
    """Take the viewer's ICE UDP sockets away from asyncio's one-datagram-per-wakeup
    reader: drain each in a loop; STUN, DTLS and RTCP go on to aioice as before, RTP is
    only counted. Its receiver reports come from `_report_loop`. Every socket of the
    connection, not only the pair this side nominated: the server may send on another.

    read_every > 0: drain the sockets only every `read_every` seconds instead of as
    datagrams arrive: a receiver that gets the CPU that often (a phone's busy network
    thread), so what its socket buffer must hold is what arrives in between."""
    pc = viewer.pc
    receiver = pc.getReceivers()[0]
    dtls = receiver.transport
    skip = {int(pt) for pt in re.findall(r"a=rtpmap:(\d+) rtx/", remote_sdp)}
    c = viewer.rtp = RtpCounter(skip)
    loop = asyncio.get_running_loop()
    if nack:
        own = _rtcp_ssrc(receiver)

        def send_nack(media_ssrc: int, missing: list[int]) -> None:
            c.nacked += len(missing)
            asyncio.ensure_future(dtls._send_rtp(generic_nack(own, media_ssrc, missing)))
        c.send_nack = send_nack
    drains: list = []
    for protocol in dtls.transport._connection._protocols:  # aioice keeps them private
        transport = getattr(protocol, "transport", None)
        if transport is None or transport.is_closing():
            continue
        fd = transport.get_extra_info("socket").fileno()
        sock = socket.socket(fileno=os.dup(fd))  # same socket; a Python object of our own
        viewer.socks.append(sock)
        loop._remove_reader(fd)  # asyncio's reader; the transport's close() removes ours
        drain = _drainer(c, sock, protocol.datagram_received, dtls)
        if read_every:
            drains.append(drain)
        else:
            loop._add_reader(fd, drain)
    viewer.rr_task = asyncio.ensure_future(_report_loop(viewer, dtls, receiver))
    if drains:
        viewer.tick_task = asyncio.ensure_future(_read_periodically(drains, read_every))
    return c


async def _read_periodically(drains: list, period: float) -> None:
    loop = asyncio.get_running_loop()
    due = loop.time()
    while True:
        due += period
        await asyncio.sleep(max(0.0, due - loop.time()))
        for drain in drains:
            drain(limit=1_000_000)  # all it holds: at most a socket buffer's worth


def _drainer(c: RtpCounter, sock: socket.socket, forward, dtls):
    buf = bytearray(2048)
    view = memoryview(buf)
    recv = sock.recvfrom_into
    head = RTP_HEAD.unpack_from

    def drain(limit: int = 256) -> None:
        for _ in range(limit):  # then let the other viewers' sockets have a turn
            try:
                n, addr = recv(buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            b0, b1 = buf[0], buf[1]
            if b0 & 0xC0 != 0x80 or 192 <= b1 <= 223:  # STUN, DTLS or RTCP (RFC 7983/5761)
                c.forwarded += 1
                forward(bytes(view[:n]), addr)
                continue
            if b1 & 0x7F in c.skip_pts:
                c.other += 1
                continue
            seq, ts = head(buf, 2)
            if c.first_ext is None:
                c.first_at = time.monotonic()
                c.ssrc = int.from_bytes(view[8:12], "big")
                c.first_ext = c.ext_max = seq
                gap = True
            else:
                d = (seq - c.last_seq) & 0xFFFF
                if d == 0 or d > 0x8000:  # duplicate or older: not new data
                    c.late += 1
                    continue
                c.ext_max += d
                gap = d != 1
                if gap and c.send_nack is not None and d <= NACK_MAX:
                    c.send_nack(c.ssrc, [(c.last_seq + i) & 0xFFFF for i in range(1, d)])
            c.last_seq = seq
            if ts != c.ts:
                c.ts = ts
                c.ok = not gap and c.last_marker
            elif gap:
                c.ok = False
            hl = 12 + 4 * (b0 & 0x0F)
            if b0 & 0x10:  # header extension
                hl += 4 + 4 * (buf[hl + 2] << 8 | buf[hl + 3])
            c.packets += 1
            c.bytes += n - hl
            c.last_marker = b1 & 0x80
            if c.last_marker:
                c.frames += 1
                if c.ok:
                    c.complete += 1
            if c.packets % SRTP_CHECK_EVERY == 0 and dtls._rx_srtp is not None:
                c.srtp_checked += 1
                try:
                    dtls._rx_srtp.unprotect(bytes(view[:n]))
                except Exception:
                    c.srtp_failures += 1
    return drain


def _rtcp_ssrc(receiver) -> int:
    return getattr(receiver, "_RTCRtpReceiver__rtcp_ssrc", None) or random.getrandbits(32)


def generic_nack(ssrc: int, media_ssrc: int, missing: list[int]) -> bytes:
    """RTCP generic NACK (RFC 4585 6.2.1): PID + a bitmask of the 16 after it, sequence
    numbers in order and modulo 2^16 (aiortc's own serializer breaks at the wrap)."""
    fci = b""
    i = 0
    while i < len(missing):
        pid, blp = missing[i], 0
        i += 1
        while i < len(missing) and 0 < (missing[i] - pid) & 0xFFFF <= 16:
            blp |= 1 << (((missing[i] - pid) & 0xFFFF) - 1)
            i += 1
        fci += struct.pack("!HH", pid, blp)
    body = struct.pack("!LL", ssrc, media_ssrc) + fci
    return struct.pack("!BBH", 0x80 | 1, 205, len(body) // 4) + body  # length: 32-bit words - 1


async def _report_loop(viewer: Viewer, dtls, receiver) -> None:
    """RTCP receiver reports about the counted stream, as a browser sends them: petcam
    drops a viewer that sends none (aiortc's own reports need RTP it never sees here)."""
    from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket

    own = _rtcp_ssrc(receiver)
    c = viewer.rtp
    last_expected = last_packets = 0
    while True:
        await asyncio.sleep(RR_INTERVAL)
        if c.ssrc is None:
            continue
        expected = c.ext_max - c.first_ext + 1
        lost = max(0, expected - c.packets)
        window_expected = expected - last_expected
        window_lost = max(0, window_expected - (c.packets - last_packets))
        fraction = min(255, (window_lost << 8) // window_expected) if window_expected else 0
        last_expected, last_packets = expected, c.packets
        report = RtcpReceiverInfo(ssrc=c.ssrc, fraction_lost=fraction,
                                  packets_lost=min(lost, 0x7FFFFF),
                                  highest_sequence=c.ext_max & 0xFFFFFFFF, jitter=0, lsr=0,
                                  dlsr=0)
        try:
            await dtls._send_rtp(bytes(RtcpRrPacket(ssrc=own, reports=[report])))
        except ConnectionError:
            return


class Viewer:
    def __init__(self) -> None:
        self.pc = None
        self.capture: CaptureQueue | None = None
        self.rtp: RtpCounter | None = None
        self.socks: list[socket.socket] = []
        self.rr_task: asyncio.Future | None = None
        self.tick_task: asyncio.Future | None = None
        self.janus: tuple[str, int] | None = None  # (Janus API base, session id)
        self.janus_handle: int | None = None
        self.session: str | None = None
        self.error: str | None = None
        self.connect_ms: float | None = None

    def snapshot(self) -> dict:
        c = self.capture
        out = {
            "session": self.session,
            "state": self.pc.connectionState if self.pc else "none",
            "frames": c.count if c else 0,
            "bytes": c.bytes if c else 0,
            "first_frame_ms": (round((c.first_at - c.t_offer) * 1000, 1)
                               if c and c.first_at else None),
            "error": self.error,
        }
        if self.rtp is not None:
            r = self.rtp
            out.update(frames=r.complete, bytes=r.bytes, rtp=r.snapshot(),
                       first_frame_ms=(round((r.first_at - c.t_offer) * 1000, 1)
                                       if c and r.first_at else None))
        return out


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


def _janus(url: str, body: dict | None = None) -> dict:
    """One Janus HTTP API call (POST with a body, else the long-poll GET)."""
    import urllib.request
    if body is not None:
        body = {**body, "transaction": os.urandom(6).hex()}
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=SIGNALING_TIMEOUT + 35) as resp:
        reply = json.loads(resp.read())
    if isinstance(reply, dict) and reply.get("janus") == "error":
        raise RuntimeError(f"janus: {reply.get('error')}")
    return reply


async def _janus_watch(viewer: Viewer, signaling: dict) -> str:
    """Janus streaming plugin: create a session, attach, `watch` the mountpoint and wait
    for the plugin's offer (Janus offers, the viewer answers). Returns the offer SDP."""
    base = signaling["base"]
    sid = (await asyncio.to_thread(_janus, base, {"janus": "create"}))["data"]["id"]
    viewer.janus = (base, sid)
    viewer.session = f"janus-{sid}"
    hid = (await asyncio.to_thread(_janus, f"{base}/{sid}", {
        "janus": "attach", "plugin": "janus.plugin.streaming"}))["data"]["id"]
    viewer.janus_handle = hid
    await asyncio.to_thread(_janus, f"{base}/{sid}/{hid}", {
        "janus": "message", "body": {"request": "watch", "id": signaling["mountpoint"]}})
    deadline = time.monotonic() + SIGNALING_TIMEOUT
    while time.monotonic() < deadline:
        events = await asyncio.to_thread(_janus, f"{base}/{sid}?maxev=5")
        for ev in events if isinstance(events, list) else [events]:
            jsep = ev.get("jsep")
            if jsep and jsep.get("type") == "offer":
                return jsep["sdp"]
            data = ev.get("plugindata", {}).get("data", {})
            if "error" in data:
                raise RuntimeError(f"janus watch: {data['error']}")
    raise RuntimeError("janus sent no offer")


# --- one client process ----------------------------------------------------------------

async def open_viewer(signaling: dict) -> Viewer:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    viewer = Viewer()
    try:
        pc = viewer.pc = RTCPeerConnection()
        t_offer = time.monotonic()
        if signaling["kind"] == "janus":
            remote = await _janus_watch(viewer, signaling)
            await pc.setRemoteDescription(RTCSessionDescription(remote, "offer"))
            viewer.capture = CaptureQueue(t_offer)
            pc.getReceivers()[0]._RTCRtpReceiver__decoder_queue = viewer.capture
            await pc.setLocalDescription(await pc.createAnswer())
            base, sid = viewer.janus
            url = f"{base}/{sid}/{viewer.janus_handle}"
            await asyncio.to_thread(_janus, url, {
                "janus": "message", "body": {"request": "start"},
                "jsep": {"type": "answer", "sdp": pc.localDescription.sdp}})
            await asyncio.to_thread(_janus, url, {"janus": "trickle",
                                                  "candidate": {"completed": True}})
        else:
            pc.addTransceiver("video", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            t_offer = time.monotonic()
            offer = _offer_http if signaling["kind"] == "http" else _offer_tcp
            answer = await offer(signaling, pc.localDescription.sdp)
            viewer.session = answer.get("session")
            viewer.capture = CaptureQueue(t_offer)
            pc.getReceivers()[0]._RTCRtpReceiver__decoder_queue = viewer.capture
            remote = answer["sdp"]
            await pc.setRemoteDescription(RTCSessionDescription(remote, "answer"))
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while pc.connectionState != "connected":
            if pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
                raise RuntimeError(f"connection {pc.connectionState}")
            await asyncio.sleep(0.05)
        viewer.connect_ms = round((time.monotonic() - t_offer) * 1000, 1)
        if signaling.get("count_rtp"):
            install_rtp_counter(viewer, remote, signaling.get("read_every", 0.0),
                                signaling.get("nack", False))
    except Exception as exc:
        viewer.error = f"{type(exc).__name__}: {exc}"
    return viewer


async def _close_viewer(viewer: Viewer, signaling: dict) -> None:
    if viewer.rr_task is not None:
        viewer.rr_task.cancel()
    if viewer.tick_task is not None:
        viewer.tick_task.cancel()
    if viewer.pc is not None:
        await viewer.pc.close()
    for sock in viewer.socks:
        sock.close()
    if viewer.session and signaling["kind"] == "http":
        try:
            await _close_http(signaling, viewer.session)
        except Exception:
            pass
    if viewer.janus is not None:
        base, sid = viewer.janus
        try:
            await asyncio.to_thread(_janus, f"{base}/{sid}", {"janus": "destroy"})
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
    if signaling.get("rcvbuf"):
        # The kernel doubles what is asked: ask half, get `rcvbuf` (208 KiB = its default).
        aioice.turn.UDP_SOCKET_BUFFER_SIZE = signaling["rcvbuf"] // 2
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
        row = {"session": v["session"], "state": v["state"],
               "frames": v["frames"] - b["frames"], "bytes": v["bytes"] - b["bytes"],
               "fps": (v["frames"] - b["frames"]) / dt,
               "first_frame_ms": v["first_frame_ms"]}
        if "rtp" in v and "rtp" in b:  # lean viewers (count_rtp): RTP counters too
            row["rtp"] = {k: v["rtp"][k] - b["rtp"][k] for k in v["rtp"]
                          if k != "ssrc" and v["rtp"][k] is not None}
        rows.append(row)
    plis = sum(a["plis"] - b["plis"] for a, b in zip(after["procs"], before["procs"],
                                                     strict=True))
    return {"dt": dt, "client_cpu_pct": 100 * cpu / dt, "client_plis": plis, "viewers": rows}
