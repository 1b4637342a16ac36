"""The `simulate_camera` management command as its own process: refuses bad options,
writes the segments until SIGTERM, then removes them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from streaming.media.shm import segment as shm_segment
from streaming.media.shm.stream_reader import FrameReader
from tests.support.processes import ROOT


def manage(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "simulate_camera", *args],
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "petcam_site.settings",
                       **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_command_bad_option_is_a_clear_error():
    proc = manage("--width", "321", "--duration", "1")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "CommandError" in err and "even" in err


def test_command_writes_segments_until_sigterm_then_removes_them(segments):
    stream, detections = segments
    proc = manage("--width", "320", "--height", "240", "--encode", "live",
                  env={"PETCAM_SHM_STREAM": stream, "PETCAM_SHM_DETECTIONS": detections})
    paths = [shm_segment.shm_path(n) for n in segments]
    try:
        deadline = time.monotonic() + 30
        while not all(os.path.exists(p) for p in paths):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "segments never appeared"
            time.sleep(0.05)
        reader = FrameReader(stream)
        first = []
        while len(first) < 30 and time.monotonic() < deadline:  # ~1 s of frames
            first += reader.poll()
            time.sleep(0.005)
        reader.close()
        assert len(first) >= 30 and first[0].header.width == 320
        assert all(os.path.exists(p) for p in paths)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "wrote" in out and "camera simulator stopped" in err
    assert not any(os.path.exists(p) for p in paths)
