"""One HTTP(S) POST to addresses already resolved and checked, Django-free.

The connection goes to one of the given addresses; the Host header, TLS SNI and the
certificate check use the URL's host name, as if the name had been resolved here. No
redirect is followed (http.client never does): a redirect could lead anywhere.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urlsplit

MAX_RESPONSE = 65536  # bytes of the answer read (the status is all that counts)


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(_PinnedHTTP):
    default_port = 443

    def connect(self) -> None:
        super().connect()
        # The system's trust store (SSL_CERT_FILE if set), checked against the name.
        context = ssl.create_default_context()
        self.sock = context.wrap_socket(self.sock, server_hostname=self.host)


def post(url: str, addresses: list[str], headers: dict[str, str], body: bytes,
         timeout: float) -> int:
    """POST to the first address that accepts the connection; the HTTP status. OSError
    (refused, timed out, TLS) when none answers; the last address's error is raised."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    error: OSError | None = None
    for address in addresses:
        connection = kind(host, port, address, timeout)
        try:
            connection.connect()
        except ssl.SSLError:
            connection.close()
            raise  # the server answered with the wrong certificate: not another address
        except OSError as exc:
            connection.close()
            error = exc
            continue
        try:
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            response.read(MAX_RESPONSE)
            return response.status
        finally:
            connection.close()
    raise error or OSError(f"{host}: no address to connect to")
