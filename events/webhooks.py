"""Webhooks: each rule with a URL gets every start and end of its events as a signed POST.

Registered as an event hook (events/dispatch.py), so it runs in the media worker after
the row is written. Body: {"type": "event.started" | "event.ended", "event": {...}} (the
event as the API shows it). Headers: X-Petcam-Timestamp (Unix seconds) and
X-Petcam-Signature: "sha256=" + hex HMAC-SHA256(secret, "<timestamp>.<body>"), so a
receiver checks both who sent it and that it is fresh. Failures (network, 5xx, 429) are
retried with doubling waits; every attempt is logged in a WebhookDelivery row (admin).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from .models import EventRule, WebhookDelivery
from .webhook_target import TargetForbidden, TargetRefused, resolve_allowed

log = logging.getLogger("petcam.events")

USER_AGENT = "petcam-webhook/1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect could lead to loopback
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def post(url: str, secret: str, body: bytes, timeout: float) -> int:
    """One signed POST; the HTTP status (an error status is returned, not raised)."""
    stamp = int(time.time())
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": USER_AGENT,
        "X-Petcam-Timestamp": str(stamp), "X-Petcam-Signature": sign(secret, stamp, body)})
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(65536)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _target(rule_id: int | None) -> tuple[str, str] | None:
    if rule_id is None:
        return None
    rule = EventRule.objects.filter(pk=rule_id).only("webhook_url", "webhook_secret").first()
    if rule is None or not rule.webhook_url:
        return None
    return rule.webhook_url, rule.webhook_secret


def _record(delivery_id: int | None, **fields) -> int:
    if delivery_id is None:
        return WebhookDelivery.objects.create(**fields).pk
    WebhookDelivery.objects.filter(pk=delivery_id).update(**fields)
    return delivery_id


async def deliver(kind: str, event: dict) -> None:
    """The event hook: POST to the rule's URL until it answers 2xx or attempts run out."""
    target = await database_sync_to_async(_target)(event.get("rule"))
    if target is None:
        return
    url, secret = target
    body = json.dumps({"type": f"event.{kind}", "event": event}, separators=(",", ":"),
                      sort_keys=True).encode()
    attempts = max(1, int(settings.PETCAM_WEBHOOK_MAX_ATTEMPTS))
    wait = float(settings.PETCAM_WEBHOOK_BACKOFF_SECONDS)
    allow_local = bool(settings.PETCAM_WEBHOOK_ALLOW_LOCAL)
    delivery = await database_sync_to_async(_record)(
        None, event_id=event["id"], rule_id=event["rule"], kind=kind, url=url)
    for attempt in range(1, attempts + 1):
        code, error, forbidden = None, "", False
        try:
            await asyncio.to_thread(resolve_allowed, url, allow_local)
            code = await asyncio.to_thread(post, url, secret, body,
                                           float(settings.PETCAM_WEBHOOK_TIMEOUT_SECONDS))
        except TargetRefused as exc:
            error, forbidden = str(exc), isinstance(exc, TargetForbidden)
        except (OSError, ValueError) as exc:  # refused, timed out, TLS...
            error = f"{type(exc).__name__}: {exc}"
        delivered = code is not None and 200 <= code < 300
        final = delivered or attempt == attempts or forbidden or (
            code is not None and 400 <= code < 500 and code != 429)
        status = ("delivered" if delivered else "failed") if final else "retrying"
        await database_sync_to_async(_record)(
            delivery, attempts=attempt, status=status, response_status=code,
            error=error or ("" if delivered else f"HTTP {code}"),
            finished_at=timezone.now() if final else None)
        if final:
            log.log(logging.INFO if delivered else logging.WARNING,
                    "webhook for event %s (%s) to %s: %s after %d attempt(s)%s", event["id"],
                    kind, url.split("?", 1)[0], status, attempt, f": {error or code}"
                    if not delivered else "")
            return
        await asyncio.sleep(wait)
        wait *= 2
