"""Request-body size limits per route: 413 `too_large` before a body is held in memory.

The table is settings.PETCAM_BODY_LIMITS, [(path regex, bytes), ...], first match wins,
else settings.PETCAM_MAX_BODY_BYTES. Two places apply it:

- petcam_site/daphne_compat.py, inside daphne's HTTP parser: daphne (Twisted) reads a
  whole body before it calls the ASGI app and then queues all of it for the app at once,
  so only there can an oversized body be refused while it arrives.
- BodySizeLimit, the outermost ASGI middleware (petcam_site/asgi.py): the same check for
  any other ASGI server or test client, Content-Length first, then counting the bytes of
  each `http.request` message so a chunked body is cut off once it passes the limit.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache

from django.conf import settings

log = logging.getLogger("petcam.http")


@lru_cache(maxsize=8)
def _compiled(table: tuple[tuple[str, int], ...]) -> tuple[tuple[re.Pattern[str], int], ...]:
    return tuple((re.compile(pattern), limit) for pattern, limit in table)


def limit_for(path: str) -> int:
    """The largest body (bytes) a request to `path` may carry."""
    for pattern, limit in _compiled(tuple(tuple(row) for row in settings.PETCAM_BODY_LIMITS)):
        if pattern.match(path):
            return limit
    return settings.PETCAM_MAX_BODY_BYTES


def too_large_body(limit: int) -> bytes:
    """The documented error body of a 413."""
    return json.dumps({"error": "too_large",
                       "detail": f"The request body may be at most {limit} bytes here."}
                      ).encode()


def declared_length(headers) -> int | None:
    """Content-Length as an int; None when absent or unreadable (the server rejects those)."""
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: 413 for an HTTP request whose body passes its route's limit.

    A declared Content-Length over the limit is answered without reading anything; an
    unknown length (chunked) is counted message by message and cut off at the limit.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = limit_for(scope["path"])
        length = declared_length(scope.get("headers", []))
        if length is not None and length > limit:
            return await self._refuse(scope, send, limit, f"Content-Length {length}")

        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        async def watched_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _BodyTooLarge:
            if not started:  # the app was still reading its body: nothing sent yet
                await self._refuse(scope, send, limit, f"more than {limit} bytes sent")

    @staticmethod
    async def _refuse(scope, send, limit: int, why: str) -> None:
        client = (scope.get("client") or ["?"])[0]
        log.warning("refused a request body: %s %r from %s: %s (limit %d)",
                    scope.get("method"), scope["path"], client, why, limit)
        body = too_large_body(limit)
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
