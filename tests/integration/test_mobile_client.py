"""benchmarks/mobile_client.py against a real site (the shared two-camera one): token,
cameras, live video, recording, download, each step checked by the script itself; here
we check its report and what the server saw (the live session ended)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.processes import ROOT, wait_for
from tests.support.two_camera_site import SIZES
from tests.support.webrtc_client import viewers


@pytest.fixture
def site(two_camera_site):
    two_camera_site.wait_both_live()
    two_camera_site.stop_recordings()
    return two_camera_site


def run_client(site, *args: str) -> tuple[int, str, dict]:
    run = subprocess.run([sys.executable, "-m", "benchmarks.mobile_client", "--url", site.base,
                          "--username", site.username, *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = run.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines else {}
    return run.returncode, run.stdout + run.stderr, report


def test_mobile_client_session(site):
    code, output, report = run_client(site, f"--password={site.password}", "--camera", "garden",
                                      "--frames", "20", "--record", "1.5")
    assert code == 0, output
    assert report["ok"] is True and report["camera"] == "garden"
    assert report["cameras"] == ["default", "garden"]
    width, height = SIZES["garden"]
    assert report["live"]["frames"] == 20 and report["live"]["sizes"] == [f"{width}x{height}"]
    download = report["download"]
    assert download["id"] == report["recorded"]  # the newest complete one: its own
    assert download["content_type"] == "video/mp4" and download["codec"] == "h264"
    assert (download["width"], download["height"]) == (width, height)
    assert download["decoded_frames"] >= 10
    # the table an operator reads
    for step in ("token", "cameras", "ice", "live", "record", "recordings", "download"):
        assert any(line.startswith(step) for line in output.splitlines()), output
    # the client ended its live session: the worker has no viewer left
    wait_for(lambda: viewers(site.base, site.token, "garden")["count"] == 0, 15,
             "the mobile client's session to be gone")


def test_mobile_client_reports_a_wrong_password(site):
    code, output, report = run_client(site, "--password", "not-the-password")
    assert code == 1, output
    assert report["ok"] is False and "400" in report["error"], output
    assert "FAILED" in output
