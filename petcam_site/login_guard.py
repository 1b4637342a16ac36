"""Login throttling: what a locked-out login gets, and a cap per client address.

Two limits, both answered 429 with Retry-After:
- per username and address (django-axes, AXES_* in settings): PETCAM_LOGIN_FAILURE_LIMIT
  wrong passwords lock that pair out for PETCAM_LOGIN_LOCKOUT_MINUTES;
- per address (here): PETCAM_LOGIN_ADDRESS_FAILURE_LIMIT failed logins from one address,
  whatever the usernames, refuse every login POST from it until the oldest of them is
  PETCAM_LOGIN_LOCKOUT_MINUTES old (guessing across many usernames).
API clients (POST /api/auth/token/) get JSON in the usual error shape; people on the
login page (or the admin's) get the page again with a plain explanation. The address
is REMOTE_ADDR, which petcam_site/proxy_headers.py sets from trusted proxies only.
"""

from __future__ import annotations

import logging
import math
import time

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import sync_and_async_middleware

log = logging.getLogger("petcam.auth")

TOO_MANY_ATTEMPTS = "too_many_attempts"
TOKEN_PATH = "/api/auth/token/"


def lockout_seconds() -> int:
    return max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds()))


def lockout_minutes() -> int:
    return max(1, math.ceil(lockout_seconds() / 60))


def lockout_detail() -> str:
    return (f"Too many failed logins: this account is locked for this address. Try again in "
            f"{lockout_minutes()} minutes.")


def too_many_attempts(request: HttpRequest, detail: str, retry_after: int, *,
                      whole_address: bool = False) -> HttpResponse:
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"error": TOO_MANY_ATTEMPTS, "detail": detail},
                                              status=429)
    else:
        response = render(request, "login.html",
                          {"locked_out": True, "whole_address": whole_address,
                           "lockout_minutes": max(1, math.ceil(retry_after / 60))}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def lockout_response(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """axes' AXES_LOCKOUT_CALLABLE; axes passes (request, response?, credentials?) and its
    async middleware passes them shifted, so nothing but the request is used."""
    log.warning("login locked out: %s from %s", request.path, request.META.get("REMOTE_ADDR"))
    return too_many_attempts(request, lockout_detail(), lockout_seconds())


# --- the per-address cap ------------------------------------------------------------------


def _key(address: str) -> str:
    return f"petcam:login-failures:{address}"


def _recent(address: str, now: float) -> list[float]:
    window = lockout_seconds()
    return [t for t in cache.get(_key(address), []) if t > now - window]


@receiver(user_login_failed, dispatch_uid="petcam-login-address-failures")
def count_address_failure(sender, credentials=None, request=None, **kwargs) -> None:
    """Every failed login (page, admin, token endpoint, a locked-out try too) counts
    against its address. Times are kept, so the cap slides instead of resetting."""
    address = request.META.get("REMOTE_ADDR") if request is not None else None
    if not address:
        return
    now = time.time()
    limit = settings.PETCAM_LOGIN_ADDRESS_FAILURE_LIMIT
    recent = [*_recent(address, now), now][-limit:]
    cache.set(_key(address), recent, timeout=lockout_seconds())
    if len(recent) == limit:
        log.warning("login: %d failed logins from %s in %d minutes: its logins are refused "
                    "for a while", limit, address, lockout_minutes())


def address_retry_after(address: str) -> int | None:
    """Seconds until `address` may try again, or None if it is under the cap."""
    now = time.time()
    recent = _recent(address, now)
    if len(recent) < settings.PETCAM_LOGIN_ADDRESS_FAILURE_LIMIT:
        return None
    return max(1, math.ceil(recent[0] + lockout_seconds() - now))


def _login_paths() -> tuple[str, ...]:
    return (settings.LOGIN_URL, reverse("admin:login"), TOKEN_PATH)


def _refusal(request: HttpRequest) -> HttpResponse | None:
    if request.method != "POST" or request.path not in _login_paths():
        return None
    address = request.META.get("REMOTE_ADDR", "")
    wait = address_retry_after(address)
    if wait is None:
        return None
    return too_many_attempts(
        request, f"Too many failed logins from this address. Try again in "
                 f"{max(1, math.ceil(wait / 60))} minutes.", wait, whole_address=True)


@sync_and_async_middleware
def address_guard(get_response):
    """Refuses login POSTs from an address over the cap before any password is checked."""
    if iscoroutinefunction(get_response):
        async def middleware(request):
            if request.method == "POST":  # the cache is only asked for logins
                refused = await sync_to_async(_refusal)(request)
                if refused is not None:
                    return refused
            return await get_response(request)
    else:
        def middleware(request):
            refused = _refusal(request)
            return refused if refused is not None else get_response(request)
    return middleware
