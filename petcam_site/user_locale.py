"""The user's language and time zone, per request (issue 17).

Language: the account page's choice (accounts.models.Preferences), else what
django.middleware.locale.LocaleMiddleware took from the browser's Accept-Language.
Time zone: the account page's choice, else the browser's own zone, which every page's
petcam/app_shell.js keeps in the `petcam_tz` cookie; else UTC. Server-rendered dates
(the account page's token expiries) are shown in it. The account page's choice is also
written into every page (`request.petcam_time_zone`, templates/base.html's
data-time-zone) for the scripts' times (petcam/zone.js); without one they use the
browser's zone, which is the cookie's.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation

TZ_COOKIE = "petcam_tz"


@lru_cache(maxsize=1)
def time_zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_time_zone(name: str) -> bool:
    return name in time_zone_names()


def valid_language(code: str) -> bool:
    return code in dict(settings.LANGUAGES)


def user_preferences(user) -> tuple[str, str]:
    """(language, time zone) the user chose; "" for "as the browser says"."""
    if not getattr(user, "is_authenticated", False):
        return "", ""
    from accounts.models import Preferences  # apps are loaded by the time a request comes

    prefs = Preferences.objects.filter(user=user).values_list("language", "time_zone").first()
    return prefs or ("", "")


class UserLocaleMiddleware:
    """After AuthenticationMiddleware: activates the user's language and time zone."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language, zone = user_preferences(getattr(request, "user", None))
        if language and valid_language(language):
            translation.activate(language)
            request.LANGUAGE_CODE = language
        chosen = zone if zone and valid_time_zone(zone) else ""
        request.petcam_time_zone = chosen  # for the pages' scripts (base.html)
        zone = chosen or request.COOKIES.get(TZ_COOKIE, "")
        if zone and valid_time_zone(zone):
            timezone.activate(zoneinfo.ZoneInfo(zone))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
