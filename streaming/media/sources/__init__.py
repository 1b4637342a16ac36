"""Where a camera's H.264 comes from: the daemon's shared memory, an RTSP camera or a file.

Every source yields Annex-B access units with a timestamp in seconds on
time.monotonic()'s clock, and keeps figures of the same shape (state
live/waiting/stalled, frames_read, attaches, restarts, ...), so the
pipeline, processor, hub, viewers, recorder and metrics treat them alike.
A source that starts a new stream (camera restart, reconnect) bumps
`stats.restarts`: the pipeline then forgets the old SPS/PPS and GOP.
"""

from __future__ import annotations

import logging

from streaming.media.sources.base import FrameSource, SourceFrame, UnusableSource
from streaming.media.sources.urls import (
    FILE,
    RTSP,
    SourceError,
    SourceSpec,
    mask_credentials,
    parse_source,
)

log = logging.getLogger("petcam.source")

__all__ = ["FrameSource", "SourceError", "SourceFrame", "SourceSpec", "mask_credentials",
           "open_source", "parse_source"]


def open_source(camera: str, source: str, stream_segment: str, *,
                stall_after: float = 2.0) -> FrameSource:
    """The source for a camera's `source` string ("" = shared memory `stream_segment`)."""
    try:
        spec = parse_source(source)
    except SourceError as exc:
        log.error("camera %s: unusable source %s: %s", camera, mask_credentials(source), exc)
        return UnusableSource(str(exc))
    if spec.kind == RTSP:
        from streaming.media.sources.rtsp import RtspSource

        return RtspSource(camera, spec, stall_after=stall_after)
    if spec.kind == FILE:
        from streaming.media.sources.file import FileSource

        return FileSource(camera, spec, stall_after=stall_after)
    from streaming.media.sources.shm import ShmSource

    return ShmSource(stream_segment, stall_after=stall_after)
