"""WS /ws/cameras/{camera}/mse/: live video as fragmented MP4 for Media Source Extensions.

The fallback when WebRTC cannot connect: everything travels over the site's own port.
Same login, rights, revocation and viewer limits as WebRTC (it is a CameraConsumer).

Server -> client: {"type": "init", "mime", "width", "height", "camera_base", "seq"} then
                  the init segment (binary); fragments (binary, one moof+mdat per frame,
                  message seq+1, seq+2, ...); {"type": "error", "error", "detail"} before a
                  refusal's close; {"type": "closed", "reason"} when the worker ended it.
Client -> server: {"type": "ack", "seq": n} (received everything up to message n; also
                  every few seconds as a keep-alive) | {"type": "ping"}.

The media worker builds the fragments and sends them to this socket's channel (in this
process in the embedded mode, over Redis in production), so the socket may live in any
web process.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings

from streaming.media.types import MediaError

from .consumers import CameraConsumer
from .worker_rpc import call_worker, notify_worker

log = logging.getLogger("petcam.ws")

# Refused by the worker: the reason is in the error message sent before the close.
CLOSE_CODES = {"max_viewers": 4503, "too_many_sessions": 4429, "worker_timeout": 4504}
CLOSE_ENDED = 4000  # the worker ended the session (e.g. no acknowledgements)
ACK_TTL = 5.0  # s: an acknowledgement older than this is useless to the worker


class MseConsumer(CameraConsumer):
    JOINS_CAMERA_GROUP = False  # this socket carries video only; events use the other one
    session: str | None = None  # the worker's MSE session while it streams here

    async def admitted(self) -> None:
        try:
            result = await call_worker(self.camera, "mse.open",
                                       timeout=settings.PETCAM_SIGNALING_TIMEOUT,
                                       channel=self.channel_name, user_id=self.user.pk,
                                       credential=self.credential)
        except MediaError as exc:
            await self._leave_groups()
            await self._error(exc.code, exc.detail)
            await self.close(code=CLOSE_CODES.get(exc.code, 4500))
            return
        self.sessions.add(result["session"])
        if self.group is None:  # access revoked while the worker answered
            await self._end_sessions()
            return
        self.session = result["session"]

    async def _end_sessions(self) -> None:
        self.session = None  # from now on, nothing more to this socket
        await super()._end_sessions()

    async def receive_json(self, content: dict, **kwargs) -> None:
        kind = content.get("type")
        if kind == "ack":
            seq = content.get("seq")
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                await self._error("invalid_ack", "seq must be a non-negative integer.")
                return
            if self.session is None:
                return
            try:
                await notify_worker(self.camera, "mse.ack", ttl=ACK_TTL, session=self.session,
                                    seq=seq, user_id=self.user.pk)
            except Exception as exc:  # Redis restarting: the next ack will do
                log.debug("mse ack for %s not sent: %s", self.session, exc)
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self._error("unknown_type", f"Unknown message type {kind!r}.")

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        if bytes_data is not None and text_data is None:
            if self.group is not None:
                await self._error("invalid_json", "Messages must be JSON objects.")
            return
        await super().receive(text_data=text_data, bytes_data=bytes_data, **kwargs)

    # From the worker. No database in sight: skip Channels' per-event hop to the sync thread.
    async def dispatch(self, message: dict) -> None:
        kind = message.get("type", "")
        if kind.startswith("mse.") and self.session is None:
            return  # refused, revoked or ended: late fragments go nowhere
        if kind == "mse.fragment":
            await self.send(bytes_data=message["data"])
        elif kind == "mse.init":
            await self.send(text_data=json.dumps({
                "type": "init", "mime": message["mime"], "width": message["width"],
                "height": message["height"], "camera_base": message["camera_base"],
                "seq": message["seq"]}))
            await self.send(bytes_data=message["data"])
        elif kind == "mse.closed":
            if self.session is not None:
                self.sessions.discard(self.session)
                self.session = None
                await self.send_json({"type": "closed", "reason": message.get("reason", "")})
                await self.close(code=CLOSE_ENDED)
        else:
            await super().dispatch(message)

