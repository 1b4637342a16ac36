"""Making, finding and revoking API tokens; every revocation goes through revoke_tokens().

A key is 64 hex characters, returned once by create_token() and never stored: the
database keeps its SHA-512 digest (django-rest-knox). Expired tokens are deleted when
an authentication meets them (knox) and are never counted or listed.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from knox.auth import TokenAuthentication
from rest_framework import exceptions

from .models import NAME_MAX_LENGTH, ApiToken

log = logging.getLogger("petcam.auth")

DEFAULT_NAME = "API login"


class TooManyTokens(Exception):
    """The user already holds PETCAM_TOKENS_PER_USER live tokens."""


def live_tokens(user) -> QuerySet[ApiToken]:
    """The user's tokens that still work, newest first."""
    return ApiToken.objects.filter(user=user).filter(
        Q(expiry__isnull=True) | Q(expiry__gt=timezone.now()))


def default_lifetime() -> timedelta | None:
    days = settings.PETCAM_TOKEN_TTL_DAYS
    return timedelta(days=days) if days > 0 else None


def create_token(user, name: str = "", lifetime: timedelta | None | str = "default"
                 ) -> tuple[ApiToken, str]:
    """A new token for `user`: (its row, the key, to be shown once). `lifetime` None: no
    expiry. Raises TooManyTokens at the per-user limit."""
    if live_tokens(user).count() >= settings.PETCAM_TOKENS_PER_USER:
        raise TooManyTokens(f"{user.get_username()} already has "
                            f"{settings.PETCAM_TOKENS_PER_USER} tokens: revoke one first.")
    ttl = default_lifetime() if lifetime == "default" else lifetime
    name = " ".join(str(name or DEFAULT_NAME).split())[:NAME_MAX_LENGTH]
    token, key = ApiToken.objects.create(user=user, expiry=ttl, name=name)
    log.info("API token %r (%s…) made for %s, expires %s", token.name, token.prefix,
             user.get_username(), token.expiry.isoformat() if token.expiry else "never")
    return token, key


def revoke_tokens(tokens: QuerySet[ApiToken], *, by: str) -> int:
    """Delete `tokens` (any user's); `by` says where, for the log. The one place a token
    revocation happens (account page, DELETE /api/auth/token/, the admin): hook what must
    follow a revocation here, e.g. closing the owners' open WebSockets."""
    revoked = list(tokens.select_related("user"))
    if not revoked:
        return 0
    ApiToken.objects.filter(pk__in=[t.pk for t in revoked]).delete()
    for token in revoked:
        log.info("API token %r (%s…) of %s revoked (%s)", token.name, token.prefix,
                 token.user.get_username(), by)
    return len(revoked)


def authenticate_key(key: str) -> tuple[object, ApiToken] | None:
    """(active user, token row) for a key, or None (unknown, expired, revoked, inactive)."""
    try:
        return TokenAuthentication().authenticate_credentials(key.encode("utf-8"))
    except (exceptions.AuthenticationFailed, UnicodeError):
        return None


def user_for_key(key: str):
    """The active user a key belongs to, or None (unknown, expired, revoked, inactive)."""
    found = authenticate_key(key)
    return found[0] if found else None
