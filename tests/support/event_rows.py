"""Event rows as the worker stores them, for tests of what the hooks do with them."""

from __future__ import annotations

from datetime import UTC, datetime

from events.models import Event, EventRule


def webhook_event(url: str, secret: str) -> dict:
    """A cat event of a rule that posts to `url` signed with `secret`, as the start and
    end hooks are handed it (the API's dict)."""
    rule = EventRule.objects.create(camera="default", classes=["cat"], webhook_url=url,
                                    webhook_secret=secret)
    ev = Event.objects.create(rule=rule, camera="default", class_name="cat",
                              started_at=datetime(2026, 12, 2, 12, tzinfo=UTC),
                              peak_confidence=0.9)
    return ev.to_api()
