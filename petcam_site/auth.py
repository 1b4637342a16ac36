"""API authentication: session for the portal, hashed bearer tokens for apps and WHEP."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from knox.auth import TokenAuthentication
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from petcam_site.proxy_headers import is_loopback_client


class BearerTokenAuthentication(TokenAuthentication):
    """knox tokens (accounts/models.py) sent as `Authorization: Bearer <key>` (WHEP,
    RFC 9725) or `Token <key>`. request.auth is the ApiToken row."""

    keyword = "Bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in (b"bearer", b"token"):
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: expected 'Bearer <key>'.")
        return self.authenticate_credentials(parts[1])

    def authenticate_credentials(self, token: bytes):
        try:
            token.decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token header.") from exc
        return super().authenticate_credentials(token)

    def authenticate_header(self, request) -> str:
        return self.keyword  # WWW-Authenticate: Bearer


async def is_staff_or_loopback(request) -> bool:
    """Who may read operator figures (/metrics, /health's details): this machine itself
    (petcam_site/proxy_headers.py decides what is local) or an active staff user, by
    token or by session."""
    if is_loopback_client(request):
        return True
    try:
        found = await sync_to_async(BearerTokenAuthentication().authenticate)(request)
    except exceptions.AuthenticationFailed:
        return False
    if found is not None:
        return bool(found[0].is_active and found[0].is_staff)
    user = await request.auser()
    return bool(user.is_active and user.is_staff)
