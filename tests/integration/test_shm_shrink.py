"""Issue 14 item 1 on a real site: a shared-memory segment shrunk under `serve`.

os.ftruncate() of the detections segment to 0, or of the stream segment to 4 KiB
while write_index advances, made `serve` die of SIGBUS (status 135, no log line)
within seconds. Now: the server stays up, /health says what is wrong, the readers
count it (status and /metrics), and once the camera daemon recreates its segments
the picture and the detections come back without a server restart.

The simulator maps its segments like the real daemon, so it dies of SIGBUS itself at
its next write into a shrunk file; the test then restarts it, as systemd would.
"""

from __future__ import annotations

import json
import os
import struct
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streaming.media.shm import layout as L
from streaming.media.shm import segment as shm_segment
from tests.support.processes import (
    Client,
    Install,
    start_install,
    start_simulator,
    stop_install,
    wait_for,
)


class Site:
    """The running `serve` and a logged-in admin; a dead server fails the test by name."""

    def __init__(self, install: Install) -> None:
        self.install = install
        self.client = Client(install.base)
        self.client.login(install.username, install.password)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            status, _, body = self.client.request("GET", path)
        except OSError as exc:
            proc = self.install.site
            code = proc.popen.wait(5) if not proc.alive() else None
            raise AssertionError(f"serve stopped answering ({exc}); exit status {code}\n"
                                 f"{proc.log_tail()}") from exc
        return status, body

    def camera(self) -> dict:
        status, body = self.get("/api/cameras/default/")
        assert status == 200, body
        return json.loads(body)

    def health(self) -> dict:
        status, body = self.get("/health")
        assert status in (200, 503), body
        return json.loads(body)

    def metric(self, name: str, **labels: str) -> float | None:
        status, body = self.get("/metrics")
        assert status == 200, body[:300]
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                if sample.name == name and sample.labels == {"camera": "default", **labels}:
                    return sample.value
        return None

    def live_with_detections(self, after: int = 0) -> dict | None:
        """The camera's status once frames arrive and more than `after` detector results
        were read, the detections segment attached."""
        body = self.camera()
        found = body.get("detections") or {}
        ok = (body["live"] and body["fps"] > 5 and found.get("state") == "attached"
              and found.get("results", 0) > after)
        return body if ok else None


@pytest.fixture
def site(tmp_path):
    install = start_install(tmp_path)
    yield Site(install)
    stop_install(install)


def advance_write_index(path: str, frames: int) -> None:
    """Keep write_index moving in the shrunk file, as the probe did (pwrite, no map)."""
    fd = os.open(path, os.O_RDWR)
    try:
        index = struct.unpack("<I", os.pread(fd, 4, 0))[0]
        for _ in range(frames):
            index += 1
            os.pwrite(fd, struct.pack("<I", index), L.WRITE_INDEX_OFFSET)
            time.sleep(1 / 30)
    finally:
        os.close(fd)


def test_shrunk_segments_are_survived_counted_and_reattached(site, tmp_path):
    env, logs, server = site.install.env, tmp_path / "logs", site.install.site
    stream = shm_segment.shm_path(env["PETCAM_SHM_STREAM"])
    detections = shm_segment.shm_path(env["PETCAM_SHM_DETECTIONS"])

    sim = start_simulator(env, logs)
    try:
        wait_for(lambda: site.live_with_detections(), 30, "live video and detections")

        # 1. The detections segment shrinks to nothing.
        os.truncate(detections, 0)
        body = wait_for(lambda: (b := site.camera())["detections"]["dropped"].get("truncated")
                        and b, 15, "the detections reader to count the truncation")
        assert body["detections"]["state"] == "waiting"
        assert server.alive()
        component = site.health()["components"]["detections_reader"]
        assert component["status"] == "degraded" and component["dropped"] >= 1
        assert "layout needs 552" in component["detail"], component
        assert site.metric("petcam_detection_dropped_total", reason="truncated") >= 1
        results = body["detections"]["results"]
    finally:
        sim.stop()

    # 2. A fresh daemon: everything back, no server restart.
    sim = start_simulator(env, logs)
    try:
        status = wait_for(lambda: site.live_with_detections(results), 30,
                          "video and detections back")
        assert status["detections"]["attaches"] >= 2
        results = status["detections"]["results"]

        # 3. The stream segment shrinks to 4 KiB while write_index keeps advancing.
        os.truncate(stream, 4096)
        advance_write_index(stream, 30)
        body = wait_for(lambda: (b := site.camera())["reader"]["skipped"].get("truncated")
                        and b, 15, "the stream reader to count the truncation")
        assert not body["live"]
        assert server.alive()
        check = wait_for(lambda: (c := site.health()["components"]["shm_reader"])
                         ["status"] == "degraded" and c, 10, "/health to report the segment")
        assert "layout needs 93313448" in check["detail"] or "truncated" in check["detail"], \
            check
        assert check["skipped"] >= 1
        assert site.metric("petcam_shm_skipped_total", reason="truncated") >= 1
    finally:
        sim.stop()

    # 4. The daemon restarts with a proper segment: the picture comes back.
    sim = start_simulator(env, logs)
    try:
        back = wait_for(lambda: site.live_with_detections(results), 30, "the picture back")
        assert back["reader"]["restarts"] >= 1
        assert site.health()["components"]["shm_reader"]["status"] == "ok"
    finally:
        sim.stop()
    assert server.alive()
    log = server.log()
    assert "segment shrank under the reader" in log
    assert "Traceback" not in log, log[-3000:]
