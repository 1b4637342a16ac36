"""Short-lived signed HLS links, for players that cannot send an Authorization header.

GET /api/recordings/{id}/hls/link/ (token or session auth) answers a playlist URL
carrying `?sig=`; the playlist fetched with it lists its segments with the same `sig`,
so a plain player (VLC, Safari, a TV) plays the whole recording from that one URL.

`sig` is an encrypted, authenticated blob (Fernet, a key derived from SECRET_KEY):
nothing in it can be read (no recording or user id) or changed. It holds the
recording, the user, an expiry, a fingerprint of the user's password hash and, when
the link was asked for with an API token, which token. Every request with it checks
that they still hold: a password change, the token's revocation or expiry, or the
user's deactivation ends the link at once. A link lives PETCAM_HLS_LINK_SECONDS
(15 min) plus the recording's duration, so a player that starts at once can play it
to the end; every segment request is checked. The user's role and camera access are
still decided by the recording views' permission classes on every request.
"""

from __future__ import annotations

import base64
import json
import math
import time

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

SALT = "petcam.recordings.hls-link"
TOKEN_REF_LENGTH = 32  # hex characters of the token's digest (itself a hash): enough to find it


def lifetime(duration_s: float = 0.0) -> int:
    """Seconds a new link lives: the configured time plus the recording's length."""
    return int(settings.PETCAM_HLS_LINK_SECONDS) + math.ceil(max(0.0, duration_s))


def _fernet() -> Fernet:
    key = salted_hmac(SALT, "fernet key", algorithm="sha256").digest()
    return Fernet(base64.urlsafe_b64encode(key))


def credentials_fingerprint(user) -> str:
    """Changes when the password does (Django's own session check uses the same idea)."""
    return salted_hmac(SALT + ".credentials", user.password or "",
                       algorithm="sha256").hexdigest()[:32]


def sign(recording_id: int, user, token=None, *, duration_s: float = 0.0,
         now: float | None = None) -> str:
    """A `sig` for `user` and one recording; `token` is the ApiToken the link was asked
    for with (None: a session), so revoking it revokes the link."""
    issued = time.time() if now is None else now
    payload = {"r": int(recording_id), "u": user.pk, "c": credentials_fingerprint(user),
               "t": token.pk[:TOKEN_REF_LENGTH] if token is not None else None,
               "e": int(issued) + lifetime(duration_s)}
    return _fernet().encrypt(json.dumps(payload, separators=(",", ":")).encode()).decode()


def _invalid(detail: str) -> exceptions.AuthenticationFailed:
    return exceptions.AuthenticationFailed(detail, code="invalid_link")


def _token_alive(user, ref: str) -> bool:
    from accounts.models import ApiToken

    return ApiToken.objects.filter(user=user, digest__startswith=ref).filter(
        Q(expiry__isnull=True) | Q(expiry__gt=timezone.now())).exists()


def check(sig: str, recording_id: str, *, now: float | None = None):
    """The user `sig` speaks for, for that recording; AuthenticationFailed says why not."""
    try:
        payload = json.loads(_fernet().decrypt(sig.encode("ascii")))
        rec, user_id, fingerprint, token_ref, expires = (
            payload["r"], payload["u"], payload["c"], payload["t"], payload["e"])
    except (InvalidToken, UnicodeError, ValueError, KeyError, TypeError):
        raise _invalid("The link is not valid.") from None
    if (time.time() if now is None else now) > expires:
        raise exceptions.AuthenticationFailed("The link has expired: ask for a new one.",
                                              code="link_expired")
    if str(rec) != str(recording_id):
        raise _invalid("The link is for another recording.")
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise _invalid("The link's user no longer exists.")
    if not constant_time_compare(fingerprint, credentials_fingerprint(user)):
        raise _invalid("The password changed since the link was made: ask for a new one.")
    if token_ref is not None and not _token_alive(user, str(token_ref)):
        raise _invalid("The token the link was made with was revoked or expired.")
    return user


class SignedLinkAuthentication(BaseAuthentication):
    """`?sig=` of an HLS link: authenticates its user for its recording only."""

    def authenticate(self, request):
        sig = request.query_params.get("sig")
        if not sig:
            return None  # the other authentication classes take over
        view = request.parser_context.get("kwargs", {}) if request.parser_context else {}
        user = check(sig, str(view.get("pk")))
        request.petcam_link_sig = sig  # the playlist passes it on to its segments
        return user, None
