"""API tokens: the mobile endpoint (POST/DELETE /api/auth/token/) and the account page.

A user holds several named tokens (accounts/models.py: hashed by django-rest-knox,
each with an expiry). A key is shown once, right after it is made, and never again:
the database has only its digest. Every revocation goes through
accounts.tokens.revoke_tokens(). Wrong passwords on POST /api/auth/token/ count towards
the login lockouts (petcam_site/login_guard.py); a locked-out client gets 429
too_many_attempts with Retry-After.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_logged_in
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from rest_framework import exceptions, parsers, permissions, renderers, serializers, status
from rest_framework.authtoken import serializers as drf_token_serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import NAME_MAX_LENGTH, ApiToken, Preferences
from accounts.tokens import TooManyTokens, create_token, live_tokens, revoke_tokens
from events.models import known_classes
from petcam_site.login_guard import TOO_MANY_ATTEMPTS, lockout_detail, lockout_seconds
from petcam_site.parsers import JSONParser
from petcam_site.permissions import VIEW_RECORDINGS, allowed_camera_slugs, visible_camera_slugs
from petcam_site.user_locale import time_zone_names, valid_language, valid_time_zone

log = logging.getLogger("petcam.auth")

NEW_KEY_SESSION = "petcam_new_token"  # (digest, key): shown once on the next GET, then dropped
LIFETIME_DAYS = (1, 7, 30, 90, 365)  # the account page's choices


class TooManyAttempts(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = TOO_MANY_ATTEMPTS

    def __init__(self, detail: str, wait: int) -> None:
        super().__init__(detail)
        self.wait = wait  # DRF's handler turns it into Retry-After


class TokenLimitReached(exceptions.PermissionDenied):
    default_code = "too_many_tokens"


class AuthTokenSerializer(drf_token_serializers.AuthTokenSerializer):
    """username + password, and an optional name for the new token (e.g. the phone's)."""

    # Named like DRF's serializer, so the OpenAPI component stays AuthTokenRequest; the
    # password is checked by Django's backends, django-axes first.

    name = serializers.CharField(required=False, allow_blank=True, max_length=NAME_MAX_LENGTH,
                                 help_text="A name for the token, shown on the account page.")


class TokenEndpoint(APIView):
    """POST: username + password -> a new token (no login needed; throttled).
    DELETE: revoke the token the call is made with (with a session: all of the user's)."""

    # petcam's JSON parser: deep nesting and lone surrogates are 400, not 500
    parser_classes = [parsers.FormParser, parsers.MultiPartParser, JSONParser]
    renderer_classes = [renderers.JSONRenderer]
    throttle_classes: list = []  # petcam_site/login_guard.py and axes do the throttling

    def _method(self) -> str | None:
        # None while the view has no request yet: drf-spectacular's mock request is
        # initialized (get_authenticators) before it is set on the view.
        return getattr(self.request, "method", None)

    def get_authenticators(self):
        # POST takes credentials only: a stale token header must not make it a 401.
        if self._method() == "DELETE":
            return [auth() for auth in self.settings.DEFAULT_AUTHENTICATION_CLASSES]
        return []

    def get_permissions(self):
        if self._method() == "DELETE":
            return [permissions.IsAuthenticated()]
        return [permissions.AllowAny()]

    def post(self, request, *args, **kwargs):
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        try:
            serializer.is_valid(raise_exception=True)
        except exceptions.ValidationError:
            # axes marks the request it was handed (DRF's) once the pair is locked out
            if getattr(request, "axes_locked_out", False):
                raise TooManyAttempts(lockout_detail(), lockout_seconds()) from None
            raise
        user = serializer.validated_data["user"]
        try:
            token, key = create_token(user, serializer.validated_data.get("name", ""))
        except TooManyTokens as exc:
            raise TokenLimitReached(str(exc)) from None
        # A login like the page's: axes resets the failure count, last_login is updated.
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        return Response({"token": key, "name": token.name,
                         "expiry": token.expiry.isoformat() if token.expiry else None})

    def delete(self, request, *args, **kwargs):
        if isinstance(request.auth, ApiToken):
            revoke_tokens(ApiToken.objects.filter(pk=request.auth.pk), by="DELETE over the API")
        else:
            revoke_tokens(ApiToken.objects.filter(user=request.user),
                          by="DELETE over the API with a session")
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- the account page ----------------------------------------------------------------------


def _lifetime_choices() -> list[tuple[str, str]]:
    choices = [(str(d), ngettext("%(n)d day", "%(n)d days", d) % {"n": d})
               for d in LIFETIME_DAYS]
    if settings.PETCAM_TOKEN_TTL_DAYS <= 0:  # the operator allows tokens without expiry
        choices.append(("never", _("never expires")))
    return choices


def _default_lifetime() -> str:
    days = settings.PETCAM_TOKEN_TTL_DAYS
    if days <= 0:
        return "never"
    return str(int(days)) if int(days) in LIFETIME_DAYS and days == int(days) else "30"


def _create_from_page(request: HttpRequest) -> HttpResponse | None:
    choice = request.POST.get("lifetime") or _default_lifetime()
    if choice not in dict(_lifetime_choices()):
        return HttpResponse("Unknown lifetime.", status=400, content_type="text/plain")
    lifetime = None if choice == "never" else timedelta(days=int(choice))
    try:
        token, key = create_token(request.user, request.POST.get("name", ""), lifetime)
    except TooManyTokens as exc:
        return HttpResponse(str(exc), status=409, content_type="text/plain")
    request.session[NEW_KEY_SESSION] = [token.pk, key]
    return None


def _save_preferences(request: HttpRequest) -> HttpResponse | None:
    """language and time_zone: a known one, or "" for "as the browser says"."""
    language = request.POST.get("language", "")
    zone = request.POST.get("time_zone", "")
    if language and not valid_language(language):
        return HttpResponse("Unknown language.", status=400, content_type="text/plain")
    if zone and not valid_time_zone(zone):
        return HttpResponse("Unknown time zone.", status=400, content_type="text/plain")
    Preferences.objects.update_or_create(user=request.user,
                                         defaults={"language": language, "time_zone": zone})
    return None


@login_required
@never_cache  # the page may show a new key
@require_http_methods(["GET", "POST"])
def account_page(request: HttpRequest) -> HttpResponse:
    """GET: the user's roles, cameras, tokens, language and time zone. POST
    action=preferences (language, time_zone: "" follows the browser) | create (name, lifetime) |
    confirm_revoke (token=<id>) / confirm_revoke_all: a page asking first, whose button posts
    revoke (token=<id>) / revoke_all."""
    user = request.user
    if request.method == "POST":
        action = request.POST.get("action", "")
        mine = ApiToken.objects.filter(user=user)
        if action == "create":
            refused = _create_from_page(request)
            if refused is not None:
                return refused
        elif action == "confirm_revoke":  # a page that asks first; its form posts "revoke"
            token = mine.filter(pk=request.POST.get("token", "")).first()
            if token is None:  # gone already, or someone else's
                return redirect("account")
            return render(request, "account_revoke.html", {"token": token})
        elif action == "confirm_revoke_all":
            return render(request, "account_revoke.html", {"count": live_tokens(user).count()})
        elif action == "revoke":
            revoke_tokens(mine.filter(pk=request.POST.get("token", "")),
                          by="on the account page")
        elif action == "revoke_all":
            revoke_tokens(mine, by="all, on the account page")
        elif action == "preferences":
            refused = _save_preferences(request)
            if refused is not None:
                return refused
        else:
            return HttpResponse("Unknown action.", status=400, content_type="text/plain")
        return redirect("account")  # POST-redirect-GET: a reload does not repeat the action
    tokens = list(live_tokens(user))
    new = request.session.pop(NEW_KEY_SESSION, None)
    new_key = new[1] if new and any(t.pk == new[0] for t in tokens) else None
    allowed = allowed_camera_slugs(user)
    prefs = Preferences.objects.filter(user=user).first()
    return render(request, "account.html", {
        "languages": settings.LANGUAGES,
        "language": prefs.language if prefs else "",
        "time_zones": sorted(time_zone_names()),
        "time_zone": prefs.time_zone if prefs else "",
        "tokens": tokens,
        "new_key": new_key,
        "lifetimes": _lifetime_choices(),
        "default_lifetime": _default_lifetime(),
        "name_max_length": NAME_MAX_LENGTH,
        "roles": sorted(user.groups.values_list("name", flat=True)),
        "cameras": visible_camera_slugs(user),
        "limited": allowed is not None,
        # Phone notifications (events/push.py): for those who may see events.
        "can_notify": user.has_perm(VIEW_RECORDINGS),
        "notify_classes": known_classes(),
    })
