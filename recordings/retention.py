"""Deleting recordings (file, thumbnail, row) and the retention policy that does it on its own.

Policy, from settings (0 turns a rule off):
  PETCAM_RETENTION_MAX_AGE_DAYS   recordings that started longer ago than this go
  PETCAM_RETENTION_MAX_BYTES      the recordings' files may use at most this much in total
  PETCAM_RETENTION_MIN_FREE_BYTES the disk holding MEDIA_ROOT keeps at least this much free
Only recordings that are not `keep` and not still recording are ever deleted, oldest first.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from .models import Recording, media_path
from .sidecars import sidecar_names

log = logging.getLogger("petcam.retention")


def _file_path(name: str | None) -> Path | None:
    if not name:
        return None
    try:
        return media_path(name)
    except ValueError:
        log.warning("recording file %r is outside MEDIA_ROOT: not touched", name)
        return None


def file_size(recording: Recording) -> int:
    """Bytes the recording uses on disk (file + thumbnail); the row's figure if the file is gone."""
    total = 0
    path = _file_path(recording.file.name)
    try:
        total += path.stat().st_size if path else 0
    except OSError:
        total += recording.size_bytes
    thumb = _file_path(recording.thumbnail.name if recording.thumbnail else None)
    if thumb:
        try:
            total += thumb.stat().st_size
        except OSError:
            pass
    return total


def remove_files(recording: Recording) -> None:
    """Remove the recording's file, thumbnail and playback sidecars (keyframe index,
    thumbnail strip) from disk (missing ones are fine)."""
    for name in (recording.file.name, recording.thumbnail.name if recording.thumbnail else None,
                 *sidecar_names(recording.file.name)):
        path = _file_path(name)
        if path is not None:
            path.unlink(missing_ok=True)


def delete_recording(recording: Recording) -> None:
    """Files first, then the row: a crash in between leaves a row without a file, never an
    orphan file nobody can find."""
    remove_files(recording)
    recording.delete()


def disk_usage(path: Path):
    """shutil.disk_usage of the disk holding `path` (tests replace this)."""
    return shutil.disk_usage(path)


@dataclass
class Policy:
    max_age_days: float = 0
    max_bytes: int = 0
    min_free_bytes: int = 0

    @classmethod
    def from_settings(cls) -> Policy:
        return cls(max_age_days=float(settings.PETCAM_RETENTION_MAX_AGE_DAYS),
                   max_bytes=int(settings.PETCAM_RETENTION_MAX_BYTES),
                   min_free_bytes=int(settings.PETCAM_RETENTION_MIN_FREE_BYTES))

    @property
    def active(self) -> bool:
        return bool(self.max_age_days > 0 or self.max_bytes > 0 or self.min_free_bytes > 0)


@dataclass
class Deleted:
    id: int
    camera: str
    file: str
    started_at: str
    bytes: int
    reason: str  # "max_age" | "max_bytes" | "min_free"

    def as_dict(self) -> dict:
        return asdict(self)


def _existing_root() -> Path:
    root = Path(settings.MEDIA_ROOT)
    while not root.exists() and root != root.parent:
        root = root.parent
    return root


def apply_retention(policy: Policy | None = None, *, dry_run: bool = False,
                    now=None) -> list[Deleted]:
    """Delete (or with dry_run only list) what the policy says, oldest first."""
    policy = policy or Policy.from_settings()
    if not policy.active:
        return []
    now = now or timezone.now()
    all_rows = list(Recording.objects.order_by("started_at", "id"))
    sizes = {r.pk: file_size(r) for r in all_rows}
    candidates = [r for r in all_rows
                  if not r.keep and r.status != Recording.Status.RECORDING]
    total = sum(sizes.values())
    free = disk_usage(_existing_root()).free if policy.min_free_bytes > 0 else None
    cutoff = now - timedelta(days=policy.max_age_days) if policy.max_age_days > 0 else None

    deleted: list[Deleted] = []
    for rec in candidates:  # oldest first
        size = sizes[rec.pk]
        if cutoff is not None and rec.started_at < cutoff:
            reason = "max_age"
        elif policy.max_bytes > 0 and total > policy.max_bytes:
            reason = "max_bytes"
        elif free is not None and free < policy.min_free_bytes:
            reason = "min_free"
        else:
            continue  # the next ones are newer: only the size rules could still apply
        deleted.append(Deleted(id=rec.pk, camera=rec.camera, file=rec.file.name,
                               started_at=rec.started_at.isoformat(), bytes=size,
                               reason=reason))
        total -= size
        if free is not None:
            free += size
        if not dry_run:
            pk = rec.pk
            delete_recording(rec)
            log.info("retention deleted recording %s (%s, %d bytes, %s)",
                     pk, rec.file.name, size, reason)
    return deleted


RETENTION_INTERVAL = 600.0  # s between runs in the media worker
RETENTION_FIRST_DELAY = 60.0  # s after the worker starts (after crash recovery has run)


async def retention_loop(interval: float = RETENTION_INTERVAL,
                         first_delay: float = RETENTION_FIRST_DELAY) -> None:
    """Apply the policy every `interval` s, in the media worker (one per process, not per
    camera). Errors are logged and the loop carries on; nothing runs without a policy."""
    from channels.db import database_sync_to_async

    await asyncio.sleep(first_delay)
    while True:
        if Policy.from_settings().active:
            try:
                deleted = await database_sync_to_async(apply_retention)()
                if deleted:
                    log.info("retention: deleted %d recording(s), %d bytes", len(deleted),
                             sum(d.bytes for d in deleted))
            except Exception:
                log.exception("retention run failed")
        await asyncio.sleep(interval)
