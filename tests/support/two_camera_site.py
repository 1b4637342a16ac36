"""One embedded site with two simulated cameras, as `make run CAMERAS=2` runs it.

`manage.py serve --simulate --cameras 2` adds the `garden` camera row with its own
shared-memory segments and a second simulator; the in-process worker serves both.
The cameras run at different sizes (default 320x240, garden 352x288) so whatever
comes back tells which camera it came from.

The API, multi-camera, mobile-client and portal tests share one such site for the
whole session (fixture `two_camera_site` in conftest.py): starting one costs ~10 s
on a loaded 2-core machine. Tests on it must not assume an empty catalog nor idle
recorders they did not check: each works with the recordings it made itself.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from streaming.media.shm import segment as shm_segment
from tests.support.processes import Proc, install, pick_free_port, site_env, start_site, wait_for
from tests.support.webrtc_client import HttpReply, get_token, http

SIZES = {"default": (320, 240), "garden": (352, 288)}
# Small and slow enough for a shared 2-core machine.
TWO_CAMERAS = ("--simulate", "--cameras", "2",
               "--sim-args", "--width 320 --height 240 --fps 15 --bitrate 300 --detect-fps 5",
               "--camera-sim-args", "garden=--width 352 --height 288")


@dataclass
class TwoCameraSite:
    base: str
    username: str
    password: str
    token: str
    proc: Proc
    env: dict[str, str]
    segments: tuple[str, ...] = ()

    def close(self) -> None:
        """Stop the site (serve stops its simulators) and remove the segments; idempotent."""
        if self.proc.alive():
            self.proc.stop()
        for name in self.segments:
            shm_segment.unlink(name)

    def call(self, method: str, path: str, body: dict | None = None) -> HttpReply:
        """One API request with the admin's token (JSON body if given)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return http(method, self.base + path, data, headers)

    def cameras(self) -> dict[str, dict]:
        reply = self.call("GET", "/api/cameras/")
        assert reply.status == 200, reply
        return {c["camera"]: c for c in reply.json()["results"]}

    def wait_both_live(self, timeout: float = 40) -> dict[str, dict]:
        def both_live():
            cams = self.cameras()
            ok = all(cams.get(slug, {}).get("live") and cams[slug].get("width") == w
                     and cams[slug].get("height") == h for slug, (w, h) in SIZES.items())
            return cams if ok else None

        return wait_for(both_live, timeout, "both cameras live at their own sizes", interval=0.3)

    def stop_recordings(self) -> None:
        """Leave both recorders idle (a 409 'not recording' is fine)."""
        for slug in SIZES:
            self.call("POST", f"/api/cameras/{slug}/recording/stop/")


@contextlib.contextmanager
def two_camera_site(tmp: Path) -> Iterator[TwoCameraSite]:
    env = site_env(tmp, PETCAM_CAMERA_WATCH_SECONDS="1")  # new cameras picked up quickly
    username, password = install(env)
    port = pick_free_port()
    proc = start_site(env, port, tmp / "logs", serve_args=TWO_CAMERAS)
    base = f"http://127.0.0.1:{port}"
    names = (env["PETCAM_SHM_STREAM"], env["PETCAM_SHM_DETECTIONS"])
    site = TwoCameraSite(base, username, password, "", proc, env,
                         (*names, *(f"{n}_garden" for n in names)))
    try:
        site.token = get_token(base, username, password)
        site.wait_both_live()
        yield site
    finally:
        site.close()
