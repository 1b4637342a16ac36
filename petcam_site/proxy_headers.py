"""The client's address behind reverse proxies: X-Forwarded-For from trusted proxies only.

daphne's `--proxy-headers` takes the first X-Forwarded-For entry, which the client
writes itself: a spoofed "127.0.0.1" reached /metrics and dodged the login lockout.
Here the header counts only when the connection comes from a proxy listed in
PETCAM_TRUSTED_PROXIES (addresses or networks), and the client is the right-most
entry that is not a trusted proxy: the address the outermost trusted proxy saw and
appended. Everything that asks "who is this" reads the result, scope["client"]
(REMOTE_ADDR in Django): django-axes, the per-address login cap, /metrics, /health,
DRF's throttles and the access log.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

log = logging.getLogger("petcam.proxy")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Set on the scope when the client address was taken from a trusted proxy's header.
FORWARDED_SCOPE_KEY = "petcam.forwarded_for"


def parse_networks(value: str | Iterable[str]) -> tuple[Network, ...]:
    """"127.0.0.1, 10.0.0.0/8, ::1" -> networks; ValueError names a bad entry."""
    items = value.split(",") if isinstance(value, str) else value
    networks = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"PETCAM_TRUSTED_PROXIES: {item!r} is not an address or "
                             "network") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:  # "[::1]:443"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.5:4711"
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped or ip


def is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    ip = _address(address)
    return ip is not None and any(ip in net for net in trusted)


def client_address(peer: str, forwarded_for: list[str], trusted: tuple[Network, ...]
                   ) -> str | None:
    """The client's address, or None to keep the peer's. `forwarded_for` is every
    X-Forwarded-For entry in order (several headers joined, left to right)."""
    if not trusted or not is_trusted(peer, trusted):
        return None  # not from a proxy we know: the header is the client's own words
    entries = [e.strip() for e in forwarded_for if e.strip()]
    for entry in reversed(entries):
        if not is_trusted(entry, trusted):
            ip = _address(entry)
            return str(ip) if ip is not None else None  # garbage: keep the proxy's address
    # Every hop is a trusted proxy: the left-most is where the request came from.
    ip = _address(entries[0]) if entries else None
    return str(ip) if ip is not None else None


class TrustedProxyHeaders:
    """ASGI middleware (HTTP and WebSocket): rewrites scope["client"] from X-Forwarded-For
    (and the scheme from X-Forwarded-Proto) when the peer is a trusted proxy."""

    def __init__(self, app, trusted: str | Iterable[str]) -> None:
        self.app = app
        self.trusted = parse_networks(trusted)

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and self.trusted and scope.get("client"):
            scope = self.resolve(scope)
        return await self.app(scope, receive, send)

    def resolve(self, scope: dict) -> dict:
        peer_host, peer_port = scope["client"][0], scope["client"][1]
        entries: list[str] = []
        proto = None
        for name, value in scope.get("headers", []):
            if name == b"x-forwarded-for":
                entries.extend(value.decode("latin-1").split(","))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").split(",")[-1].strip().lower()
        if not entries:
            return scope
        client = client_address(peer_host, entries, self.trusted)
        if client is None:
            return scope
        scope = {**scope, "client": [client, peer_port], FORWARDED_SCOPE_KEY: True}
        if proto in ("http", "https", "ws", "wss"):
            secure = proto in ("https", "wss")
            scope["scheme"] = ("wss" if secure else "ws") if scope["type"] == "websocket" \
                else ("https" if secure else "http")
        return scope


def _is_loopback(address: str) -> bool:
    ip = _address(address)
    return ip is not None and ip.is_loopback


def is_loopback_client(request) -> bool:
    """Does the request come from this machine itself? A loopback peer that forwards an
    X-Forwarded-For it is not trusted for is a local proxy (nginx on the same host)
    carrying someone else's request: not local."""
    if not _is_loopback(request.META.get("REMOTE_ADDR", "")):
        return False
    if "HTTP_X_FORWARDED_FOR" not in request.META:
        return True
    scope = getattr(request, "scope", None) or {}
    return bool(scope.get(FORWARDED_SCOPE_KEY))
