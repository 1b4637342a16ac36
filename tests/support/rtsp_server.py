"""A small RTSP/1.0 server for tests: one H.264 stream, RTP over TCP (interleaved) or UDP.

It plays a list of Annex-B access units in a loop at a fixed rate, every
session from the first (an IDR), packetized by aiortc's H.264 packetizer
(RFC 6184: single NAL, STAP-A, FU-A), and remembers what it sent so a test can
compare it byte for byte with what came out of petcam. It can require HTTP
Basic credentials, be stopped abruptly (sockets aborted, like a crashed
camera) and started again on the same port, or fall silent while keeping its
connections open (a stalled camera).

It runs its own asyncio loop in a thread, so synchronous tests can drive it.
"""

from __future__ import annotations

import asyncio
import base64
import random
import threading
from dataclasses import dataclass, field

from aiortc.rtp import RtpPacket

from streaming.media.webrtc.aiortc_compat import h264_nal_units, h264_payloads

PAYLOAD_TYPE = 96
CLOCK_RATE = 90_000


def encode_clip(width: int, height: int, fps: int, frames: int, gop: int) -> list[bytes]:
    """Access units of the simulator's scene (frame numbers 1..frames drawn in), IDR first."""
    from streaming.simulator.encoder import H264Encoder as SceneEncoder
    from streaming.simulator.scene import Scene

    scene = Scene(width, height)
    with SceneEncoder(width, height, fps=fps, bitrate_kbps=600, gop=gop,
                      profile="main") as encoder:
        return [encoder.encode(scene.render(n), n).data for n in range(1, frames + 1)]


def split_nals(au: bytes) -> list[bytes]:
    """NAL units of an Annex-B access unit (start codes and trailing zeros removed)."""
    return h264_nal_units(au)


@dataclass
class Session:
    id: str
    transport: str = ""  # "tcp" or "udp"
    channel: int = 0  # interleaved RTP channel (tcp)
    client_rtp: tuple[str, int] | None = None  # (udp)
    udp: asyncio.DatagramTransport | None = None
    sender: asyncio.Task | None = None
    sent: list[int] = field(default_factory=list)  # indexes of the access units sent


class RtspTestServer:
    def __init__(self, access_units: list[bytes], fps: float, *, path: str = "/cam",
                 credentials: tuple[str, str] | None = None) -> None:
        if not access_units or not split_nals(access_units[0]):
            raise ValueError("need Annex-B access units, an IDR with SPS/PPS first")
        self.access_units = access_units
        self.fps = fps
        self.path = path
        self.credentials = credentials
        self.port = 0
        self.sessions: list[Session] = []  # every session ever played, in order
        self.requests: list[str] = []  # "METHOD uri" of every request
        self.paused = False
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="rtsp-test-server")
        self._thread.start()
        nals = split_nals(access_units[0])
        self._sps = next(n for n in nals if n[0] & 0x1F == 7)
        self._pps = next(n for n in nals if n[0] & 0x1F == 8)

    # --- control from the test ----------------------------------------------------------

    def url(self, *, fragment: str = "", userinfo: str | None = None) -> str:
        if userinfo is None and self.credentials:
            userinfo = ":".join(self.credentials)
        auth = f"{userinfo}@" if userinfo else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}{self.path}{fragment}"

    def start(self) -> RtspTestServer:
        """Listen (again) on 127.0.0.1, on the same port after a stop()."""
        self._call(self._start())
        return self

    def stop(self) -> None:
        """Like a crashed camera: listening socket closed, connections aborted."""
        self._call(self._stop())

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def sent_units(self, session: Session) -> list[bytes]:
        return [self.access_units[i % len(self.access_units)] for i in list(session.sent)]

    @property
    def playing(self) -> list[Session]:
        return [s for s in self.sessions if s.sender is not None and not s.sender.done()]

    def _call(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for session in self.sessions:
            if session.sender is not None:
                session.sender.cancel()
            if session.udp is not None:
                session.udp.abort()
        self._writers.clear()

    # --- RTSP ---------------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        session: Session | None = None
        try:
            while True:
                first = await reader.readexactly(1)
                if first == b"$":  # interleaved RTCP from the client: read and ignore
                    header = await reader.readexactly(3)
                    await reader.readexactly(int.from_bytes(header[1:3], "big"))
                    continue
                head = first + await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, uri, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in
                           (line.split(":", 1) for line in lines[1:] if ":" in line)}
                if int(headers.get("content-length", 0)):
                    await reader.readexactly(int(headers["content-length"]))
                self.requests.append(f"{method} {uri}")
                session = await self._answer(method, headers, writer, session)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if session is not None and session.sender is not None:
                session.sender.cancel()
            if session is not None and session.udp is not None:
                session.udp.close()
            self._writers.discard(writer)
            writer.transport.abort()

    async def _answer(self, method: str, headers: dict[str, str], writer: asyncio.StreamWriter,
                      session: Session | None) -> Session | None:
        cseq = headers.get("cseq", "0")
        if self.credentials and method != "OPTIONS" and not self._authorized(headers):
            self._reply(writer, cseq, "401 Unauthorized",
                        {"WWW-Authenticate": 'Basic realm="petcam-test"'})
            return session
        if method == "OPTIONS":
            self._reply(writer, cseq, "200 OK", {
                "Public": "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"})
        elif method == "DESCRIBE":
            self._reply(writer, cseq, "200 OK", {"Content-Type": "application/sdp",
                                                 "Content-Base": self.url(userinfo="") + "/"},
                        self._sdp())
        elif method == "SETUP":
            session = Session(id=f"{random.getrandbits(32):08x}")
            transport = headers.get("transport", "")
            if "TCP" in transport.upper():
                session.transport = "tcp"
                reply_transport = "RTP/AVP/TCP;unicast;interleaved=0-1"
            else:
                session.transport = "udp"
                client_port = int(transport.split("client_port=")[1].split("-")[0].split(";")[0])
                session.client_rtp = ("127.0.0.1", client_port)
                session.udp, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
                server_port = session.udp.get_extra_info("sockname")[1]
                reply_transport = (f"RTP/AVP;unicast;client_port={client_port}-"
                                   f"{client_port + 1};server_port={server_port}-"
                                   f"{server_port + 1}")
            self._reply(writer, cseq, "200 OK", {"Transport": reply_transport,
                                                 "Session": f"{session.id};timeout=60"})
        elif method == "PLAY" and session is not None:
            self._reply(writer, cseq, "200 OK", {"Session": session.id, "Range": "npt=0.000-"})
            self.sessions.append(session)
            session.sender = asyncio.create_task(self._send(session, writer))
        elif method == "TEARDOWN":
            self._reply(writer, cseq, "200 OK", {})
            if session is not None and session.sender is not None:
                session.sender.cancel()
        else:  # GET_PARAMETER keep-alives and the rest
            self._reply(writer, cseq, "200 OK", {"Session": session.id} if session else {})
        return session

    def _authorized(self, headers: dict[str, str]) -> bool:
        user, password = self.credentials
        expected = base64.b64encode(f"{user}:{password}".encode()).decode()
        return headers.get("authorization", "") == f"Basic {expected}"

    def _sdp(self) -> bytes:
        sprop = ",".join(base64.b64encode(n).decode() for n in (self._sps, self._pps))
        return (
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=petcam test\r\nc=IN IP4 127.0.0.1\r\n"
            "t=0 0\r\na=control:*\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
            f"a=fmtp:96 packetization-mode=1;profile-level-id={self._sps[1:4].hex()};"
            f"sprop-parameter-sets={sprop}\r\na=control:trackID=0\r\n"
        ).encode()

    @staticmethod
    def _reply(writer: asyncio.StreamWriter, cseq: str, status: str, headers: dict[str, str],
               body: bytes = b"") -> None:
        lines = [f"RTSP/1.0 {status}", f"CSeq: {cseq}", *(f"{k}: {v}" for k, v in
                                                            headers.items())]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    # --- RTP ----------------------------------------------------------------------------------

    async def _send(self, session: Session, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        ssrc = random.getrandbits(32)
        seq = random.getrandbits(16)
        ts0 = random.getrandbits(32)
        start = loop.time()
        index = 0
        while True:
            if not self.paused:
                au = self.access_units[index % len(self.access_units)]
                payloads = h264_payloads(au)
                timestamp = (ts0 + round(index * CLOCK_RATE / self.fps)) & 0xFFFFFFFF
                for n, payload in enumerate(payloads):
                    packet = RtpPacket(payload_type=PAYLOAD_TYPE, marker=n == len(payloads) - 1,
                                       sequence_number=seq, timestamp=timestamp, ssrc=ssrc,
                                       payload=payload).serialize()
                    seq = (seq + 1) & 0xFFFF
                    if session.transport == "tcp":
                        writer.write(b"$" + bytes([session.channel])
                                     + len(packet).to_bytes(2, "big") + packet)
                    else:
                        session.udp.sendto(packet, session.client_rtp)
                session.sent.append(index)
                if session.transport == "tcp":
                    await writer.drain()
            index += 1  # a paused camera's clock keeps running
            delay = start + index / self.fps - loop.time()
            await asyncio.sleep(max(0.0, delay))
