"""Every use of daphne's and Twisted's private names, in one place (checked against
daphne 4.2.3 on Twisted 26.10.0).

Request bodies: Twisted's HTTP parser reads a whole request body (into a temporary
file) before daphne sees the request; daphne then copies all of it into the ASGI app's
queue at once, before the app runs. An ASGI middleware therefore comes too late: a 1 GB
POST costs 1 GB of RAM whatever the app does. `BodyLimitedRequest` applies the per-route
limits of petcam_site/body_limits.py while the body arrives: over the limit it answers
413 at once (a declared Content-Length: before reading any of it; no `100 Continue`),
reads and drops what the client still sends for a short while (so the client sees the
413 rather than a reset connection), then closes. Nothing of the body is kept.

`install()` swaps daphne's request class (the module global its HTTPFactory builds
requests from); petcam_site/asgi.py calls it, so `manage.py serve` and the plain
`daphne petcam_site.asgi:application` of the production unit both get it. HTTP/2 (only
with TLS in daphne) does not go through this class: terminate TLS in the proxy.
WebSocket write backlog: daphne hands every `websocket.send` to Twisted at once, and
Twisted buffers what the kernel does not take yet without a bound, so an ASGI app cannot
see a client that stopped reading. `WriteBacklog` (outermost ASGI middleware) finds the
connection's protocol in the `send` daphne gives each application (a partial of
`Server.handle_reply` over the protocol) and puts a callable in the scope's
`extensions["petcam.write_backlog"]` that reads the unsent bytes of the connection: the
kernel's send queue (TIOCOUTQ on the transport's socket: on loopback or a fast link
the kernel takes megabytes before Twisted has to keep any) plus Twisted's own buffer
(`dataBuffer`, `offset`, `_tempDataLen` of twisted.internet.abstract.FileDescriptor).
streaming/live_fanout.py skips a socket over its limit. Another server: no callable.

When the pinned daphne changes, tests/integration/test_request_body_limits.py fails until
someone re-reads these against the new source and updates CHECKED_AGAINST.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import struct
import termios
from collections.abc import Callable
from importlib.metadata import version as _dist_version
from urllib.parse import unquote

from daphne import http_protocol

from petcam_site.body_limits import limit_for, too_large_body

CHECKED_AGAINST = {"daphne": "4.2.3", "twisted": "26.10.0"}
# After the 413, drop incoming bytes this long at most, then close.
DISCARD_SECONDS = 5.0

log = logging.getLogger("petcam.http")


def versions() -> dict[str, str]:
    return {name: _dist_version(name) for name in CHECKED_AGAINST}


class BodyLimitedRequest(http_protocol.WebRequest):
    """daphne's request, refusing a body over its route's limit as it arrives."""

    _body_limit: int | None = None
    _body_seen = 0
    _refused = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Twisted parses multipart/form-data bodies itself before daphne sees them (work
        # Django does again) and answers a malformed one with an empty 400 of its own,
        # outside our error format. The app parses bodies; Twisted must not.
        self._parsePOSTFormSubmission = False

    def gotLength(self, length):  # noqa: N802 - Twisted's name
        # Called once the headers are parsed (HTTPChannel.allHeadersReceived), before the
        # body and before Twisted's automatic "100 Continue".
        raw_target = getattr(self.channel, "_path", None)  # private: the request target
        if raw_target is None:  # HTTP/2 (H2Stream): left to the ASGI middleware
            super().gotLength(length)
            return
        path = unquote(raw_target.split(b"?", 1)[0].decode("latin-1"))
        self._body_limit = limit_for(path)
        self._body_path = path
        if length is not None and length > self._body_limit:
            self._refuse(f"Content-Length {length}")
            return
        super().gotLength(length)

    def handleContentChunk(self, data):  # noqa: N802 - Twisted's name
        if self._refused:
            return  # dropped: the client is still sending what we refused
        self._body_seen += len(data)
        if self._body_limit is not None and self._body_seen > self._body_limit:
            self._refuse(f"more than {self._body_limit} bytes sent")
            return
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version):  # noqa: N802 - Twisted's name
        if self._refused:  # the whole refused body went by: done with this connection
            self.channel.loseConnection()
            return
        super().requestReceived(command, path, version)

    def _refuse(self, why: str) -> None:
        from twisted.internet import reactor  # daphne's (asyncio) reactor, installed by now

        self._refused = True
        self.requestHeaders.removeHeader(b"expect")  # no "100 Continue" for a refused body
        peer = self.channel.transport.getPeer()
        log.warning("refused a request body: %s %r from %s: %s (limit %d)",
                    self.channel._command.decode("latin-1"), self._body_path,
                    getattr(peer, "host", "?"), why, self._body_limit)
        body = too_large_body(self._body_limit)
        # Written straight to the socket: the request line is not processed yet, so
        # Twisted's response machinery (which needs it) cannot be used.
        self.channel.transport.write(
            b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        # The body still arrives into handleContentChunk (and is dropped) until the client
        # stops, the refused body ends (requestReceived) or DISCARD_SECONDS pass.
        reactor.callLater(DISCARD_SECONDS, self._close)

    def _close(self) -> None:
        if self.channel is not None and self.channel.transport is not None:
            self.channel.loseConnection()


def install() -> None:
    """daphne's HTTPFactory.buildProtocol uses the module global WebRequest."""
    http_protocol.WebRequest = BodyLimitedRequest


BACKLOG_EXTENSION = "petcam.write_backlog"


def write_backlog_of(send) -> Callable[[], int] | None:
    """Unsent bytes of the connection behind daphne's `send`, or None (not daphne's)."""
    if not (isinstance(send, functools.partial) and send.args
            and getattr(send.func, "__name__", "") == "handle_reply"):
        return None
    protocol = send.args[0]

    def backlog() -> int:
        transport = getattr(protocol, "transport", None)
        if transport is None:  # connection gone
            return 0
        try:
            queued = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
            fd = transport.socket.fileno()
        except (AttributeError, OSError):  # another kind of transport (TLS), or closed
            return 0
        try:
            unsent = struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0" * 4))[0]
        except OSError:
            unsent = 0
        return queued + unsent
    return backlog


class WriteBacklog:
    """ASGI middleware (outermost): WebSocket scopes get the write-backlog callable."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "websocket":
            backlog = write_backlog_of(send)
            if backlog is not None:
                scope = dict(scope, extensions={**(scope.get("extensions") or {}),
                                                BACKLOG_EXTENSION: backlog})
        return await self.app(scope, receive, send)
