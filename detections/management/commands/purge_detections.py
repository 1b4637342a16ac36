"""`manage.py purge_detections`: drop detection history older than the retention."""

from django.conf import settings
from django.core.management.base import BaseCommand

from detections.history import purge_older_than


class Command(BaseCommand):
    help = "Delete detection samples older than PETCAM_DETECTION_RETENTION_DAYS (or --days)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=settings.PETCAM_DETECTION_RETENTION_DAYS)

    def handle(self, *args, days: float, **options):
        deleted = purge_older_than(days)
        self.stdout.write(f"Removed {deleted} detection samples older than {days:g} days.")
