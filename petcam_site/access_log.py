"""One access-log line per HTTP response and WebSocket, with credentials cut out.

daphne's own access log (the `daphne` command's default, on stdout) prints every
URL in full, signed HLS links (`?sig=`) and WebSocket tokens (`?token=`) included,
and the proxy's address instead of the client's. This one goes through logging
(logger `petcam.access`, INFO, text or JSON like every other line), shows the client
address petcam_site/proxy_headers.py worked out, and replaces the values of
credential parameters with "[redacted]". On with PETCAM_ACCESS_LOG=1; run daphne
with `-v 0` (or `--access-log /dev/null`) so its own log stays off.
"""

from __future__ import annotations

import logging
import re
import time

log = logging.getLogger("petcam.access")

# Query parameters that carry a credential (signed links, API tokens on WebSockets).
SECRET_PARAMETERS = ("sig", "token", "access_token", "password")
_NAMES = "|".join(SECRET_PARAMETERS)
_SECRET_VALUE = re.compile(rf"(?P<name>(?:^|[?&;\s\"'])(?:{_NAMES})=)[^&;\s\"'#]*",
                           re.IGNORECASE)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """`text` with the value of every credential parameter (`sig=...`, `token=...`) cut."""
    return _SECRET_VALUE.sub(lambda m: m.group("name") + REDACTED, text)


def _target(scope: dict) -> str:
    path = scope.get("path", "")
    query = scope.get("query_string", b"").decode("latin-1")
    return redact(f"{path}?{query}") if query else path


def _client(scope: dict) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


class AccessLog:
    """ASGI middleware: `<client> "<METHOD> <path?query>" <status> <bytes> <ms>ms`, and
    `"WS <path>" accepted|closed <code>` for sockets."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            return await self._http(scope, receive, send)
        if scope["type"] == "websocket":
            return await self._websocket(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _http(self, scope, receive, send):
        started = time.monotonic()
        state = {"status": 0, "bytes": 0}

        async def counting_send(message):
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            log.info('%s "%s %s" %s %d %.0fms', _client(scope), scope.get("method", "-"),
                     _target(scope), state["status"] or "-", state["bytes"],
                     (time.monotonic() - started) * 1000)

    async def _websocket(self, scope, receive, send):
        async def logging_send(message):
            if message["type"] == "websocket.accept":
                log.info('%s "WS %s" accepted', _client(scope), _target(scope))
            elif message["type"] == "websocket.close":
                log.info('%s "WS %s" closed %s', _client(scope), _target(scope),
                         message.get("code", 1000))
            await send(message)

        return await self.app(scope, receive, logging_send)


class RedactSecrets:
    """logging filter for every handler: a credential in a URL never reaches a log line,
    whoever logs it (Django's request warnings, a library's debug line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler's own error
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
