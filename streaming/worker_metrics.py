"""The media worker's own figures for Prometheus, labelled by camera.

The worker process owns the counters (reader, hub, viewers, recorder,
detections) and two histograms observed where frames leave for a viewer. The
`metrics` RPC op returns `families()` as plain JSON; the web tier's /metrics
(petcam_site/metrics.py) rebuilds them with prometheus_client, so they show up
even when the worker is another process behind Redis.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prometheus_client import Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)

if TYPE_CHECKING:
    from .media_worker import MediaWorker

# Not in the global registry: the worker exports them only through the RPC op.
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


class RecorderDrops:
    """Frames the recorder sink dropped, summed over every recording of this worker."""

    def __init__(self) -> None:
        self._seen: dict[int, int] = {}  # recording id -> dropped frames last seen
        self._retired = 0  # drops of recordings no longer tracked individually

    def total(self, status: dict) -> int:
        for row in (status, status.get("last") or {}):
            rid = row.get("id")
            dropped = row.get("dropped_frames")
            if isinstance(rid, int) and isinstance(dropped, int):
                self._seen[rid] = max(dropped, self._seen.get(rid, 0))
        while len(self._seen) > 16:  # only the latest two can still change
            self._retired += self._seen.pop(next(iter(self._seen)))
        return self._retired + sum(self._seen.values())


_RECORDER_DROPS: dict[str, RecorderDrops] = {}


def _gauge(name: str, doc: str, value: float | None, camera: str,
           families: list[Metric]) -> None:
    if value is None:
        return
    family = GaugeMetricFamily(name, doc, labels=["camera"])
    family.add_metric([camera], float(value))
    families.append(family)


def _counter(name: str, doc: str, values: dict[tuple[str, ...], float], camera: str,
             families: list[Metric], labels: tuple[str, ...] = ()) -> None:
    family = CounterMetricFamily(name, doc, labels=["camera", *labels])
    for key, value in values.items():
        family.add_metric([camera, *key], float(value))
    families.append(family)


def source_families(status: dict[str, Any], camera: str) -> list[Metric]:
    """Where the camera's frames come from, labelled by source kind (shm, rtsp, file,
    invalid): an RTSP camera's reconnects and errors are what to alert on."""
    source = status.get("source") or {}
    kind = str(source.get("kind") or "shm")
    # shm has no connection: attached to the daemon's segment is its "connected".
    connected = source.get("connected", source.get("attached", False))
    out: list[Metric] = []
    gauge = GaugeMetricFamily("petcam_source_connected",
                              "1 while the camera's source is open (shm: segment attached).",
                              labels=["camera", "kind"])
    gauge.add_metric([camera, kind], 1.0 if connected else 0.0)
    out.append(gauge)
    _counter("petcam_source_reconnects", "New streams from the source (reconnects, restarts).",
             {(kind,): source.get("reconnects", 0)}, camera, out, ("kind",))
    _counter("petcam_source_errors", "Failed opens and lost streams of the source.",
             {(kind,): source.get("errors", status["reader"].get("errors", 0))},
             camera, out, ("kind",))
    return out


def collect(worker: MediaWorker, camera: str, process: dict[str, Any]) -> list[Metric]:
    """Every petcam_ family for one camera of this worker."""
    pipeline = worker.pipelines[camera]
    viewers = worker.viewers[camera]
    status = pipeline.status()
    reader = status["reader"]
    out: list[Metric] = []
    _gauge("petcam_camera_live", "1 while frames arrive from the camera.",
           1 if status["live"] else 0, camera, out)
    _gauge("petcam_camera_fps", "Camera frame rate (camera clock).", status["fps"], camera, out)
    _gauge("petcam_camera_bitrate_bps", "Camera bitrate.",
           status["bitrate_kbps"] * 1000, camera, out)
    _gauge("petcam_worker_last_frame_age_seconds", "Seconds since the last access unit.",
           status["last_frame_age_s"], camera, out)
    _counter("petcam_frames_read", "Frames read from shared memory.",
             {(): reader["frames_read"]}, camera, out)
    _counter("petcam_frames_published", "Access units handed to the hub.",
             {(): pipeline.hub.published}, camera, out)
    _counter("petcam_frame_gaps", "Times the camera's frame_number jumped.",
             {(): reader["gaps"]}, camera, out)
    _counter("petcam_frames_missed", "Frame numbers skipped over by those jumps.",
             {(): reader["frames_missed"]}, camera, out)
    _counter("petcam_shm_overwritten", "Copies discarded because the writer lapped them.",
             {(): reader["overwritten"]}, camera, out)
    _counter("petcam_shm_restarts", "Camera daemon restarts / segment re-creations seen.",
             {(): reader["restarts"]}, camera, out)
    skipped = {(reason,): n for reason, n in reader["skipped"].items()}
    _counter("petcam_shm_skipped", "Bad slots skipped (garbage, oversize, other formats).",
             skipped, camera, out, ("reason",))
    out.extend(source_families(status, camera))

    sessions = list(viewers.sessions.values())
    _gauge("petcam_viewers", "Connected or connecting WebRTC viewers.", len(sessions), camera,
           out)
    _gauge("petcam_viewers_max", "Viewer limit.", viewers.limits.max_viewers, camera, out)
    _counter("petcam_viewers_rejected", "Offers refused because the camera was full.",
             {(): viewers.rejected_full}, camera, out)
    totals = viewers.totals()
    _counter("petcam_viewer_sessions", "Viewer sessions opened.",
             {(): totals["opened"]}, camera, out)
    _counter("petcam_viewer_bytes_sent", "H.264 bytes handed to viewers' RTP senders.",
             {(): totals["bytes_sent"]}, camera, out)
    _counter("petcam_viewer_frames_sent", "Frames handed to viewers' RTP senders.",
             {(): totals["frames_sent"]}, camera, out)

    recorder = worker.recorders[camera].status()
    drops = _RECORDER_DROPS.setdefault(camera, RecorderDrops())
    _counter("petcam_sink_dropped_frames", "Frames a slow sink lost (it skips to the next IDR).",
             {("viewers",): totals["dropped"], ("recorder",): drops.total(recorder)},
             camera, out, ("sink",))
    _gauge("petcam_recording_active", "1 while a recording runs.",
           1 if recorder["recording"] else 0, camera, out)
    _gauge("petcam_recording_bytes", "Bytes written by the current recording.",
           recorder.get("bytes", 0), camera, out)
    _gauge("petcam_recording_frames", "Frames written by the current recording.",
           recorder.get("frame_count", 0), camera, out)

    feed = worker.detections[camera].status()
    _counter("petcam_detection_results", "Detector results read and published.",
             {(): feed["published"]}, camera, out)
    _counter("petcam_detections", "Detected objects, by class.",
             {(cls,): n for cls, n in feed["per_class"].items()}, camera, out, ("class",))

    _gauge("petcam_worker_resident_memory_bytes", "Media worker RSS.",
           process["rss_mb"] * 2**20, camera, out)
    _gauge("petcam_worker_open_fds", "Media worker open file descriptors.",
           process["open_fds"], camera, out)
    _gauge("petcam_worker_asyncio_tasks", "Media worker asyncio tasks.",
           process["asyncio_tasks"], camera, out)
    for histogram in (FRAME_SEND_LATENCY, TIME_TO_FIRST_FRAME):
        for family in histogram.collect():
            family.samples = [s for s in family.samples if s.labels.get("camera") == camera]
            out.append(family)
    return out


def to_json(families: list[Metric]) -> list[dict[str, Any]]:
    """Families as JSON for the channel layer (msgpack over Redis)."""
    return [{"name": f.name, "type": f.type, "help": f.documentation,
             "samples": [[s.name, dict(s.labels), s.value] for s in f.samples]}
            for f in families]


def from_json(data: list[dict[str, Any]]) -> list[Metric]:
    families = []
    for item in data:
        family = Metric(item["name"], item["help"], item["type"])
        for name, labels, value in item["samples"]:
            family.add_sample(name, labels, float(value))
        families.append(family)
    return families
