"""Webhooks: each rule with a URL gets every start and end of its events as a signed POST.

Registered as an event hook (events/dispatch.py), so it runs in the media worker after
the row is written. Body: {"type": "event.started" | "event.ended", "event": {...}} (the
event as the API shows it). Headers: X-Petcam-Timestamp (Unix seconds),
X-Petcam-Signature: "sha256=" + hex HMAC-SHA256(secret, "<timestamp>.<body>"), so a
receiver checks both who sent it and that it is fresh, and X-Petcam-Delivery: a UUID that
stays the same on every attempt of one delivery, so a receiver can drop a repeat.

Durable: the delivery is stored (WebhookDelivery, with its body) before the first
attempt, and each failure (network, 5xx, 429) stores when the next attempt is due, with
doubling waits. A worker task resumes due deliveries, including those a stopped worker
left, until the attempts (PETCAM_WEBHOOK_MAX_ATTEMPTS) or the age
(PETCAM_WEBHOOK_MAX_AGE_SECONDS) run out. Each attempt first claims the row (one atomic
update), so two worker processes never send the same attempt.

The host is resolved once per attempt, every address checked (events/webhook_target.py),
and the connection goes to a checked address (events/webhook_http.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from . import webhook_http
from .models import EventRule, WebhookDelivery
from .webhook_target import TargetForbidden, TargetRefused, resolve_allowed

log = logging.getLogger("petcam.events")

USER_AGENT = "petcam-webhook/1"
RESUME_INTERVAL = 15.0  # s between looks for due deliveries nobody is driving
LEASE_SLACK = 30.0  # s beyond the request timeout before a claimed attempt counts as lost
_OPEN = (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def post(url: str, addresses: list[str], secret: str, body: bytes, delivery_id: str,
         timeout: float) -> int:
    """One signed POST to a checked address; the HTTP status (an error status is
    returned, not raised)."""
    stamp = int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "X-Petcam-Timestamp": str(stamp), "X-Petcam-Signature": sign(secret, stamp, body),
               "X-Petcam-Delivery": delivery_id}
    return webhook_http.post(url, addresses, headers, body, timeout)


# --- rows (sync ORM, through database_sync_to_async) -------------------------------------

@dataclass
class Attempt:
    """A claimed attempt: the row is ours until the lease (timeout + slack) runs out."""

    pk: int
    event_id: int | None
    kind: str
    url: str
    body: bytes
    delivery_id: str
    number: int  # 1 for the first attempt
    secret: str | None  # None: the rule or its webhook is gone
    lease: datetime  # the row's next_attempt_at while the attempt is ours


def create_delivery(kind: str, event: dict) -> tuple[int, datetime] | None:
    """The delivery row, due now; None when the event's rule has no webhook."""
    rule_id = event.get("rule")
    if rule_id is None:
        return None
    rule = EventRule.objects.filter(pk=rule_id).only("webhook_url").first()
    if rule is None or not rule.webhook_url:
        return None
    body = json.dumps({"type": f"event.{kind}", "event": event}, separators=(",", ":"),
                      sort_keys=True)
    due = timezone.now()
    row = WebhookDelivery.objects.create(event_id=event["id"], rule_id=rule_id, kind=kind,
                                         url=rule.webhook_url, body=body, next_attempt_at=due)
    return row.pk, due


def due_deliveries(now: datetime, limit: int = 100) -> list[tuple[int, datetime]]:
    return list(WebhookDelivery.objects.filter(status__in=_OPEN, next_attempt_at__lte=now)
                .order_by("next_attempt_at", "id").values_list("id", "next_attempt_at")[:limit])


def claim(pk: int, due: datetime) -> Attempt | None:
    """Take the attempt due at `due` (None if another process took it, or it is over).
    A delivery older than the max age is failed here instead."""
    now = timezone.now()
    lease = now + timedelta(seconds=float(settings.PETCAM_WEBHOOK_TIMEOUT_SECONDS)
                            + LEASE_SLACK)
    taken = WebhookDelivery.objects.filter(pk=pk, status__in=_OPEN, next_attempt_at=due).update(
        next_attempt_at=lease, attempts=F("attempts") + 1)
    if not taken:
        return None
    row = WebhookDelivery.objects.select_related("rule").get(pk=pk)
    max_age = float(settings.PETCAM_WEBHOOK_MAX_AGE_SECONDS)
    if max_age > 0 and row.created_at < now - timedelta(seconds=max_age):
        finish(pk, lease, WebhookDelivery.Status.FAILED, attempts=row.attempts - 1,
               error=f"gave up: not delivered within {max_age:g} s")
        return None
    rule = row.rule
    secret = rule.webhook_secret if rule is not None and rule.webhook_url else None
    return Attempt(pk, row.event_id, row.kind, row.url, row.body.encode(),
                   str(row.delivery_id), row.attempts, secret, lease)


# Both only while the lease is still ours: an attempt that outlived it (a server that
# kept it far beyond the timeout) leaves the row to whoever took it over.
def finish(pk: int, lease: datetime, status: str, **fields) -> None:
    WebhookDelivery.objects.filter(pk=pk, next_attempt_at=lease).update(
        status=status, next_attempt_at=None, finished_at=timezone.now(), **fields)


def retry_at(pk: int, lease: datetime, wait: float, **fields) -> datetime | None:
    due = timezone.now() + timedelta(seconds=wait)
    kept = WebhookDelivery.objects.filter(pk=pk, next_attempt_at=lease).update(
        status=WebhookDelivery.Status.RETRYING, next_attempt_at=due, **fields)
    return due if kept else None


# --- attempts (on the worker's loop) -----------------------------------------------------

async def attempt(a: Attempt) -> datetime | None:
    """Send once and store the outcome; when the next attempt is due, None if it is over."""
    if a.secret is None:
        await database_sync_to_async(finish)(a.pk, a.lease, WebhookDelivery.Status.FAILED,
                                             error="the rule or its webhook was removed")
        return None
    code, error, forbidden = None, "", False
    try:
        addresses = await asyncio.to_thread(resolve_allowed, a.url,
                                            bool(settings.PETCAM_WEBHOOK_ALLOW_LOCAL))
        code = await asyncio.to_thread(post, a.url, addresses, a.secret, a.body,
                                       a.delivery_id,
                                       float(settings.PETCAM_WEBHOOK_TIMEOUT_SECONDS))
    except TargetRefused as exc:
        error, forbidden = str(exc), isinstance(exc, TargetForbidden)
    except (OSError, ValueError) as exc:  # refused, timed out, TLS...
        error = f"{type(exc).__name__}: {exc}"
    delivered = code is not None and 200 <= code < 300
    error = error or ("" if delivered else f"HTTP {code}")
    final = delivered or forbidden or a.number >= max(1, int(
        settings.PETCAM_WEBHOOK_MAX_ATTEMPTS)) or (
        code is not None and 400 <= code < 500 and code != 429)
    if not final:
        wait = float(settings.PETCAM_WEBHOOK_BACKOFF_SECONDS) * 2 ** (a.number - 1)
        return await database_sync_to_async(retry_at)(a.pk, a.lease, wait,
                                                      response_status=code, error=error)
    status = WebhookDelivery.Status.DELIVERED if delivered else WebhookDelivery.Status.FAILED
    await database_sync_to_async(finish)(a.pk, a.lease, status, response_status=code,
                                         error=error)
    log.log(logging.INFO if delivered else logging.WARNING,
            "webhook %s for event %s (%s) to %s: %s after %d attempt(s)%s", a.delivery_id,
            a.event_id, a.kind, a.url.split("?", 1)[0], status, a.number,
            "" if delivered else f": {error}")
    return None


async def drive(pk: int, due: datetime) -> None:
    """Attempt the delivery at each due time until it is over, or another process took
    an attempt (it carries on from there)."""
    while True:
        wait = (due - timezone.now()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        claimed = await database_sync_to_async(claim)(pk, due)
        if claimed is None:
            return
        next_due = await attempt(claimed)
        if next_due is None:
            return
        due = next_due


async def deliver(kind: str, event: dict) -> None:
    """The event hook: store the delivery, then attempt it until it is over. If the
    worker stops meanwhile, `run` in the next worker carries on."""
    made = await database_sync_to_async(create_delivery)(kind, event)
    if made is not None:
        await drive(*made)


async def resume_due(driving: dict[int, asyncio.Task]) -> int:
    """Start driving every due delivery not driven here already; how many were started."""
    started = 0
    for pk, due in await database_sync_to_async(due_deliveries)(timezone.now()):
        if pk in driving:
            continue
        task = asyncio.get_running_loop().create_task(drive(pk, due), name=f"webhook-{pk}")
        driving[pk] = task
        task.add_done_callback(lambda _t, pk=pk: driving.pop(pk, None))
        started += 1
    return started


async def run() -> None:
    """Worker task: deliveries a stopped worker left (at once), then any attempt that is
    due and driven by nobody (its process died mid-attempt) every RESUME_INTERVAL s."""
    driving: dict[int, asyncio.Task] = {}
    try:
        while True:
            try:
                started = await resume_due(driving)
                if started:
                    log.info("webhooks: resumed %d due delivery attempt(s)", started)
            except Exception:
                log.exception("webhooks: due deliveries not resumed; trying again")
            await asyncio.sleep(RESUME_INTERVAL)
    finally:
        for task in driving.values():
            task.cancel()
