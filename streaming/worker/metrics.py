"""One camera's petcam_ figures for Prometheus, collected in the media worker.

The worker owns the counters (source, hub, viewers, and what each camera part
adds: recorder, detections) and the two per-viewer histograms. The `metrics`
RPC op returns them as JSON (streaming/metric_families.py); the web tier's
/metrics rebuilds them, so they show up even when the worker is another process.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from streaming.media.pipeline import CameraPipeline
from streaming.media.webrtc.frame_timer import FRAME_SEND_LATENCY, TIME_TO_FIRST_FRAME
from streaming.media.webrtc.viewers import Viewers
from streaming.metric_families import counter, gauge


def source_families(status: dict[str, Any], camera: str) -> list[Metric]:
    """Where the camera's frames come from, labelled by source kind (shm, rtsp, file,
    invalid): an RTSP camera's reconnects and errors are what to alert on."""
    source = status.get("source") or {}
    kind = str(source.get("kind") or "shm")
    # shm has no connection: attached to the daemon's segment is its "connected".
    connected = source.get("connected", source.get("attached", False))
    out: list[Metric] = []
    family = GaugeMetricFamily("petcam_source_connected",
                               "1 while the camera's source is open (shm: segment attached).",
                               labels=["camera", "kind"])
    family.add_metric([camera, kind], 1.0 if connected else 0.0)
    out.append(family)
    counter("petcam_source_reconnects", "New streams from the source (reconnects, restarts).",
            {(kind,): source.get("reconnects", 0)}, camera, out, ("kind",))
    counter("petcam_source_errors", "Failed opens and lost streams of the source.",
            {(kind,): source.get("errors", status["reader"].get("errors", 0))},
            camera, out, ("kind",))
    return out


def collect(camera: str, pipeline: CameraPipeline, viewers: Viewers,
            sink_drops: dict[str, int], process: dict[str, Any]) -> list[Metric]:
    """The camera's media-path families; `sink_drops`: other sinks' dropped frames by name."""
    status = pipeline.status()
    reader = status["reader"]
    out: list[Metric] = []
    gauge("petcam_camera_live", "1 while frames arrive from the camera.",
          1 if status["live"] else 0, camera, out)
    gauge("petcam_camera_fps", "Camera frame rate (camera clock).", status["fps"], camera, out)
    gauge("petcam_camera_bitrate_bps", "Camera bitrate.",
          status["bitrate_kbps"] * 1000, camera, out)
    gauge("petcam_worker_last_frame_age_seconds", "Seconds since the last access unit.",
          status["last_frame_age_s"], camera, out)
    # Day/night (shm cameras): the frame header's camera_id, and how often it changed.
    gauge("petcam_camera_active_id", "camera_id of the board's camera now streaming "
          "(0 day, 1 night).", status.get("camera_id"), camera, out)
    counter("petcam_camera_switches", "Day/night camera switches seen.",
            {(): status.get("camera_switches", 0)}, camera, out)
    counter("petcam_frames_read", "Frames read from shared memory.",
            {(): reader["frames_read"]}, camera, out)
    counter("petcam_frames_published", "Access units handed to the hub.",
            {(): pipeline.hub.published}, camera, out)
    counter("petcam_frame_gaps", "Times the camera's frame_number jumped.",
            {(): reader["gaps"]}, camera, out)
    counter("petcam_frames_missed", "Frame numbers skipped over by those jumps.",
            {(): reader["frames_missed"]}, camera, out)
    counter("petcam_shm_overwritten", "Copies discarded because the writer lapped them.",
            {(): reader["overwritten"]}, camera, out)
    counter("petcam_shm_restarts", "Camera daemon restarts / segment re-creations seen.",
            {(): reader["restarts"]}, camera, out)
    skipped = {(reason,): n for reason, n in reader["skipped"].items()}
    counter("petcam_shm_skipped", "Bad slots skipped (garbage, oversize, other formats).",
            skipped, camera, out, ("reason",))
    out.extend(source_families(status, camera))

    gauge("petcam_viewers", "Connected or connecting viewers (WebRTC and WebSocket/MSE).",
          len(viewers.sessions),
          camera, out)
    gauge("petcam_viewers_max", "Viewer limit.", viewers.limits.max_viewers, camera, out)
    gauge("petcam_viewers_pending", "Viewers answered or being answered, not connected yet.",
          viewers.pending(), camera, out)
    counter("petcam_viewers_rejected", "Offers refused because the camera was full.",
            {(): viewers.rejected_full}, camera, out)
    counter("petcam_viewers_rejected_per_user",
            "Offers refused because the user had PETCAM_MAX_VIEWERS_PER_USER sessions.",
            {(): viewers.rejected_per_user}, camera, out)
    counter("petcam_viewers_replaced", "Sessions not connected yet that gave their slot to "
            "a newer offer.",
            {(): viewers.replaced}, camera, out)
    totals = viewers.totals()
    counter("petcam_viewer_sessions", "Viewer sessions opened.",
            {(): totals["opened"]}, camera, out)
    counter("petcam_viewer_bytes_sent", "H.264 bytes handed to viewers' RTP senders.",
            {(): totals["bytes_sent"]}, camera, out)
    counter("petcam_viewer_frames_sent", "Frames handed to viewers' RTP senders.",
            {(): totals["frames_sent"]}, camera, out)
    drops = {("viewers",): totals["dropped"], **{(name,): n for name, n in sink_drops.items()}}
    counter("petcam_sink_dropped_frames", "Frames a slow sink lost (it skips to the next IDR).",
            drops, camera, out, ("sink",))

    gauge("petcam_worker_resident_memory_bytes", "Media worker RSS.",
          process["rss_mb"] * 2**20, camera, out)
    gauge("petcam_worker_open_fds", "Media worker open file descriptors.",
          process["open_fds"], camera, out)
    gauge("petcam_worker_asyncio_tasks", "Media worker asyncio tasks.",
          process["asyncio_tasks"], camera, out)
    for histogram in (FRAME_SEND_LATENCY, TIME_TO_FIRST_FRAME):
        for family in histogram.collect():
            family.samples = [s for s in family.samples if s.labels.get("camera") == camera]
            out.append(family)
    return out
