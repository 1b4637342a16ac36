"""API tokens: the mobile endpoint (POST/DELETE /api/auth/token/) and the account page.

A user has at most one token (DRF's authtoken): the page shows it, creates,
regenerates and revokes it. A new key is shown once, right after it is made.
Wrong passwords on POST /api/auth/token/ count towards the login lockout
(django-axes, see settings); a locked-out client gets 429 too_many_attempts.
"""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_logged_in
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from rest_framework import exceptions, parsers, permissions, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response

from petcam_site.login_guard import TOO_MANY_ATTEMPTS, lockout_detail
from petcam_site.parsers import JSONParser
from petcam_site.permissions import allowed_camera_slugs, visible_camera_slugs

log = logging.getLogger("petcam.auth")

NEW_KEY_SESSION = "petcam_new_token"  # shown once on the next GET, then dropped
KEY_PREFIX_SHOWN = 6


class TooManyAttempts(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = TOO_MANY_ATTEMPTS


class TokenEndpoint(ObtainAuthToken):
    """POST: username + password -> {"token"} (no login needed; throttled).
    DELETE: revoke the caller's own token (token or session login) -> 204."""

    # ObtainAuthToken's own list, with our JSON parser (deep nesting: 400, not 500)
    parser_classes = (parsers.FormParser, parsers.MultiPartParser, JSONParser)

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
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except exceptions.ValidationError:
            # axes marks the request it was handed (DRF's) once the pair is locked out
            if getattr(request, "axes_locked_out", False):
                raise TooManyAttempts(lockout_detail()) from None
            raise
        user = serializer.validated_data["user"]
        # A login like the page's: axes resets the failure count, last_login is updated.
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})

    def delete(self, request, *args, **kwargs):
        deleted, _ = Token.objects.filter(user=request.user).delete()
        if deleted:
            log.info("API token of %s revoked over the API", request.user.username)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- the account page ----------------------------------------------------------------------


@login_required
@never_cache  # the page may show a new key
@require_http_methods(["GET", "POST"])
def account_page(request: HttpRequest) -> HttpResponse:
    """GET: the user's roles, cameras and token. POST action=create|regenerate|revoke."""
    user = request.user
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action in ("create", "regenerate"):
            if action == "regenerate":
                Token.objects.filter(user=user).delete()
            token, created = Token.objects.get_or_create(user=user)
            if created:
                request.session[NEW_KEY_SESSION] = token.key
                log.info("API token of %s %sd on the account page", user.username, action)
        elif action == "revoke":
            if Token.objects.filter(user=user).delete()[0]:
                log.info("API token of %s revoked on the account page", user.username)
        else:
            return HttpResponse("Unknown action.", status=400, content_type="text/plain")
        return redirect("account")  # POST-redirect-GET: a reload does not repeat the action
    token = Token.objects.filter(user=user).first()
    new_key = request.session.pop(NEW_KEY_SESSION, None)
    if token is None or new_key != token.key:
        new_key = None
    allowed = allowed_camera_slugs(user)
    return render(request, "account.html", {
        "token": token,
        "new_key": new_key,
        "key_prefix": token.key[:KEY_PREFIX_SHOWN] if token else "",
        "roles": sorted(user.groups.values_list("name", flat=True)),
        "cameras": visible_camera_slugs(user),
        "limited": allowed is not None,
    })
