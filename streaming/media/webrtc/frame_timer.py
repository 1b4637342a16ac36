"""Per-viewer timing for /metrics: camera stamp to send, and offer to first frame."""

from __future__ import annotations

import time

from prometheus_client import Histogram

# Not in the global registry: the worker exports them only through its `metrics` op.
FRAME_SEND_LATENCY = Histogram(
    "petcam_frame_send_latency_seconds",
    "Camera timestamp (shm write) to the frame handed to a viewer's RTP sender, live frames.",
    ["camera"], registry=None,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
TIME_TO_FIRST_FRAME = Histogram(
    "petcam_viewer_time_to_first_frame_seconds",
    "Offer received to the first frame handed to the viewer's RTP sender.",
    ["camera"], registry=None,
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0))

# A camera timestamp further from our clock than this is another clock (file/RTSP
# sources, a daemon on another board): not a latency.
MAX_PLAUSIBLE_LATENCY = 10.0


class FrameTimer:
    """Observes one viewer's frames; the track calls it for every frame it hands out."""

    def __init__(self, camera: str) -> None:
        self._latency = FRAME_SEND_LATENCY.labels(camera)
        self._ttff = TIME_TO_FIRST_FRAME.labels(camera)
        self._created = time.monotonic()
        self._first = True

    def sent(self, camera_ts: float, live: bool) -> None:
        now = time.monotonic()
        if self._first:
            self._first = False
            self._ttff.observe(now - self._created)
        if live and 0.0 <= now - camera_ts < MAX_PLAUSIBLE_LATENCY:
            self._latency.observe(now - camera_ts)
