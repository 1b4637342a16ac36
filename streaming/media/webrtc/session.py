"""One browser watching one camera: its peer connection, passthrough track and hub sink."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket
from aiortc.sdp import SessionDescription

from streaming.media.hub import Hub
from streaming.media.types import MediaError
from streaming.media.webrtc.aiortc_compat import (
    drop_receive_estimator,
    install_encoder,
    on_sender_rtcp,
)
from streaming.media.webrtc.codecs import codec_preferences
from streaming.media.webrtc.fanout import LeanSender
from streaming.media.webrtc.frame_timer import FrameTimer
from streaming.media.webrtc.packetizer import SharedPacketizer
from streaming.media.webrtc.track import PassthroughTrack

log = logging.getLogger("petcam.viewer")


def require_dtls_fingerprints(offer_sdp: str) -> None:
    """ValueError unless every media section has a DTLS fingerprint and role.

    aiortc answers an offer without one, then fails an assertion in its connect task (an
    "exception was never retrieved" in the log) and the session holds a slot until the
    ICE deadline (benchmarks/hostile_probe.py)."""
    for media in SessionDescription.parse(offer_sdp).media:
        if media.dtls is None or not media.dtls.fingerprints:
            raise ValueError(f"its {media.kind} section has no DTLS fingerprint and setup "
                             "(a=fingerprint, a=setup)")


def drop_mdns_candidates(sdp: str) -> str:
    """Remove browsers' `*.local` (mDNS) host candidates.

    aioice waits up to a second to resolve each one before answering; the
    browser's connectivity checks reveal its address anyway (peer-reflexive).
    """
    lines = sdp.split("\r\n") if "\r\n" in sdp else sdp.split("\n")
    kept = [line for line in lines
            if not (line.startswith("a=candidate:") and ".local " in line)]
    return ("\r\n" if "\r\n" in sdp else "\n").join(kept)


class ViewerSession:
    transport = "webrtc"

    def __init__(self, camera: str, hub: Hub, *, ice_servers: list[dict],
                 queue_frames: int, on_closed: Callable[[ViewerSession], None],
                 shared_packetizer: bool = True, replay_gop: bool = True,
                 catch_up_bytes_per_s: float = 10e6, owner: int | None = None,
                 credential: str | None = None, lean_sender: bool = True,
                 pacing: bool | str = "auto", batch_send: bool = True) -> None:
        self.id = secrets.token_hex(8)
        self.camera = camera
        # The user who opened it (None: the web tier sent no id). Only they, or a user
        # who may control the camera, may end it (Viewers.close).
        self.owner = owner
        # Which login of the owner opened it (an opaque tag from the web tier): revoking
        # that token or ending that login session ends this session too.
        self.credential = credential
        self.hub = hub
        self.created = time.monotonic()
        self.last_rtcp = self.created
        self.connected_at: float | None = None
        self.keyframe_requests = 0
        self._last_resync = 0.0
        self._on_closed = on_closed
        self.closed = False
        self.close_reason = ""
        self.shared_packetizer = shared_packetizer
        self.replay_gop = replay_gop
        self.packetizer: SharedPacketizer | None = None
        self.lean_sender = lean_sender
        self.pacing = pacing
        self.batch_send = batch_send
        self.sender: LeanSender | None = None  # the lean RTP loop, when on
        servers = [RTCIceServer(**s) for s in ice_servers]
        # aioice drops a failed TURN allocation silently: say so when the answer lacks one.
        self._expects_relay = any(str(u).startswith(("turn:", "turns:")) for s in servers
                                  for u in (s.urls if isinstance(s.urls, list) else [s.urls]))
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self.sink = hub.subscribe(f"{camera}/viewer {self.id}", maxsize=queue_frames,
                                  from_gop=False)
        self.track = PassthroughTrack(self.sink, catch_up_bytes_per_s, FrameTimer(camera))
        self.pc.on("connectionstatechange", self._on_state)

    @property
    def state(self) -> str:
        return self.pc.connectionState

    @property
    def frames_sent(self) -> int:
        return self.track.frames_sent

    @property
    def bytes_sent(self) -> int:
        return self.track.bytes_sent

    async def accept(self, offer_sdp: str, stream_profile: str | None) -> str:
        """Answer the browser's offer; H.264 only, profile as the stream's SPS says."""
        try:
            preferences, warning = codec_preferences(offer_sdp, stream_profile)
            require_dtls_fingerprints(offer_sdp)
        except Exception as exc:  # aiortc's SDP parser raises ValueError, IndexError, ...
            raise MediaError("invalid_sdp", f"cannot parse the offer: {exc}") from exc
        if warning:
            log.warning("viewer %s on %s: %s", self.id, self.camera, warning)
        offer_sdp = drop_mdns_candidates(offer_sdp)
        transceiver = self.pc.addTransceiver(self.track, direction="sendonly")
        transceiver.setCodecPreferences(preferences)  # before setRemoteDescription
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except Exception as exc:  # aiortc raises ValueError, OperationError, ...
            raise MediaError("invalid_sdp", f"cannot answer this offer: {exc}") from exc
        if self._expects_relay and " typ relay" not in self.pc.localDescription.sdp:
            log.warning("viewer %s on %s: the TURN server gave the worker no relay address "
                        "(unreachable, or it refused the credential: is PETCAM_TURN_SECRET "
                        "coturn's static-auth-secret?); answering with direct candidates only",
                        self.id, self.camera)
        self._watch_rtcp(transceiver.sender)
        drop_receive_estimator(transceiver.receiver)  # send-only: no video comes back
        if self.lean_sender:
            self.sender = LeanSender(transceiver.sender, self.track,
                                     shared=self.shared_packetizer, pacing=self.pacing,
                                     batch_send=self.batch_send)
        else:  # aiortc's own per-packet loop, with our stand-in encoder
            self.packetizer = SharedPacketizer(self.track, transceiver.sender,
                                               shared=self.shared_packetizer)
            install_encoder(transceiver.sender, self.packetizer)
        if self.replay_gop:
            # Start from the cached GOP: a decodable picture at once, not at the next IDR.
            # Browsers ask for a keyframe as they start; this replay already answers it.
            self.sink.replay(self.hub.gop.snapshot())
            self._last_resync = time.monotonic()
        return self.pc.localDescription.sdp

    def _watch_rtcp(self, sender) -> None:
        """Notice RTCP (liveness) and PLI/FIR, which aiortc ignores in passthrough."""
        def on_rtcp(packet) -> None:
            self.last_rtcp = time.monotonic()
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI,
                                                                     RTCP_PSFB_FIR):
                self.request_keyframe()

        on_sender_rtcp(sender, on_rtcp)

    def request_keyframe(self) -> None:
        """The browser lost the picture: resend the cached GOP.

        At most once per GOP (2 s floor): the next IDR repairs the picture anyway,
        and replay bursts on a lossy link cause more loss and so more PLIs.
        """
        self.keyframe_requests += 1
        now = time.monotonic()
        gop = self.hub.gop.snapshot()
        gop_seconds = gop[-1].timestamp - gop[0].timestamp if len(gop) > 1 else 0.0
        if not self.replay_gop or now - self._last_resync < max(2.0, gop_seconds):
            return
        self._last_resync = now
        log.info("viewer %s on %s asked for a keyframe; resending %d cached frames",
                 self.id, self.camera, len(gop))
        self.sink.replay(gop)

    async def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and self.connected_at is None:
            self.connected_at = time.monotonic()
            log.info("viewer %s on %s connected in %.0f ms", self.id, self.camera,
                     (self.connected_at - self.created) * 1000)
        elif state in ("failed", "closed"):
            await self.close(f"connection {state}")

    async def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.hub.unsubscribe(self.sink)
        self.track.stop()
        await self.pc.close()
        log.info("viewer %s left %s (%s) after %.1f s, %d frames, %d bytes",
                 self.id, self.camera, reason, time.monotonic() - self.created,
                 self.track.frames_sent, self.track.bytes_sent)
        self._on_closed(self)

    def health_check(self, now: float, ice_timeout: float, silence_timeout: float) -> str | None:
        """Why this session should be dropped now, or None."""
        if self.connected_at is None:
            if now - self.created > ice_timeout:
                return f"not connected within {ice_timeout:.0f} s"
        elif now - self.last_rtcp > silence_timeout:
            return f"no RTCP from the browser for {silence_timeout:.0f} s"
        return None

    def clock(self) -> dict | None:
        """How this viewer's RTP timestamps map to the camera clock, once known:
        pts = (rtp_timestamp - rtp_origin) mod 2**32; camera_ts = camera_base + pts / 90000,
        with the newest anchor whose from_pts <= pts (replayed frames have no mapping)."""
        if self.sender is not None:
            origin = self.sender.rtp_origin if self.sender.packets else None
        else:
            origin = self.packetizer.rtp_origin if self.packetizer else None
        if origin is None or not self.track.clock.anchors:
            return None
        return {"session": self.id, "rtp_origin": origin, "clock_rate": 90_000,
                "anchors": [{"from_pts": p, "camera_base": round(b, 6)}
                            for p, b in self.track.clock.anchors]}

    def stats(self) -> dict:
        return {
            "session": self.id,
            "transport": self.transport,
            "state": self.state,
            "frames_sent": self.track.frames_sent,
            "bytes_sent": self.track.bytes_sent,
            "dropped": self.sink.stats.dropped,
            "overflows": self.sink.stats.overflows,
            "keyframe_requests": self.keyframe_requests,
            # packets sent again on a NACK, and whether its big frames leave paced now
            "retransmitted": self.sender.retransmitted if self.sender else None,
            "paced": self.sender.pacing if self.sender else None,
            "clock": self.clock(),
            "age_s": round(time.monotonic() - self.created, 1),
        }


async def close_all(sessions: list[ViewerSession], reason: str) -> None:
    await asyncio.gather(*(s.close(reason) for s in sessions), return_exceptions=True)
