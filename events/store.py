"""Event rows and snapshot files (sync ORM; the worker calls these through
database_sync_to_async, the API's delete calls `delete_event`)."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from recordings.models import Recording, media_path

from .models import Event, EventRule

log = logging.getLogger("petcam.events")

# Camera time mapped to wall time, and a recording's first-frame time, may differ a little.
CLIP_SLACK = timedelta(seconds=2)


def enabled_rules(camera: str) -> list[tuple]:
    """(rules.Rule, version) of the camera's enabled rules; a rule that no longer
    validates (edited in the database by hand) is skipped with a log line."""
    out = []
    for row in EventRule.objects.filter(camera=camera, enabled=True):
        try:
            row.clean()
        except Exception as exc:
            log.warning("camera %s: event rule %d skipped: %s", camera, row.pk, exc)
            continue
        out.append((row.to_rule(), row.updated_at.isoformat()))
    return out


def create_event(*, jpeg: bytes | None = None, **fields) -> dict:
    """The row at an event's start, with its first snapshot if there is one."""
    event = Event.objects.create(**fields)
    if jpeg:
        _write_snapshot(event, jpeg)  # the name holds the row's id: written after it
        Event.objects.filter(pk=event.pk).update(snapshot=event.snapshot.name)
    return event.to_api()


def set_snapshot(event_id: int, jpeg: bytes, **fields) -> bool:
    """A start snapshot that came after the row (and the box and frame it shows); False
    if the row was deleted meanwhile."""
    try:
        event = Event.objects.get(pk=event_id)
    except Event.DoesNotExist:
        return False
    _write_snapshot(event, jpeg)
    if not Event.objects.filter(pk=event_id).update(snapshot=event.snapshot.name, **fields):
        _remove(event.snapshot.name)
        return False
    return True


def covering_recording(camera: str, start: datetime, end: datetime) -> Recording | None:
    """The event's clip: the first recording of `camera` that overlaps [start, end]. One
    camera records one file at a time, so that is the one running at the start or, when
    the event recording could only begin at the next IDR (no pre-roll yet), the one it
    triggered."""
    return (Recording.objects.filter(camera=camera, started_at__lte=end + CLIP_SLACK)
            .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=start - CLIP_SLACK))
            .order_by("started_at", "id").first())


def snapshot_relpath(event: Event) -> str:
    day = event.started_at.strftime("%Y-%m-%d")
    return f"events/{event.camera}/{day}/{event.camera}-event-{event.pk}.jpg"


def _write_snapshot(event: Event, jpeg: bytes) -> None:
    relpath = snapshot_relpath(event)
    path = media_path(relpath)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(jpeg)
    os.replace(tmp, path)  # never a half-written JPEG under the served name
    event.snapshot.name = relpath


def finish_event(event_id: int, *, ended_at: datetime, jpeg: bytes | None, **fields) -> dict | None:
    """Fill in the end, the final peak, the snapshot file (`jpeg` replaces the start's;
    None keeps it) and the clip; None if the row was deleted meanwhile."""
    try:
        event = Event.objects.get(pk=event_id)
    except Event.DoesNotExist:
        return None
    for name, value in fields.items():
        setattr(event, name, value)
    event.ended_at = ended_at
    if jpeg:
        _write_snapshot(event, jpeg)
    event.recording = covering_recording(event.camera, event.started_at, ended_at)
    with transaction.atomic():
        if not Event.objects.filter(pk=event_id).exists():
            _remove(event.snapshot.name)
            return None
        event.save()
    return event.to_api()


def _remove(relpath: str | None) -> None:
    if not relpath:
        return
    try:
        media_path(relpath).unlink(missing_ok=True)
    except (ValueError, OSError) as exc:
        log.warning("event snapshot %s not removed: %s", relpath, exc)


def delete_event(event: Event) -> None:
    """The snapshot file, then the row (the recording stays: it is the catalog's)."""
    _remove(event.snapshot.name if event.snapshot else None)
    event.delete()
