"""Webhook deliveries survive a worker stop, and go only to the addresses checked.

Durable: a receiver that fails once, the worker stopping while the delivery waits for its
retry, a worker starting again (two at once, as with one worker process per camera): the
delivery arrives exactly once, signed, with the same X-Petcam-Delivery id on every
attempt. A delivery older than the max age is given up, not sent.

DNS rebinding: the resolver is the boundary (a fake one answers for made-up names); the
name is resolved once per attempt, every address is checked, and the request goes to the
checked address with the name in the Host header and in TLS (SNI and certificate check).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from events import webhook_target, webhooks
from events.models import EventRule, WebhookDelivery
from tests.support.event_rows import webhook_event
from tests.support.mosquitto import make_tls
from tests.support.processes import until
from tests.support.roles import make_user
from tests.support.webhook_receiver import Receiver

SECRET = "s3cret-s3cret-s3cret"


@pytest.fixture
def fast(settings, transactional_db, monkeypatch):
    settings.PETCAM_WEBHOOK_ALLOW_LOCAL = True
    settings.PETCAM_WEBHOOK_BACKOFF_SECONDS = 0.5
    settings.PETCAM_WEBHOOK_MAX_ATTEMPTS = 5
    monkeypatch.setattr(webhooks, "RESUME_INTERVAL", 0.1)
    return settings


@pytest.fixture
def receiver():
    r = Receiver([])
    yield r
    r.close()


def event_for(url: str) -> dict:
    return webhook_event(url, SECRET)


def delivery() -> WebhookDelivery:
    return WebhookDelivery.objects.get()


def status() -> str | None:
    row = WebhookDelivery.objects.first()
    return row.status if row else None


async def stop(*tasks: asyncio.Task) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.asyncio
async def test_a_retry_cut_by_a_worker_stop_arrives_once_after_the_restart(fast, receiver):
    receiver.statuses = [500]
    event = await asyncio.to_thread(event_for, receiver.url)
    # The first worker: the event hook sends, gets a 500, waits for its retry...
    hook = asyncio.create_task(webhooks.deliver("started", event))
    await until(lambda: status() == "retrying", 10, "the first attempt to fail")
    await stop(hook)  # ... and the worker stops meanwhile.
    await asyncio.sleep(1.0)  # well past the retry time: nobody sends it
    assert receiver.answered == [500]
    row = await asyncio.to_thread(delivery)
    assert row.status == "retrying" and row.next_attempt_at is not None and row.body

    # Two worker processes start (one per camera): the delivery is resumed once.
    workers = [asyncio.create_task(webhooks.run()) for _ in range(2)]
    try:
        await until(lambda: status() == "delivered", 10, "the resumed delivery")
        await asyncio.sleep(0.5)  # several resume passes later: nothing more is sent
    finally:
        await stop(*workers)
    assert receiver.answered == [500, 200]
    row = await asyncio.to_thread(delivery)
    assert (row.attempts, row.response_status, row.next_attempt_at) == (2, 200, None)
    ids = {headers["X-Petcam-Delivery"] for headers, _ in receiver.requests}
    assert ids == {str(row.delivery_id)}  # the receiver can tell the retry is the same
    headers, body = receiver.requests[-1]
    stamp = headers["X-Petcam-Timestamp"]
    want = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-Petcam-Signature"] == f"sha256={want}"
    assert json.loads(body) == {"type": "event.started", "event": event}
    assert body == receiver.requests[0][1]  # the stored body, byte for byte


@pytest.mark.asyncio
async def test_a_delivery_older_than_the_max_age_is_given_up(fast, receiver):
    fast.PETCAM_WEBHOOK_MAX_AGE_SECONDS = 60
    event = await asyncio.to_thread(event_for, receiver.url)
    made = await asyncio.to_thread(webhooks.create_delivery, "ended", event)
    assert made is not None
    await asyncio.to_thread(lambda: WebhookDelivery.objects.update(
        created_at=datetime.now(UTC) - timedelta(minutes=5)))
    worker = asyncio.create_task(webhooks.run())
    try:
        await until(lambda: status() == "failed", 10, "the delivery given up")
    finally:
        await stop(worker)
    row = await asyncio.to_thread(delivery)
    assert receiver.requests == [] and row.attempts == 0 and row.next_attempt_at is None
    assert "not delivered within 60 s" in row.error


@pytest.mark.asyncio
async def test_a_removed_webhook_ends_its_pending_deliveries(fast, receiver):
    event = await asyncio.to_thread(event_for, receiver.url)
    await asyncio.to_thread(webhooks.create_delivery, "ended", event)
    await asyncio.to_thread(lambda: EventRule.objects.update(webhook_url=""))
    worker = asyncio.create_task(webhooks.run())
    try:
        await until(lambda: status() == "failed", 10, "the delivery ended")
    finally:
        await stop(worker)
    assert receiver.requests == [] and "removed" in (await asyncio.to_thread(delivery)).error


# --- DNS rebinding --------------------------------------------------------------------------

class Resolver:
    """Answers for made-up names: `first` at the first lookup, `later` after (a name
    whose owner changes its answer between the check and the connect)."""

    def __init__(self, first: list[str], later: list[str] | None = None) -> None:
        self.first, self.later = first, later if later is not None else first
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.first if len(self.lookups) == 1 else self.later


def test_a_name_that_resolves_to_loopback_is_refused(fast, receiver, monkeypatch):
    fast.PETCAM_WEBHOOK_ALLOW_LOCAL = False
    resolver = Resolver(["203.0.113.7", "127.0.0.1"])
    monkeypatch.setattr(webhook_target, "resolve", resolver)
    asyncio.run(webhooks.deliver("started", event_for(receiver.url_for("rebind.example"))))
    row = delivery()
    assert receiver.requests == [] and resolver.lookups == ["rebind.example"]
    assert (row.status, row.attempts) == ("failed", 1)  # forbidden: never retried
    assert "rebind.example resolves to a loopback address (127.0.0.1)" in row.error


def test_the_request_goes_to_the_checked_address_under_the_name(fast, receiver, monkeypatch):
    # Checked: 127.0.0.1 (allowed by the setting). Any later lookup would say 127.0.0.2,
    # where nothing listens: the request arriving proves there was none.
    resolver = Resolver(["127.0.0.1"], ["127.0.0.2"])
    monkeypatch.setattr(webhook_target, "resolve", resolver)
    asyncio.run(webhooks.deliver("started", event_for(receiver.url_for("hook.example"))))
    assert delivery().status == "delivered" and resolver.lookups == ["hook.example"]
    ((headers, _),) = receiver.requests
    assert headers["Host"] == f"hook.example:{receiver.port}"


def test_tls_is_checked_against_the_name_not_the_address(fast, tmp_path, monkeypatch):
    tls = make_tls(tmp_path / "tls", host="hook.example")
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))  # trust the throwaway CA
    monkeypatch.setattr(webhook_target, "resolve", lambda host, port: ["127.0.0.1"])
    fast.PETCAM_WEBHOOK_MAX_ATTEMPTS = 1
    receiver = Receiver([], cert=tls.cert, key=tls.key)
    try:
        asyncio.run(webhooks.deliver("started", event_for(receiver.url_for("hook.example"))))
        assert delivery().status == "delivered" and len(receiver.requests) == 1
        WebhookDelivery.objects.all().delete()
        # Same address, another name: the certificate is not for it.
        asyncio.run(webhooks.deliver("started", event_for(receiver.url_for("other.example"))))
        row = delivery()
        assert row.status == "failed" and len(receiver.requests) == 1
        assert "certificate" in row.error.lower() and "other.example" in row.error, row.error
    finally:
        receiver.close()


def test_the_admin_log_shows_each_delivery_state(fast, client):
    event = event_for("https://hooks.example.com/in")
    rows = {}
    for state in ("pending", "retrying", "delivered", "failed"):
        pk, _ = webhooks.create_delivery("started", event)
        WebhookDelivery.objects.filter(pk=pk).update(status=state)
        rows[state] = WebhookDelivery.objects.get(pk=pk)
    client.force_login(make_user("root", superuser=True))
    page = client.get("/admin/events/webhookdelivery/")
    assert page.status_code == 200
    for state in rows:
        assert f'<td class="field-status">{state}</td>' in page.content.decode().lower()
    found = client.get("/admin/events/webhookdelivery/", {"q": str(rows["retrying"].delivery_id)})
    assert found.status_code == 200 and "1 webhook delivery" in found.content.decode()
    one = client.get(f"/admin/events/webhookdelivery/{rows['retrying'].pk}/change/")
    assert one.status_code == 200 and str(rows["retrying"].delivery_id) in one.content.decode()
