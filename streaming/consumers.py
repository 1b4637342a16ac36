"""WS /ws/cameras/{camera}/: WebRTC offer/answer and live camera events for one camera.

Client -> server: {"type": "offer", "sdp"} | {"type": "close", "session"} | {"type": "ping"}
Server -> client: {"type": "answer", "sdp", "session"} | {"type": "status", ...}
                  | {"type": "detections", ...} | {"type": "clock", "session", ...}
                  | {"type": "error", "error", "detail"} | {"type": "pong"}
Sessions opened over a socket end when the socket closes. A session belongs to the user
who opened it: "close" of another user's session is answered like an unknown one, unless
the user may control the camera (petcam_site/permissions.py).

A socket lives as long as the access it was opened with: every offer and close checks
the credential (login session or API token), the account and its rights again, and so
does the socket when told that the user's access changed (streaming/signals.py, through
the user's channel-layer group) and every PETCAM_WS_RECHECK_SECONDS. Access gone: the
socket gets the error a new connection would get and is closed with the same code,
after its live video has ended.
"""

from __future__ import annotations

import asyncio
import json
import logging
from importlib import import_module
from urllib.parse import parse_qs

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError

from petcam_site.parsers import check_json_text
from petcam_site.permissions import camera_refusal, can_control_camera
from streaming.media.types import MediaError

from .live_fanout import LiveFanouts, LiveSocket, live_event_texts
from .offer_validation import validate_offer
from .revocation import session_credential, token_credential, user_group
from .worker_rpc import call_worker, camera_group

log = logging.getLogger("petcam.ws")
_fanouts: LiveFanouts | None = None


def live_fanouts() -> LiveFanouts:
    """This process's camera fan-outs (streaming/live_fanout.py), made on first use."""
    global _fanouts
    if _fanouts is None:
        _fanouts = LiveFanouts(camera_group, backlog_limit=settings.PETCAM_WS_BACKLOG_BYTES,
                               trace=settings.PETCAM_DETECTIONS_TRACE)
    return _fanouts

CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_UNKNOWN_CAMERA = 4404

REFUSALS = {  # camera_refusal() -> (detail, close code)
    "not_authenticated": ("Log in or pass ?token=<api token>.", CLOSE_NOT_AUTHENTICATED),
    "forbidden": ("Your role may not watch cameras.", CLOSE_FORBIDDEN),
    "unknown_camera": ("No camera {camera!r}.", CLOSE_UNKNOWN_CAMERA),
}


@database_sync_to_async
def authenticate_token(key: str):
    """(user, token row) for an API token key, or None (unknown, expired, revoked, inactive
    user). The one place here that knows the token model."""
    from accounts.tokens import authenticate_key  # hashed, expiring tokens (django-rest-knox)

    return authenticate_key(key)


async def session_user(session_key: str | None):
    """The user a login session holds now (None: logged out, expired, password changed,
    inactive), read afresh from the session store."""
    if not session_key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = await get_user({"session": store})
    return user if user.is_authenticated else None


class CameraConsumer(AsyncJsonWebsocketConsumer):
    JOINS_CAMERA_GROUP = True  # status, detections and clock events of the camera

    async def connect(self) -> None:
        self.camera = self.scope["url_route"]["kwargs"]["camera"]
        self.sessions: set[str] = set()
        self.group = None
        self.user = None
        self.credential: str | None = None  # what it was opened with (revocation.py)
        self._token_key: str | None = None
        self._session_key: str | None = None
        self._password_hash = ""
        self._recheck: asyncio.Task | None = None
        self._live: LiveSocket | None = None  # while it gets the camera's events
        await self.accept()
        user = self.scope.get("user")
        if user and user.is_authenticated:
            self._session_key = self.scope["session"].session_key
            self.credential = session_credential(self._session_key)
        else:
            token = parse_qs(self.scope.get("query_string", b"").decode()).get("token", [""])[0]
            found = await authenticate_token(token) if token else None
            user = found[0] if found else None
            if found:
                self._token_key = token
                self.credential = token_credential(found[1])
        # petcam_site/permissions.py: a camera this user may not see is an unknown one
        refusal = await database_sync_to_async(camera_refusal)(user, self.camera)
        if refusal is not None:
            await self._refuse(refusal)
            return
        self.user = user
        self._password_hash = user.get_session_auth_hash()
        self.group = camera_group(self.camera)
        await self.channel_layer.group_add(user_group(user.pk), self.channel_name)
        if self.JOINS_CAMERA_GROUP:
            await self._join_camera_events()
        if settings.PETCAM_WS_RECHECK_SECONDS > 0:
            self._recheck = asyncio.create_task(self._recheck_every(
                settings.PETCAM_WS_RECHECK_SECONDS), name=f"ws-recheck-{self.channel_name}")
        await self.admitted()

    async def _join_camera_events(self) -> None:
        if settings.PETCAM_WS_FANOUT == "group":  # one channel-layer message per socket
            await self.channel_layer.group_add(self.group, self.channel_name)
            return
        extensions = self.scope.get("extensions") or {}
        self._live = LiveSocket(self._send_text, extensions.get("petcam.write_backlog"),
                                self.channel_name)
        await live_fanouts().camera(self.camera).join(self._live)

    async def _send_text(self, text: str) -> None:
        await self.send(text_data=text)

    async def admitted(self) -> None:
        """The socket's user may watch the camera (a subclass starts its work here)."""

    async def _refuse(self, refusal: str, detail: str | None = None) -> None:
        text, close_code = REFUSALS.get(refusal, REFUSALS["unknown_camera"])
        await self.send_json({"type": "error", "error": refusal,
                              "detail": detail or text.format(camera=self.camera)})
        await self.close(code=close_code)

    # --- access, checked again --------------------------------------------------------------

    async def _access_refusal(self) -> str | None:
        """Why this socket's user may no longer watch its camera, read afresh (None: still
        may): the credential still valid, the password unchanged, role and camera."""
        if self._token_key is not None:
            found = await authenticate_token(self._token_key)
            user = found[0] if found else None
            if user is not None and (user.pk != self.user.pk
                                     or user.get_session_auth_hash() != self._password_hash):
                user = None  # the password changed since the socket opened
        else:  # the session store checks the password (session auth hash) itself
            user = await session_user(self._session_key)
            if user is not None and user.pk != self.user.pk:
                user = None
        refusal = await database_sync_to_async(camera_refusal)(user, self.camera)
        if refusal is None:
            self.user = user
        return refusal

    async def _revoke(self, refusal: str, reason: str) -> None:
        """Access is gone: no more events, live video ended, then the refusal and close."""
        if self.group is None:
            return
        log.info("socket of user %s on camera %s closed: %s (%s)", self.user.pk, self.camera,
                 reason, refusal)
        await self._leave_groups()
        await self._end_sessions()
        text, _ = REFUSALS.get(refusal, REFUSALS["unknown_camera"])
        await self._refuse(refusal, f"Your access ended ({reason}). "
                                    + text.format(camera=self.camera))

    async def _recheck_every(self, seconds: float) -> None:
        """The backstop for changes no signal reported (bulk updates, another process in
        the embedded mode, a channel-layer message lost)."""
        while self.group is not None:
            await asyncio.sleep(seconds)
            try:
                refusal = await self._access_refusal()
            except DatabaseError:
                log.warning("socket of user %s: access check skipped (database unavailable)",
                            self.user.pk)
                continue
            if refusal is not None:
                await self._revoke(refusal, "periodic check")

    async def user_access_changed(self, event: dict) -> None:
        """From streaming/revocation.py through the user's group."""
        if self.group is None:
            return
        reason = str(event.get("reason", "access changed"))
        credential = event.get("credential")
        if event.get("close_all") or (credential is not None and credential == self.credential):
            await self._revoke("not_authenticated", reason)
        elif credential is None:
            refusal = await self._access_refusal()
            if refusal is not None:
                await self._revoke(refusal, reason)

    # --- lifecycle ------------------------------------------------------------------------

    async def _leave_groups(self) -> None:
        if self.group is None:
            return
        group, self.group = self.group, None  # from here on no event is written to it
        if self._live is not None:
            live, self._live = self._live, None
            await live_fanouts().camera(self.camera).leave(live)
        elif self.JOINS_CAMERA_GROUP:
            await self.channel_layer.group_discard(group, self.channel_name)
        await self.channel_layer.group_discard(user_group(self.user.pk), self.channel_name)

    async def _end_sessions(self) -> None:
        for session in list(self.sessions):
            self.sessions.discard(session)
            try:
                await call_worker(self.camera, "close", timeout=2, session=session,
                                  user_id=self.user.pk)
            except MediaError:  # includes WorkerUnavailable
                pass  # already gone, or the worker's watchdog will reap it

    async def disconnect(self, code: int) -> None:
        if self._recheck is not None and self._recheck is not asyncio.current_task():
            self._recheck.cancel()
        await self._leave_groups()
        await self._end_sessions()

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        if self.group is None:
            return  # refused socket: ignore anything it still sends
        try:
            content = json.loads(text_data or "")
            check_json_text(content)  # no lone surrogates: the channel layer cannot carry them
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            await self._error("invalid_json", "Messages must be JSON objects.")
            return
        if not isinstance(content, dict):
            await self._error("invalid_json", "Messages must be JSON objects.")
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict, **kwargs) -> None:
        kind = content.get("type")
        if kind in ("offer", "close"):  # messages that act: is the access still there?
            try:
                refusal = await self._access_refusal()
            except DatabaseError:
                await self._error("database_unavailable",
                                  "The database is not reachable; try again shortly.")
                return
            if refusal is not None:
                await self._revoke(refusal, f"checked on {kind!r}")
                return
        try:
            if kind == "offer":
                sdp = validate_offer(content.get("sdp"))
                answer = await call_worker(self.camera, "offer",
                                           timeout=settings.PETCAM_SIGNALING_TIMEOUT, sdp=sdp,
                                           user_id=self.user.pk, credential=self.credential)
                if self.group is None:  # access revoked while the worker answered
                    self.sessions.add(answer["session"])
                    await self._end_sessions()
                    return
                self.sessions.add(answer["session"])
                await self.send_json(answer)
            elif kind == "close":
                session = str(content.get("session", ""))
                # Another user's session: refused like an unknown one (unknown_session).
                may_end_any = await database_sync_to_async(can_control_camera)(self.user,
                                                                               self.camera)
                await call_worker(self.camera, "close", timeout=settings.PETCAM_SIGNALING_TIMEOUT,
                                  session=session, user_id=self.user.pk,
                                  may_end_any=may_end_any)
                self.sessions.discard(session)
                await self.send_json({"type": "closed", "session": session})
            elif kind == "ping":
                await self.send_json({"type": "pong"})
            else:
                await self._error("unknown_type", f"Unknown message type {kind!r}.")
        except MediaError as exc:  # refused by the worker, or no answer (worker_timeout)
            await self._error(exc.code, exc.detail)

    async def _error(self, code: str, detail: str) -> None:
        await self.send_json({"type": "error", "error": code, "detail": detail})

    async def dispatch(self, message: dict) -> None:
        """Camera events reach a socket here only with PETCAM_WS_FANOUT=group (else through
        live_fanout.py). They touch no database: no hop to Channels' sync thread."""
        found = live_event_texts(message, trace=settings.PETCAM_DETECTIONS_TRACE)
        if found is None:
            await super().dispatch(message)
            return
        for text in found[1]:
            if self.group is None:
                return
            await self.send(text_data=text)
