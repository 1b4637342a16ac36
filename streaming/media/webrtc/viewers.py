"""A camera's viewers: admission (max viewers), lookup, and removal of dead peers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from streaming.media.hub import Hub
from streaming.media.types import MediaError
from streaming.media.webrtc.session import ViewerSession, close_all

log = logging.getLogger("petcam.viewer")


@dataclass(frozen=True)
class ViewerLimits:
    max_viewers: int = 10
    ice_timeout: float = 15.0  # offer answered -> connected
    silence_timeout: float = 10.0  # connected, but no RTCP from the browser
    queue_frames: int = 90
    shared_packetizer: bool = True  # packetize once for all viewers
    replay_gop: bool = True  # start viewers from the cached GOP (off: wait for an IDR)
    catch_up_bytes_per_s: float = 10e6  # pacing of that replay
    lean_sender: bool = True  # our per-frame RTP loop instead of aiortc's per-packet one
    pacing: bool = True  # spread a big live frame (IDR) over half a frame interval


class Viewers:
    def __init__(self, camera: str, hub: Hub, limits: ViewerLimits,
                 ice_servers: list[dict] | None = None,
                 publish_clock: Callable[[dict], Awaitable[None]] | None = None) -> None:
        self.camera = camera
        self.hub = hub
        self.limits = limits
        self.ice_servers = ice_servers or []
        self.sessions: dict[str, ViewerSession] = {}
        self._pending = 0  # offers being negotiated: they hold a slot too
        self.rejected_full = 0
        # Figures of sessions that ended, so the totals (/metrics counters) never go down.
        self.opened = 0
        self._ended = {"frames_sent": 0, "bytes_sent": 0, "dropped": 0}
        self._watchdog: asyncio.Task | None = None
        self._publish_clock = publish_clock
        self._published_clocks: dict[str, dict] = {}

    def start(self) -> None:
        self._watchdog = asyncio.create_task(self._watch(), name=f"viewers-{self.camera}")

    async def stop(self) -> None:
        if self._watchdog:
            self._watchdog.cancel()
        await close_all(list(self.sessions.values()), "worker stopping")

    async def open(self, offer_sdp: str, stream_profile: str | None,
                   owner: int | None = None) -> ViewerSession:
        if len(self.sessions) + self._pending >= self.limits.max_viewers:
            self.rejected_full += 1
            raise MediaError("max_viewers", f"camera {self.camera!r} already has "
                                f"{self.limits.max_viewers} viewers")
        self._pending += 1
        session = ViewerSession(self.camera, self.hub, ice_servers=self.ice_servers,
                                queue_frames=self.limits.queue_frames,
                                on_closed=self._forget,
                                shared_packetizer=self.limits.shared_packetizer,
                                replay_gop=self.limits.replay_gop,
                                catch_up_bytes_per_s=self.limits.catch_up_bytes_per_s,
                                owner=owner, lean_sender=self.limits.lean_sender,
                                pacing=self.limits.pacing)
        try:
            await session.accept(offer_sdp, stream_profile)
        except BaseException:
            await session.close("offer rejected")
            raise
        finally:
            self._pending -= 1
        self.sessions[session.id] = session
        self.opened += 1
        log.info("viewer %s joined %s (%d/%d)", session.id, self.camera, len(self.sessions),
                 self.limits.max_viewers)
        return session

    async def close(self, session_id: str, user_id: int | None = None,
                    may_end_any: bool = False) -> bool:
        """End a session for `user_id`: its owner, or anyone who may end any session
        (`may_end_any`, decided by the web tier). False for an unknown session and, so
        that others' session ids do not leak, for a refused one too."""
        session = self.sessions.get(session_id)
        if session is None:
            return False
        if not (may_end_any or session.owner is None or session.owner == user_id):
            log.warning("viewer %s on %s: close by user %s refused (opened by user %s)",
                        session.id, self.camera, user_id, session.owner)
            return False
        await session.close("closed by client" if session.owner == user_id
                            else f"closed by user {user_id}")
        return True

    def _forget(self, session: ViewerSession) -> None:
        if self.sessions.pop(session.id, None) is not None:
            self._ended["frames_sent"] += session.track.frames_sent
            self._ended["bytes_sent"] += session.track.bytes_sent
            self._ended["dropped"] += session.sink.stats.dropped
        self._published_clocks.pop(session.id, None)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for session in list(self.sessions.values()):
                reason = session.health_check(now, self.limits.ice_timeout,
                                              self.limits.silence_timeout)
                if reason:
                    await session.close(reason)
                else:
                    await self._announce_clock(session)

    async def _announce_clock(self, session: ViewerSession) -> None:
        """Tell the page how its RTP timestamps map to camera time (boxes per frame)."""
        clock = session.clock()
        if clock is None or self._publish_clock is None:
            return
        if self._published_clocks.get(session.id) != clock:
            self._published_clocks[session.id] = clock
            await self._publish_clock(clock)

    def totals(self) -> dict:
        """Since the worker started: sessions opened; frames, bytes and drops of all viewers."""
        live = list(self.sessions.values())
        return {"opened": self.opened,
                "frames_sent": self._ended["frames_sent"] + sum(s.track.frames_sent for s in live),
                "bytes_sent": self._ended["bytes_sent"] + sum(s.track.bytes_sent for s in live),
                "dropped": self._ended["dropped"] + sum(s.sink.stats.dropped for s in live)}

    def stats(self) -> dict:
        return {
            "count": len(self.sessions),
            "max": self.limits.max_viewers,
            "rejected_full": self.rejected_full,
            "shared_packetizer": self.limits.shared_packetizer,
            "lean_sender": self.limits.lean_sender,
            "pacing": self.limits.pacing,
            "replay_gop": self.limits.replay_gop,
            "sessions": [s.stats() for s in self.sessions.values()],
        }
