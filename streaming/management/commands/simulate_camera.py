"""`manage.py simulate_camera`: stand in for the board's camera and detector daemons."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from streaming.simulator import ENCODE_MODES, PRESETS, PROFILES, CameraSimulator, SimulatorConfig


class Command(BaseCommand):
    help = ("Write a synthetic H.264 stream (moving pet, frame numbers stamped in the picture) "
            "and matching detections into the camera's shared-memory segments.")

    def add_arguments(self, parser):
        parser.add_argument("--width", type=int, default=1920)
        parser.add_argument("--height", type=int, default=1080)
        parser.add_argument("--fps", type=int, default=30)
        parser.add_argument("--bitrate", type=int, default=8000, help="kbit/s (default 8000)")
        parser.add_argument("--gop", type=int, default=None,
                            help="frames between IDRs (default 2 s: 2*fps)")
        # choices are checked in handle() so a typo gets a CommandError like the rest.
        parser.add_argument("--profile", default="high", help="|".join(PROFILES))
        parser.add_argument("--preset", default="ultrafast", help="x264 preset: "
                            + "|".join(PRESETS))
        parser.add_argument("--encoder-threads", type=int, default=0,
                            help="x264 threads; 0 = auto, 1 = bit-exact output run to run")
        parser.add_argument("--duration", type=float, default=0.0,
                            help="seconds to run; 0 = until SIGINT/SIGTERM")
        parser.add_argument("--detect-fps", type=float, default=10.0,
                            help="detection records per second (0 = none)")
        parser.add_argument("--encode", default="auto", help="|".join(ENCODE_MODES) + ": live "
                            "encoding, a pre-encoded replayed loop, or live when fast enough")
        parser.add_argument("--loop-seconds", type=float, default=6.0,
                            help="length of the pre-encoded loop (rounded up to whole GOPs)")
        parser.add_argument("--faults", action="store_true",
                            help="interleave damaged slots and detection records")
        parser.add_argument("--fault-every", type=int, default=10,
                            help="one fault per this many good frames")
        parser.add_argument("--camera-id", type=int, default=0,
                            help="the camera to start with: 0 day, 1 night (frame header)")
        parser.add_argument("--switch-every", type=float, default=0.0,
                            help="switch day <-> night every this many seconds (0 = never; "
                            "SIGUSR1 switches at any time)")
        parser.add_argument("--night-width", type=int, default=None,
                            help="the night camera's width (default: --width)")
        parser.add_argument("--night-height", type=int, default=None,
                            help="the night camera's height (default: --height)")
        parser.add_argument("--stream-segment", default=settings.PETCAM_SHM_STREAM)
        parser.add_argument("--detections-segment", default=settings.PETCAM_SHM_DETECTIONS)
        parser.add_argument("--keep-segments", action="store_true",
                            help="leave the segments in /dev/shm on exit")

    def handle(self, *args, **options):
        config = SimulatorConfig(
            stream_segment=options["stream_segment"],
            detections_segment=options["detections_segment"],
            width=options["width"],
            height=options["height"],
            fps=options["fps"],
            bitrate_kbps=options["bitrate"],
            gop=options["gop"],
            profile=options["profile"],
            preset=options["preset"],
            encoder_threads=options["encoder_threads"],
            duration=options["duration"],
            detect_fps=options["detect_fps"],
            encode=options["encode"],
            loop_seconds=options["loop_seconds"],
            faults=options["faults"],
            fault_every=options["fault_every"],
            keep_segments=options["keep_segments"],
            camera_id=options["camera_id"],
            switch_every=options["switch_every"],
            night_width=options["night_width"],
            night_height=options["night_height"],
        )
        try:
            config.validate()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        try:
            simulator = CameraSimulator(config)
            stats = simulator.run(handle_signals=True)
        except OSError as exc:
            # e.g. /dev/shm not writable, or a segment owned by another user.
            raise CommandError(f"cannot write shared memory: {exc}") from exc
        faults = ", ".join(f"{k} {v}" for k, v in stats.faults.items() if v)
        switches = f", {stats.camera_switches} camera switches" if stats.camera_switches else ""
        self.stdout.write(f"wrote {stats.frames} frames ({stats.keyframes} IDR, mode "
                          f"{stats.mode or 'none'}), {stats.detections} detections{switches}"
                          + (f"; faults: {faults}" if faults else ""))
