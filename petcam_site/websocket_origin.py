"""The Origin check on WebSocket handshakes (cross-site WebSocket hijacking).

Browsers send cookies to a host whatever the port or scheme, so a page served on
another port of the same machine (`http://127.0.0.1:9999`) could open a socket with the
user's session. A browser's socket is accepted only from the site's own origin, compared
whole (scheme://host:port) exactly as Django's CSRF check compares a form's Origin: the
handshake's Host (which must be in ALLOWED_HOSTS) with the scheme the site is served
over, or an entry of CSRF_TRUSTED_ORIGINS. Apps and scripts send no Origin and
authenticate with a token, so they pass.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

log = logging.getLogger("petcam.ws")


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def served_over_https(scope: dict) -> bool:
    """HTTPS for the browser: TLS on the socket itself, the proxy's X-Forwarded-Proto when
    SECURE_PROXY_SSL_HEADER trusts it (as Django's request.is_secure()), or PETCAM_TLS
    (daphne puts no scheme in a WebSocket scope, even behind its own TLS endpoint)."""
    if scope.get("scheme") in ("wss", "https") or getattr(settings, "PETCAM_TLS", False):
        return True
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, secure_value = proxy_header
        header = name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin1")
        value = _header(scope, header)
        return value is not None and value.split(",")[0].strip() == secure_value
    return False


def own_origin(scope: dict) -> str | None:
    """scheme://host[:port] of the site as this handshake reached it, or None when its
    Host is not one of ALLOWED_HOSTS."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    return f"{'https' if served_over_https(scope) else 'http'}://{host}"


def origin_allowed(scope: dict, origin: str) -> bool:
    """Django's CSRF Origin rule (CsrfViewMiddleware._origin_verified) for a socket."""
    if origin == own_origin(scope):
        return True
    trusted = getattr(settings, "CSRF_TRUSTED_ORIGINS", [])
    if origin in trusted:
        return True
    try:
        parsed = urlsplit(origin)
    except ValueError:
        return False
    return any(is_same_domain(parsed.netloc, urlsplit(pattern).netloc.lstrip("*"))
               for pattern in trusted
               if "*" in pattern and urlsplit(pattern).scheme == parsed.scheme)


class BrowserOriginValidator:
    """Refuses (HTTP 403) a handshake whose Origin is not the site's own; one without an
    Origin passes (no browser sent it)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        origin = _header(scope, b"origin")
        if origin is None or origin_allowed(scope, origin):
            return await self.app(scope, receive, send)
        log.warning("WebSocket %s refused: Origin %r is not this site (Host %r)",
                    scope.get("path", ""), origin[:100], (_header(scope, b"host") or "")[:100])
        return await WebsocketDenier()(scope, receive, send)
