"""A camera's viewers: admission (limits per camera and per user), lookup, and removal of
dead peers.

A peer that never completes ICE holds a slot (and makes the server send STUN) until its
deadline. So: one user holds at most `max_per_user` sessions on a camera; peers not
connected yet ("pending") are counted apart and dropped after the short `ice_timeout`;
an offer that would be refused replaces its user's own oldest pending session (a browser
retrying after a failed ICE needs no wait); and on a full camera a newcomer takes the
place of the oldest pending session of whoever has several pending.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from streaming.media.hub import Hub
from streaming.media.mse import MseSession, Send
from streaming.media.types import MediaError
from streaming.media.webrtc.session import ViewerSession, close_all

log = logging.getLogger("petcam.viewer")


@dataclass(frozen=True)
class ViewerLimits:
    max_viewers: int = 10  # sessions per camera, connected or not
    max_per_user: int = 3  # sessions of one user on one camera (0: no cap)
    ice_timeout: float = 8.0  # offer answered -> connected
    silence_timeout: float = 10.0  # connected, but no RTCP from the browser
    queue_frames: int = 90
    shared_packetizer: bool = True  # packetize once for all viewers
    replay_gop: bool = True  # start viewers from the cached GOP (off: wait for an IDR)
    catch_up_bytes_per_s: float = 10e6  # pacing of that replay
    lean_sender: bool = True  # our per-frame RTP loop instead of aiortc's per-packet one
    # spread a big live frame (IDR) over most of a frame interval: True, False, or "auto"
    # (once the viewer reports a lost packet of one; fanout.LeanSender)
    pacing: bool | str = "auto"
    batch_send: bool = True  # a burst of a viewer's packets in one sendmmsg, not a sendto each
    mse_window_frames: int = 30  # MSE: fragments in flight before the browser acknowledges


class Viewers:
    def __init__(self, camera: str, hub: Hub, limits: ViewerLimits,
                 ice_servers: Callable[[], list[dict]] | None = None,
                 publish_clock: Callable[[dict], Awaitable[None]] | None = None) -> None:
        self.camera = camera
        self.hub = hub
        self.limits = limits
        # Asked per session: TURN credentials are short-lived (streaming/ice_servers.py).
        self.ice_servers = ice_servers or list
        self.sessions: dict[str, ViewerSession | MseSession] = {}
        # Offers being answered, per owner: they hold a slot (and a pending one) too.
        self._negotiating: Counter[int | None] = Counter()
        self.rejected_full = 0  # camera full, or too many peers still connecting
        self.rejected_per_user = 0
        self.replaced = 0  # pending sessions that gave their slot to a newer offer
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

    def pending(self) -> int:
        """Sessions not connected yet, offers being answered included."""
        return (sum(1 for s in self.sessions.values() if s.connected_at is None)
                + sum(self._negotiating.values()))

    def _waiting(self) -> dict[int | None, list[ViewerSession]]:
        """Answered sessions not connected yet, per owner, oldest first."""
        waiting: dict[int | None, list[ViewerSession]] = {}
        for s in sorted(self.sessions.values(), key=lambda s: s.created):
            if s.connected_at is None and not s.closed:
                waiting.setdefault(s.owner, []).append(s)
        return waiting

    def _admit(self, owner: int | None) -> ViewerSession | None:
        """Check a new offer from `owner`: None to admit it as is, a pending session it
        replaces, or MediaError (too_many_sessions, max_viewers)."""
        limits = self.limits
        mine = (sum(1 for s in self.sessions.values() if s.owner == owner)
                + self._negotiating[owner])
        waiting = self._waiting()
        if limits.max_per_user and mine >= limits.max_per_user:
            if owner in waiting:
                return waiting[owner][0]
            self.rejected_per_user += 1
            raise MediaError("too_many_sessions",
                             f"You already have {mine} live sessions on camera "
                             f"{self.camera!r} (at most {limits.max_per_user} per user); "
                             "end one first.")
        if len(self.sessions) + sum(self._negotiating.values()) < limits.max_viewers:
            return None
        if owner in waiting:
            return waiting[owner][0]
        # Full. A user with several peers still connecting gives one up to a newcomer:
        # waiting slots cannot be hoarded, and a lone peer that is connecting keeps its own.
        hoarder = max(waiting.values(), key=lambda w: (len(w), -w[0].created), default=[])
        if len(hoarder) >= 2:
            return hoarder[0]
        self.rejected_full += 1
        raise MediaError("max_viewers", f"camera {self.camera!r} already has "
                                        f"{limits.max_viewers} viewers")

    async def open(self, offer_sdp: str, stream_profile: str | None,
                   owner: int | None = None, credential: str | None = None) -> ViewerSession:
        """Answer an offer from `owner` (a user id from the web tier), opened with
        `credential` (an opaque tag of the login it came with, for close_owned)."""
        try:
            replaced = self._admit(owner)
        except MediaError as refusal:
            log.warning("viewer offer on %s from user %s refused (%s): %s", self.camera,
                        owner, refusal.code, refusal.detail)
            raise
        if replaced is not None:
            # Out of the counts now, before any await: concurrent offers must not see the
            # slot free a second time.
            self._forget(replaced)
            self.replaced += 1
        self._negotiating[owner] += 1
        try:
            if replaced is not None:
                whose = ("a newer offer of the same user" if replaced.owner == owner
                         else f"user {owner} (user {replaced.owner} had several still "
                              "connecting)")
                log.info("viewer %s of user %s on %s, not connected after %.1f s, gives its "
                         "slot to %s", replaced.id, replaced.owner, self.camera,
                         time.monotonic() - replaced.created, whose)
                await close_all([replaced], f"replaced by {whose}")
            session = ViewerSession(self.camera, self.hub, ice_servers=self.ice_servers(),
                                    queue_frames=self.limits.queue_frames,
                                    on_closed=self._forget,
                                    shared_packetizer=self.limits.shared_packetizer,
                                    replay_gop=self.limits.replay_gop,
                                    catch_up_bytes_per_s=self.limits.catch_up_bytes_per_s,
                                    owner=owner, credential=credential,
                                    lean_sender=self.limits.lean_sender,
                                    pacing=self.limits.pacing,
                                    batch_send=self.limits.batch_send)
            try:
                await session.accept(offer_sdp, stream_profile)
            except BaseException:
                await session.close("offer rejected")
                raise
        finally:
            self._negotiating[owner] -= 1
            if self._negotiating[owner] <= 0:
                del self._negotiating[owner]
        self.sessions[session.id] = session
        self.opened += 1
        log.info("viewer %s (user %s) joined %s (%d/%d)", session.id, owner, self.camera,
                 len(self.sessions), self.limits.max_viewers)
        return session

    async def open_mse(self, send: Send, owner: int | None = None,
                       credential: str | None = None) -> MseSession:
        """A viewer over WebSocket + MSE (streaming/media/mse.py): the same limits and
        bookkeeping as a WebRTC one; its fragments go to `send`."""
        try:
            replaced = self._admit(owner)
        except MediaError as refusal:
            log.warning("mse viewer on %s from user %s refused (%s): %s", self.camera,
                        owner, refusal.code, refusal.detail)
            raise
        if replaced is not None:
            self._forget(replaced)
            self.replaced += 1
            await close_all([replaced], "replaced by a WebSocket (MSE) viewer of user "
                                        f"{owner}")
        session = MseSession(self.camera, self.hub, send, queue_frames=self.limits.queue_frames,
                             on_closed=self._forget, owner=owner, credential=credential,
                             window_frames=self.limits.mse_window_frames)
        self.sessions[session.id] = session
        self.opened += 1
        session.start()
        log.info("mse viewer %s (user %s) joined %s (%d/%d)", session.id, owner, self.camera,
                 len(self.sessions), self.limits.max_viewers)
        return session

    def mse_ack(self, session_id: str, seq: int | None, user_id: int | None) -> bool:
        """A browser's acknowledgement (seq None: only alive); False if not its session."""
        session = self.sessions.get(session_id)
        if not isinstance(session, MseSession) or session.owner != user_id:
            return False
        if seq is None:
            session.keepalive()
        else:
            session.ack(seq)
        return True

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

    async def close_owned(self, user_id: int | None, credential: str | None = None,
                          reason: str = "access revoked") -> int:
        """End every session `user_id` opened (only those opened with `credential`, if
        given); how many. The web tier calls it when the user's access changed."""
        if user_id is None:  # a request without a user names nobody's sessions
            return 0
        ended = [s for s in self.sessions.values() if s.owner == user_id
                 and (credential is None or s.credential == credential)]
        await close_all(ended, reason)
        if ended:
            log.info("%d viewer session(s) of user %s on %s ended: %s", len(ended), user_id,
                     self.camera, reason)
        return len(ended)

    def _forget(self, session: ViewerSession) -> None:
        if self.sessions.pop(session.id, None) is not None:
            self._ended["frames_sent"] += session.frames_sent
            self._ended["bytes_sent"] += session.bytes_sent
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
                "frames_sent": self._ended["frames_sent"] + sum(s.frames_sent for s in live),
                "bytes_sent": self._ended["bytes_sent"] + sum(s.bytes_sent for s in live),
                "dropped": self._ended["dropped"] + sum(s.sink.stats.dropped for s in live)}

    def stats(self) -> dict:
        return {
            "count": len(self.sessions),
            "max": self.limits.max_viewers,
            "pending": self.pending(),
            "max_per_user": self.limits.max_per_user,
            "rejected_full": self.rejected_full,
            "rejected_per_user": self.rejected_per_user,
            "replaced": self.replaced,
            "shared_packetizer": self.limits.shared_packetizer,
            "lean_sender": self.limits.lean_sender,
            "pacing": self.limits.pacing,
            "batch_send": self.limits.batch_send,
            "replay_gop": self.limits.replay_gop,
            "sessions": [s.stats() for s in self.sessions.values()],
        }
