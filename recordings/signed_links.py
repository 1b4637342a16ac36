"""Short-lived signed HLS links, for players that cannot send an Authorization header.

GET /api/recordings/{id}/hls/link/ (token or session auth) answers a playlist URL
carrying `?sig=`: a Django-signed "<recording id>:<user id>", valid for
PETCAM_HLS_LINK_SECONDS (default 2 h, enough to watch a long recording; every
segment request is checked, so the link must outlive the playback). The playlist
fetched with it lists its segments with the same `sig`, so a plain player (VLC,
Safari, a TV) plays the whole recording from that one URL.

The signature only says who asks: the user is loaded and the recording views' own
permission classes still decide (role, per-camera access) on every request, so a
link stops working when the user loses access. A link opens one recording only.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

SALT = "petcam.recordings.hls-link"


def lifetime() -> int:
    return int(settings.PETCAM_HLS_LINK_SECONDS)


def sign(recording_id: int, user_id: int) -> str:
    return signing.TimestampSigner(salt=SALT).sign(f"{recording_id}:{user_id}")


class SignedLinkAuthentication(BaseAuthentication):
    """`?sig=` of an HLS link: authenticates its user for its recording only."""

    def authenticate(self, request):
        sig = request.query_params.get("sig")
        if not sig:
            return None  # the other authentication classes take over
        try:
            value = signing.TimestampSigner(salt=SALT).unsign(sig, max_age=lifetime())
        except signing.SignatureExpired:
            raise exceptions.AuthenticationFailed("The link has expired: ask for a new one.",
                                                  code="link_expired") from None
        except signing.BadSignature:
            raise exceptions.AuthenticationFailed("The link is not valid.",
                                                  code="invalid_link") from None
        recording_id, _, user_id = value.partition(":")
        view = request.parser_context.get("kwargs", {}) if request.parser_context else {}
        if str(view.get("pk")) != recording_id:
            raise exceptions.AuthenticationFailed("The link is for another recording.",
                                                  code="invalid_link")
        user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
        if user is None:
            raise exceptions.AuthenticationFailed("The link's user no longer exists.",
                                                  code="invalid_link")
        request.petcam_link_sig = sig  # the playlist passes it on to its segments
        return user, None
