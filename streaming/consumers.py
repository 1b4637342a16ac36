"""WS /ws/cameras/{camera}/: WebRTC offer/answer and live camera events for one camera.

Client -> server: {"type": "offer", "sdp"} | {"type": "close", "session"} | {"type": "ping"}
Server -> client: {"type": "answer", "sdp", "session"} | {"type": "status", ...}
                  | {"type": "detections", ...} | {"type": "clock", "session", ...}
                  | {"type": "error", "error", "detail"} | {"type": "pong"}
Sessions opened over a socket end when the socket closes. A session belongs to the user
who opened it: "close" of another user's session is answered like an unknown one, unless
the user may control the camera (petcam_site/permissions.py).
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from petcam_site.permissions import camera_refusal, can_control_camera
from streaming.media.types import MediaError

from .offer_validation import validate_offer_sdp
from .worker_rpc import call_worker, camera_group

log = logging.getLogger("petcam.ws")

CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_UNKNOWN_CAMERA = 4404


@database_sync_to_async
def user_for_token(key: str):
    from accounts.tokens import user_for_key  # hashed, expiring tokens (django-rest-knox)

    return user_for_key(key)


class CameraConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.camera = self.scope["url_route"]["kwargs"]["camera"]
        self.sessions: set[str] = set()
        self.group = None
        self.user = None
        await self.accept()
        user = self.scope.get("user")
        if not (user and user.is_authenticated):
            token = parse_qs(self.scope.get("query_string", b"").decode()).get("token", [""])[0]
            user = await user_for_token(token) if token else None
        # petcam_site/permissions.py: a camera this user may not see is an unknown one
        refusal = await database_sync_to_async(camera_refusal)(user, self.camera)
        if refusal == "not_authenticated":
            await self._refuse("not_authenticated", "Log in or pass ?token=<api token>.",
                               CLOSE_NOT_AUTHENTICATED)
            return
        if refusal == "forbidden":
            await self._refuse("forbidden", "Your role may not watch cameras.", CLOSE_FORBIDDEN)
            return
        if refusal is not None:
            await self._refuse("unknown_camera", f"No camera {self.camera!r}.",
                               CLOSE_UNKNOWN_CAMERA)
            return
        self.user = user
        self.group = camera_group(self.camera)
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def _refuse(self, code: str, detail: str, close_code: int) -> None:
        await self.send_json({"type": "error", "error": code, "detail": detail})
        await self.close(code=close_code)

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        for session in list(self.sessions):
            try:
                await call_worker(self.camera, "close", timeout=2, session=session,
                                  user_id=self.user.pk)
            except MediaError:  # includes WorkerUnavailable
                pass  # already gone, or the worker's watchdog will reap it

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        if self.group is None:
            return  # refused socket: ignore anything it still sends
        try:
            content = json.loads(text_data or "")
        except ValueError:
            await self._error("invalid_json", "Messages must be JSON objects.")
            return
        if not isinstance(content, dict):
            await self._error("invalid_json", "Messages must be JSON objects.")
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict, **kwargs) -> None:
        kind = content.get("type")
        try:
            if kind == "offer":
                sdp = validate_offer_sdp(content.get("sdp"), settings.PETCAM_MAX_SDP_BYTES)
                answer = await call_worker(self.camera, "offer",
                                           timeout=settings.PETCAM_SIGNALING_TIMEOUT, sdp=sdp,
                                           user_id=self.user.pk)
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

    # Live events touch no database: skip Channels' per-event hop to the sync
    # thread (aclose_old_connections), 1,500 hops/s with 50 sockets at 30 Hz.
    LIVE_EVENTS = {"camera.detections": "camera_detections", "camera.status": "camera_status",
                   "camera.clock": "camera_clock"}

    async def dispatch(self, message: dict) -> None:
        handler = self.LIVE_EVENTS.get(message.get("type", ""))
        if handler:
            await getattr(self, handler)(message)
        else:
            await super().dispatch(message)

    async def camera_status(self, event: dict) -> None:
        await self.send_json({"type": "status", **event["status"]})

    async def camera_detections(self, event: dict) -> None:
        await self.send(text_data=event["text"])  # encoded once by the worker, not per socket

    async def camera_clock(self, event: dict) -> None:
        await self.send_json({"type": "clock", **event["clock"]})
