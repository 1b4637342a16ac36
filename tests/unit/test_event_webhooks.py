"""Webhooks with a real HTTP receiver on loopback (allowed by the setting, as it must be):
the signature (HMAC-SHA256 of "<timestamp>.<body>") checks out, a 500 is retried with
backoff and logged per attempt, a 4xx is final; loopback and link-local targets are
refused at save time and at delivery unless allowed; the secret is never shown."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from events import webhooks
from events.models import Event, EventRule, WebhookDelivery
from events.webhook_target import TargetForbidden, check_literal, resolve_allowed
from tests.support.event_rows import webhook_event
from tests.support.roles import make_user
from tests.support.webhook_receiver import Receiver

SECRET = "s3cret-s3cret-s3cret"


@pytest.fixture
def receiver():
    r = Receiver([])
    yield r
    r.close()


@pytest.fixture
def fast(settings, transactional_db):
    settings.PETCAM_WEBHOOK_ALLOW_LOCAL = True
    settings.PETCAM_WEBHOOK_BACKOFF_SECONDS = 0.05
    settings.PETCAM_WEBHOOK_MAX_ATTEMPTS = 3
    return settings


def event_for(url: str) -> dict:
    return webhook_event(url, SECRET)


def test_signed_post_after_a_retry(fast, receiver):
    receiver.statuses = [500]
    event = event_for(receiver.url)
    asyncio.run(webhooks.deliver("started", event))
    assert len(receiver.requests) == 2  # the 500, then the retry
    headers, body = receiver.requests[-1]
    stamp = headers["X-Petcam-Timestamp"]
    want = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-Petcam-Signature"] == f"sha256={want}"
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert payload == {"type": "event.started", "event": event}
    # a wrong secret would not match
    wrong = hmac.new(b"other", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-Petcam-Signature"] != f"sha256={wrong}"
    (delivery,) = WebhookDelivery.objects.all()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (
        "delivered", 2, 200)
    assert delivery.finished_at is not None and delivery.event_id == event["id"]


def test_gives_up_after_the_attempts_and_a_4xx_is_final(fast, receiver):
    receiver.statuses = [503, 503, 503, 503]
    asyncio.run(webhooks.deliver("ended", event_for(receiver.url)))
    assert len(receiver.requests) == 3
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.error) == ("failed", 3, "HTTP 503")
    receiver.requests.clear()
    receiver.statuses = [410]
    asyncio.run(webhooks.deliver("ended", event_for(receiver.url)))
    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.order_by("-id").first().status == "failed"


def test_unreachable_receiver_is_retried_and_logged(fast, receiver):
    url = receiver.url
    receiver.close()  # nobody listens any more
    asyncio.run(webhooks.deliver("started", event_for(url)))
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 3
    assert "URLError" in delivery.error or "Connection" in delivery.error


def test_loopback_refused_at_delivery_unless_allowed(fast, receiver):
    fast.PETCAM_WEBHOOK_ALLOW_LOCAL = False
    event = event_for(receiver.url)  # saved while allowed, then the setting changed
    asyncio.run(webhooks.deliver("started", event))
    assert receiver.requests == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 1  # never retried
    assert "loopback" in delivery.error


def test_no_webhook_no_delivery(fast):
    rule = EventRule.objects.create(camera="default", classes=["cat"])
    ev = Event.objects.create(rule=rule, camera="default", class_name="cat",
                              started_at=datetime(2026, 12, 2, tzinfo=UTC), peak_confidence=1)
    asyncio.run(webhooks.deliver("started", ev.to_api()))
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "http://localhost:8000/", "http://[::1]/",
                                 "http://169.254.169.254/latest/meta-data/",
                                 "http://[fe80::1]/", "http://0.0.0.0/",
                                 "http://[::ffff:127.0.0.1]/"])
def test_local_targets_refused(url):
    with pytest.raises(TargetForbidden):
        check_literal(url, allow_local=False)
    check_literal(url, allow_local=True)


def test_names_that_resolve_to_loopback_are_refused_at_delivery():
    with pytest.raises(TargetForbidden, match="loopback"):
        resolve_allowed("http://localhost/hook", allow_local=False)


def test_rule_api_webhook_fields(db, settings):
    api = APIClient()
    api.force_authenticate(make_user("op", "operators"))
    base = {"camera": "default", "classes": ["cat"]}
    cases = [
        ({"webhook_url": "ftp://example.com/"}, "invalid_webhook_url"),
        ({"webhook_url": "http://127.0.0.1:9/", "webhook_secret": SECRET},
         "invalid_webhook_url"),
        ({"webhook_url": "https://user:pw@example.com/", "webhook_secret": SECRET},
         "invalid_webhook_url"),
        ({"webhook_url": "https://example.com/hook"}, "invalid_webhook_secret"),
        ({"webhook_url": "https://example.com/hook", "webhook_secret": "short"},
         "invalid_webhook_secret"),
        ({"webhook_url": 5}, "invalid_webhook_url"),
    ]
    for change, code in cases:
        response = api.post("/api/event-rules/", {**base, **change}, format="json")
        assert response.status_code == 400 and response.json()["error"] == code, (change,
                                                                                 response.json())
    made = api.post("/api/event-rules/", {**base, "webhook_url": "https://example.com/hook",
                                          "webhook_secret": SECRET}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["webhook_url"] == "https://example.com/hook" and body["has_webhook_secret"]
    assert SECRET not in made.content.decode()
    assert SECRET not in api.get(f"/api/event-rules/{body['id']}/").content.decode()
    settings.PETCAM_WEBHOOK_ALLOW_LOCAL = True
    local = api.patch(f"/api/event-rules/{body['id']}/",
                      {"webhook_url": "http://127.0.0.1:9/"}, format="json")
    assert local.status_code == 200, local.content
    off = api.patch(f"/api/event-rules/{body['id']}/", {"webhook_url": ""}, format="json")
    assert off.json()["webhook_url"] == ""
