"""`manage.py media_worker`: the production media worker, one process per camera."""

from __future__ import annotations

import asyncio
import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from streaming.worker.media_worker import MediaWorker, configured_cameras

log = logging.getLogger("petcam.worker")


class Command(BaseCommand):
    help = "Run the media worker (shm reader, H.264 processing, RPC on the channel layer)."

    def add_arguments(self, parser):
        parser.add_argument("--camera", default=settings.PETCAM_CAMERA_SLUG,
                            help="camera slug this worker owns")

    def handle(self, *args, camera: str, **options):
        cameras = [c for c in configured_cameras() if c.slug == camera]
        if not cameras:
            raise CommandError(f"unknown camera {camera!r}")
        asyncio.run(self._run(MediaWorker(cameras)))

    async def _run(self, worker: MediaWorker) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await worker.start()
        log.info("media worker up for %s", ", ".join(worker.cameras))
        await stop.wait()
        log.info("media worker stopping")
        await worker.stop()
