"""Event retention: events (rows and snapshot JPEGs) and the webhook delivery log are kept
PETCAM_EVENT_RETENTION_DAYS (0: for ever), then deleted by a worker task, like the
recordings' retention (recordings/retention.py) and with `manage.py purge_events`.

An event's clip is a recording, kept by the recordings' own retention: when that deletes
the recording, the event stays with its snapshot and its clip link becomes empty (the
foreign key is SET_NULL)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from recordings.models import media_path

from .models import Event, WebhookDelivery
from .store import delete_event

log = logging.getLogger("petcam.retention")

BATCH = 500  # events deleted per query round (a long backlog never loads at once)


@dataclass
class Purged:
    events: int = 0
    snapshots: int = 0  # snapshot files removed with their events
    deliveries: int = 0


def _cutoff(days: float, now: datetime | None) -> datetime:
    return (now or timezone.now()) - timedelta(days=days)


def expired_events(days: float, now: datetime | None = None):
    """Events that ended before the cutoff, and rows left open (a worker that died
    mid-event) that started before it."""
    cutoff = _cutoff(days, now)
    return Event.objects.filter(Q(ended_at__lt=cutoff)
                                | Q(ended_at__isnull=True, started_at__lt=cutoff))


def _remove_empty_dirs(relpaths: set[str]) -> None:
    """The per-day snapshot folders (events/<camera>/<day>/) left empty."""
    for folder in {str(p).rsplit("/", 1)[0] for p in relpaths if "/" in p}:
        try:
            media_path(folder).rmdir()
        except (OSError, ValueError):
            pass  # not empty (other events of that day), or already gone


def purge_events(days: float | None = None, *, now: datetime | None = None) -> Purged:
    """Delete what is older than `days` (default: the setting; 0 keeps everything)."""
    days = float(settings.PETCAM_EVENT_RETENTION_DAYS if days is None else days)
    purged = Purged()
    if days <= 0:
        return purged
    while True:
        batch = list(expired_events(days, now).order_by("started_at", "id")[:BATCH])
        if not batch:
            break
        names = {e.snapshot.name for e in batch if e.snapshot}
        for event in batch:
            delete_event(event)  # its snapshot file, then the row
        purged.events += len(batch)
        purged.snapshots += len(names)
        _remove_empty_dirs(names)
    # The delivery log: finished deliveries (open ones end by their max age first).
    purged.deliveries, _ = WebhookDelivery.objects.filter(
        status__in=(WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.FAILED),
        created_at__lt=_cutoff(days, now)).delete()
    return purged


RETENTION_INTERVAL = 600.0  # s between runs in the media worker
RETENTION_FIRST_DELAY = 60.0  # s after the worker starts


async def retention_loop(interval: float = RETENTION_INTERVAL,
                         first_delay: float = RETENTION_FIRST_DELAY) -> None:
    """Worker task: purge every `interval` s; errors are logged and it carries on."""
    from channels.db import database_sync_to_async

    await asyncio.sleep(first_delay)
    while True:
        if float(settings.PETCAM_EVENT_RETENTION_DAYS) > 0:
            try:
                purged = await database_sync_to_async(purge_events)()
                if purged.events or purged.deliveries:
                    log.info("event retention: deleted %d event(s) (%d snapshot(s)) and %d "
                             "webhook delivery row(s)", purged.events, purged.snapshots,
                             purged.deliveries)
            except Exception:
                log.exception("event retention run failed")
        await asyncio.sleep(interval)
