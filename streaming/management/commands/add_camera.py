"""`manage.py add_camera --slug garage --source rtsp://...`: add or change a camera.

The same as the admin's camera form, for scripts and the command line. The
media worker reads cameras when it starts: restart it (or `serve`) afterwards.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from streaming.media.sources import mask_credentials
from streaming.models import Camera


class Command(BaseCommand):
    help = ("Add a camera (or update it with --update): shared memory (no --source), "
            "rtsp://[user:pass@]host/path[#transport=udp] or file:///absolute/path.mp4.")

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True, help="used in URLs, e.g. garage")
        parser.add_argument("--source", default="",
                            help="rtsp://... or file:///...; empty: shared memory")
        parser.add_argument("--name", default="", help="shown on the pages (default: slug)")
        parser.add_argument("--max-viewers", type=int, default=None)
        parser.add_argument("--position", type=int, default=None, help="order on the live page")
        parser.add_argument("--disabled", action="store_true", help="add it switched off")
        parser.add_argument("--update", action="store_true",
                            help="change the camera if the slug exists")

    def handle(self, *args, slug: str, source: str, name: str, max_viewers: int | None,
               position: int | None, disabled: bool, update: bool, **options):
        camera = Camera.objects.filter(slug=slug).first()
        if camera is not None and not update:
            raise CommandError(f"camera {slug!r} exists; use --update to change it")
        created = camera is None
        camera = camera or Camera(slug=slug)
        camera.source = source
        camera.name = name or camera.name or slug
        camera.enabled = not disabled
        if max_viewers is not None:
            camera.max_viewers = max_viewers
        if position is not None:
            camera.position = position
        try:
            camera.full_clean()
        except ValidationError as exc:
            raise CommandError("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in
                                         exc.message_dict.items())) from None
        camera.save()
        self.stdout.write(f"{'added' if created else 'updated'} camera {camera.slug}: "
                          f"{mask_credentials(camera.source) or 'shared memory'}"
                          f"{'' if camera.enabled else ' (disabled)'}; "
                          "restart the server or media worker to serve it")
