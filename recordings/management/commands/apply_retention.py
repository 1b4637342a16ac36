"""manage.py apply_retention [--dry-run]: delete old recordings as the retention policy says."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from recordings.retention import Policy, apply_retention


class Command(BaseCommand):
    help = ("Delete the oldest recordings that are neither kept nor still recording until "
            "PETCAM_RETENTION_MAX_AGE_DAYS / _MAX_BYTES / _MIN_FREE_BYTES hold.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true",
                            help="only list what would be deleted")

    def handle(self, *args, dry_run: bool = False, **options):
        policy = Policy.from_settings()
        if not policy.active:
            self.stdout.write("retention: no policy set (all PETCAM_RETENTION_* are 0)")
            return
        deleted = apply_retention(policy, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        for d in deleted:
            self.stdout.write(f"{verb} recording {d.id} {d.camera} {d.file} "
                              f"started {d.started_at} {d.bytes} bytes ({d.reason})")
        total = sum(d.bytes for d in deleted)
        self.stdout.write(f"retention: {verb} {len(deleted)} recording(s), {total} bytes")
