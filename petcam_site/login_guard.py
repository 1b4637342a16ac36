"""What a locked-out login gets (django-axes calls this, see AXES_* in settings).

API clients (POST /api/auth/token/) get 429 JSON in the usual error shape; people on
the login page (or the admin's) get the page again with a plain explanation.
"""

from __future__ import annotations

import logging
import math

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

log = logging.getLogger("petcam.auth")

TOO_MANY_ATTEMPTS = "too_many_attempts"


def lockout_minutes() -> int:
    return max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_detail() -> str:
    return (f"Too many failed logins: this account is locked for this address. Try again in "
            f"{lockout_minutes()} minutes.")


def lockout_response(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """axes' AXES_LOCKOUT_CALLABLE; axes passes (request, response?, credentials?) and its
    async middleware passes them shifted, so nothing but the request is used."""
    log.warning("login locked out: %s from %s", request.path, request.META.get("REMOTE_ADDR"))
    if request.path.startswith("/api/"):
        response = JsonResponse({"error": TOO_MANY_ATTEMPTS, "detail": lockout_detail()},
                                status=429)
    else:
        response = render(request, "login.html",
                          {"locked_out": True, "lockout_minutes": lockout_minutes()}, status=429)
    response["Retry-After"] = str(lockout_minutes() * 60)
    return response
