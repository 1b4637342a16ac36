"""`manage.py purge_events`: delete events (rows, snapshots) and webhook log rows older
than the retention."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from events.retention import purge_events


class Command(BaseCommand):
    help = ("Delete events (with their snapshot files) and finished webhook deliveries older "
            "than PETCAM_EVENT_RETENTION_DAYS (or --days).")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=settings.PETCAM_EVENT_RETENTION_DAYS)

    def handle(self, *args, days: float, **options):
        if days <= 0:
            raise CommandError("--days must be more than 0 (0 keeps events for ever).")
        purged = purge_events(days)
        self.stdout.write(f"Removed {purged.events} events ({purged.snapshots} snapshot files) "
                          f"and {purged.deliveries} webhook deliveries older than {days:g} days.")
