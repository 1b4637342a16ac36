"""Phone notifications: every event start goes as a Web Push to the subscribed browsers.

Registered as an event hook (events/dispatch.py), so it runs in the media worker after
the row is written. Each subscription's owner must still be allowed to see events of that
camera; the subscription's cameras, classes and quiet hours choose further. The POSTs run
in threads (the worker's loop never waits on a push service), each with a timeout; a
404 or 410 means the browser unsubscribed: the subscription is deleted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from datetime import datetime, time
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from petcam_site.permissions import VIEW_RECORDINGS, can_see_camera

from . import vapid_keys, webpush
from .models import PushSubscription
from .webhook_target import TargetRefused, check_literal, check_url, resolve_allowed

log = logging.getLogger("petcam.events")

GONE = (404, 410)


class EndpointRefused(ValueError):
    pass


def check_endpoint(url: object, *, resolve: bool = False) -> str:
    """A push service URL petcam will POST to: https on a public host (tests may allow
    http on loopback with PETCAM_PUSH_ALLOW_LOCAL). The name is resolved (every address
    must be public) only when sending: a subscription is checked by its literal host."""
    if not isinstance(url, str) or not url or len(url) > 1000:
        raise EndpointRefused("endpoint must be a URL of at most 1000 characters")
    allow_local = bool(settings.PETCAM_PUSH_ALLOW_LOCAL)
    if urlsplit(url).scheme != "https" and not allow_local:
        raise EndpointRefused("endpoint must be an https URL (a browser's push service)")
    try:
        check_url(url)
        check_literal(url, allow_local)
        if resolve:
            resolve_allowed(url, allow_local)
    except TargetRefused as exc:
        raise EndpointRefused(str(exc).replace("webhook", "push endpoint")
                              .replace("Webhooks", "Push endpoints")) from None
    return url


def in_quiet_hours(start: time | None, end: time | None, zone: str, now: datetime) -> bool:
    """`now` (aware) falls in [start, end) on the subscriber's clock; start > end spans
    midnight; no start or end: never quiet."""
    if start is None or end is None or start == end:
        return False
    local = now.astimezone(ZoneInfo(zone)).time()
    return start <= local < end if start < end else (local >= start or local < end)


def wants(sub: PushSubscription, event: dict, now: datetime) -> bool:
    if sub.cameras and event["camera"] not in sub.cameras:
        return False
    if sub.classes and event["class_name"] not in sub.classes:
        return False
    return not in_quiet_hours(sub.quiet_start, sub.quiet_end, sub.timezone, now)


def payload(event: dict, camera_name: str) -> dict:
    """The notification: its picture is the event's own snapshot (made at the start), or
    the camera's live still when the start frame could not be decoded; a click opens the
    event on the events page. Both are site paths: the service worker fetches the picture
    with the user's session and hands the notification a data: URL (the notification's
    own image fetch would go without the cookie), so no signed link is needed."""
    what = event["class_name"].capitalize()
    when = datetime.fromisoformat(event["started_at"]).strftime("%H:%M:%S UTC")
    return {"title": f"{what} in the {camera_name}" if camera_name else what,
            "body": f"Seen at {when} ({round(event['peak_confidence'] * 100)} % sure)",
            "image": event.get("snapshot_url") or f"/api/cameras/{event['camera']}/still/",
            "url": f"/events/#event-{event['id']}", "event": event["id"],
            "tag": f"petcam-event-{event['id']}"}


def _recipients(event: dict) -> tuple[list[PushSubscription], str]:
    from streaming.models import Camera

    now = timezone.now()
    allowed: dict[int, bool] = {}
    users = get_user_model().objects.filter(is_active=True)
    chosen = []
    for sub in PushSubscription.objects.filter(user__in=users).select_related("user"):
        if sub.user_id not in allowed:
            allowed[sub.user_id] = (sub.user.has_perm(VIEW_RECORDINGS)
                                    and can_see_camera(sub.user, event["camera"]))
        if allowed[sub.user_id] and wants(sub, event, now):
            chosen.append(sub)
    camera = Camera.objects.filter(slug=event["camera"]).values_list("name", flat=True).first()
    return chosen, (camera or event["camera"]).lower()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def send(sub: PushSubscription, data: dict, timeout: float) -> int:
    """One encrypted, VAPID-signed POST; the push service's HTTP status."""
    check_endpoint(sub.endpoint, resolve=True)
    body = webpush.encrypt(json.dumps(data, separators=(",", ":")).encode(),
                           webpush.b64url_decode(sub.p256dh), webpush.b64url_decode(sub.auth))
    request = urllib.request.Request(sub.endpoint, data=body, method="POST", headers={
        "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
        "TTL": str(int(settings.PETCAM_PUSH_TTL_SECONDS)), "Urgency": "high",
        "Authorization": webpush.vapid_authorization(
            vapid_keys.private_key(), sub.endpoint, settings.PETCAM_VAPID_SUBJECT)})
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(65536)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def _deliver(sub: PushSubscription, data: dict) -> None:
    timeout = float(settings.PETCAM_PUSH_TIMEOUT_SECONDS)
    try:
        code = await asyncio.wait_for(asyncio.to_thread(send, sub, data, timeout),
                                      timeout + 1)
    except (OSError, ValueError, TimeoutError) as exc:
        log.warning("push to %s (user %s) failed: %s", sub.label or sub.pk, sub.user_id, exc)
        return
    if code in GONE:
        await database_sync_to_async(PushSubscription.objects.filter(pk=sub.pk).delete)()
        log.info("push subscription %s of user %s is gone (%s): deleted", sub.pk,
                 sub.user_id, code)
    elif not 200 <= code < 300:
        log.warning("push to %s (user %s): HTTP %s", sub.label or sub.pk, sub.user_id, code)


async def notify(kind: str, event: dict) -> None:
    """The event hook: a notification per wanting, allowed subscription, at the start."""
    if kind != "started":
        return
    subs, camera_name = await database_sync_to_async(_recipients)(event)
    if subs:
        data = payload(event, camera_name)
        await asyncio.gather(*(_deliver(sub, data) for sub in subs))
