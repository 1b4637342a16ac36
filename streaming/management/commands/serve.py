"""`manage.py serve`: daphne + the embedded media worker (+ the camera simulator).

`--simulate --cameras N` also simulates N-1 extra cameras (garden, porch, ...): each
gets a Camera row with its own shared-memory segments (the default's names plus
`_<slug>`) and its own simulator process, and the embedded worker serves them all.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

log = logging.getLogger("petcam.serve")

# Slugs of the extra simulated cameras, in order (`--cameras 2` adds the first).
EXTRA_CAMERAS = ["garden", "porch", "kitchen"]
# `make run` passes the first run's admin login here, to repeat it as the last lines.
LOGIN_NOTE_ENV = "PETCAM_LOGIN_NOTE"


def port_taken(host: str, port: int) -> bool:
    """True if nothing may listen on host:port now (another server has it). SO_REUSEADDR
    like Twisted's listener, so a port left in TIME_WAIT does not count as taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


# Extra cameras run at another size by default, so each tile is told apart at a glance.
EXTRA_CAMERA_SIM_ARGS = "--width 1280 --height 720"


def ensure_simulated_camera(slug: str, position: int) -> tuple[str, str]:
    """The camera row for an extra simulated camera (made once); its segment names."""
    from streaming.models import Camera

    camera, created = Camera.objects.get_or_create(slug=slug, defaults={
        "name": slug.capitalize(), "position": position,
        "stream_segment": f"{settings.PETCAM_SHM_STREAM}_{slug}",
        "detections_segment": f"{settings.PETCAM_SHM_DETECTIONS}_{slug}"})
    if created:
        log.info("added camera %r (segments %s, %s)", slug, camera.stream_segment_name,
                 camera.detections_segment_name)
    elif not camera.enabled:
        log.warning("camera %r is disabled in the admin: it is simulated but not served", slug)
    return camera.stream_segment_name, camera.detections_segment_name


class Command(BaseCommand):
    help = ("Serve the site with daphne and the media worker in the same process; "
            "--simulate also starts the camera simulator as its own process.")

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--simulate", action="store_true",
                            help="start `manage.py simulate_camera` alongside")
        parser.add_argument("--sim-args", default="",
                            help="extra simulate_camera options, e.g. '--width 1280 --height 720'")
        parser.add_argument("--cameras", type=int, default=1,
                            help=f"with --simulate: simulate this many cameras (default, then "
                                 f"{', '.join(EXTRA_CAMERAS)}), each its own segments and "
                                 "simulator process")
        parser.add_argument("--camera-sim-args", action="append", default=[],
                            metavar="SLUG=ARGS",
                            help="simulate_camera options for one camera, after --sim-args "
                                 f"(extra cameras default to '{EXTRA_CAMERA_SIM_ARGS}')")

    def handle(self, *args, host: str, port: int, simulate: bool, sim_args: str, cameras: int,
               camera_sim_args: list[str], **options):
        # Imported here: importing daphne.server installs the asyncio Twisted reactor.
        from channels.routing import get_default_application
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from streaming.worker.media_worker import start_inprocess_worker

        if not 0 < port < 65536:
            raise CommandError(f"--port must be 1..65535, got {port}")
        if not 1 <= cameras <= 1 + len(EXTRA_CAMERAS):
            raise CommandError(f"--cameras must be 1..{1 + len(EXTRA_CAMERAS)}, got {cameras}")
        if cameras > 1 and not simulate:
            raise CommandError("--cameras simulates cameras: use it with --simulate")
        if port_taken(host, port):
            raise CommandError(
                f"port {port} is already in use (another petcam or program?): pick another "
                f"with `make run PORT={port + 1}` or `manage.py serve --port {port + 1}`")
        # not passed on to the simulators; shown once the site is up
        login_note = os.environ.pop(LOGIN_NOTE_ENV, "").strip()
        per_camera = {}
        for item in camera_sim_args:
            slug, sep, extra = item.partition("=")
            if not sep:
                raise CommandError(f"--camera-sim-args wants SLUG=ARGS, got {item!r}")
            per_camera[slug] = extra
        simulators: list[subprocess.Popen] = []
        if simulate:
            manage = Path(settings.BASE_DIR) / "manage.py"
            base_cmd = [sys.executable, str(manage), "simulate_camera", *shlex.split(sim_args)]
            # Rows first: the embedded worker reads the cameras once, when the server is up.
            plan = [(settings.PETCAM_CAMERA_SLUG, [], per_camera.get(settings.PETCAM_CAMERA_SLUG,
                                                                     ""))]
            for i, slug in enumerate(EXTRA_CAMERAS[:cameras - 1], start=1):
                stream, detections = ensure_simulated_camera(slug, position=i)
                plan.append((slug, ["--stream-segment", stream, "--detections-segment",
                                    detections], per_camera.get(slug, EXTRA_CAMERA_SIM_ARGS)))
            for slug, segments, extra in plan:
                # later options win in argparse: per-camera args override --sim-args
                proc = subprocess.Popen([*base_cmd, *segments, *shlex.split(extra)])
                simulators.append(proc)
                self.stdout.write(f"Camera simulator for {slug!r} started (pid {proc.pid}).")
            self.stdout.write("Stop a simulator to see its camera turn to 'camera off'; "
                              "start it again with `.venv/bin/python manage.py simulate_camera`.")

        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"

        def ready() -> None:
            from twisted.internet import defer, reactor

            worker = start_inprocess_worker()
            if worker is not None:
                # On SIGINT/SIGTERM finish recordings and close peers before the loop ends.
                async def stop_worker() -> None:
                    try:
                        await asyncio.wait_for(worker.stop(), 10)
                    except Exception:
                        log.warning("media worker did not stop cleanly", exc_info=True)

                reactor.addSystemEventTrigger(
                    "before", "shutdown",
                    lambda: defer.Deferred.fromFuture(asyncio.ensure_future(stop_worker())))
            self.stdout.write(self.style.SUCCESS(f"petcam is up at {url}"))
            if login_note:  # the first run's new admin login, last, where it is seen
                self.stdout.write(self.style.SUCCESS(login_note))
            else:
                self.stdout.write("Log in as 'admin' with the password printed on the first "
                                  "run (reset: .venv/bin/python manage.py changepassword admin)")
            self.stdout.flush()

        server = Server(
            application=get_default_application(),
            endpoints=build_endpoint_description_strings(host=host, port=port),
            ready_callable=ready,
            signal_handlers=True,
            action_logger=None,
            # A WebSocket client that stops reading stops answering pings: drop it
            # within ~15 s instead of buffering for it forever.
            ping_interval=5,
            ping_timeout=10,
        )
        try:
            server.run()
        finally:
            for simulator in simulators:
                if simulator.poll() is None:
                    simulator.terminate()
            for simulator in simulators:
                try:
                    simulator.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    simulator.kill()
