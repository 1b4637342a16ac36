"""The client's address behind reverse proxies: X-Forwarded-For from trusted proxies only.

daphne's `--proxy-headers` takes the first X-Forwarded-For entry, which the client
writes itself: a spoofed "127.0.0.1" reached /metrics and dodged the login lockout.
Here the header counts only when the connection comes from a proxy listed in
PETCAM_TRUSTED_PROXIES (addresses or networks), and the client is the right-most
entry that is not a trusted proxy: the address the outermost trusted proxy saw and
appended. Everything that asks "who is this" reads the result, scope["client"]
(REMOTE_ADDR in Django): django-axes, the per-address login cap, /metrics, /health,
DRF's throttles and the access log.

The scheme likewise: X-Forwarded-Proto from a trusted proxy sets scope["scheme"], and
anyone else's is dropped before Django sees it, so SECURE_PROXY_SSL_HEADER (set only
when there are trusted proxies, see proxy_ssl_header()) believes the proxy alone.
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


# Django's SECURE_PROXY_SSL_HEADER: "this request came over HTTPS" when the proxy says so.
PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def proxy_ssl_header(requested: bool | None, tls: bool, trusted: Iterable[str]
                     ) -> tuple[str, str] | None:
    """SECURE_PROXY_SSL_HEADER for these settings, or None.

    requested: PETCAM_PROXY_SSL_HEADER (None when unset: on with PETCAM_TLS behind
    trusted proxies). Only a trusted proxy may say "https": asked for without one,
    ValueError, since any client could then claim it."""
    has_proxies = bool(parse_networks(trusted))
    if requested is None:
        requested = tls and has_proxies
    if not requested:
        return None
    if not has_proxies:
        raise ValueError("PETCAM_PROXY_SSL_HEADER=1 needs PETCAM_TRUSTED_PROXIES (the reverse "
                         "proxy's address, e.g. 127.0.0.1,::1): without it any client could "
                         "claim HTTPS with its own X-Forwarded-Proto header")
    return PROXY_SSL_HEADER


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
        headers = scope.get("headers", [])
        if not is_trusted(peer_host, self.trusted):
            # The client's own claim of HTTPS: gone, so Django's SECURE_PROXY_SSL_HEADER
            # check and the WebSocket origin check never read it.
            if any(name == b"x-forwarded-proto" for name, _ in headers):
                scope = {**scope, "headers": [(name, value) for name, value in headers
                                              if name != b"x-forwarded-proto"]}
            return scope
        entries: list[str] = []
        proto = None
        for name, value in headers:
            if name == b"x-forwarded-for":
                entries.extend(value.decode("latin-1").split(","))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").split(",")[-1].strip().lower()
        client = client_address(peer_host, entries, self.trusted) if entries else None
        if client is not None:
            scope = {**scope, "client": [client, peer_port], FORWARDED_SCOPE_KEY: True}
        if proto in ("http", "https", "ws", "wss"):
            secure = proto in ("https", "wss")
            scope = {**scope, "scheme": (("wss" if secure else "ws")
                                         if scope["type"] == "websocket"
                                         else ("https" if secure else "http"))}
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
