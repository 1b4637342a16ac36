"""An IP camera over RTSP (TCP interleaved by default, or UDP) as a frame source.

FFmpeg's RTSP client does the protocol and hands over Annex-B access units
(its H.264 depacketizer adds the start codes, the SDP's sprop-parameter-sets
become Annex-B extradata). Timeouts bound every step: the socket I/O timeout
(`timeout`, microseconds) and PyAV's open/read timeouts, so a dead or silent
camera is noticed within `read_timeout` seconds and reconnected with backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from streaming.media.sources.av_source import AvSource
from streaming.media.sources.base import SourceFrame
from streaming.media.sources.urls import SourceSpec


class RtspSource(AvSource):
    kind = "rtsp"

    def __init__(self, camera: str, spec: SourceSpec, **kwargs: Any) -> None:
        super().__init__(camera, **kwargs)
        self.spec = spec

    @property
    def label(self) -> str:
        return f"RTSP {self.spec.display} ({self.spec.transport})"

    def options(self) -> dict[str, str]:
        return {
            "rtsp_transport": self.spec.transport,
            "timeout": str(int(self.read_timeout * 1e6)),  # socket I/O, microseconds
            # No probing: it would hold back ~1 s of frames and then hand them over in a
            # burst. The SDP's sprop-parameter-sets give the size; pts give the rate.
            "analyzeduration": "0",
            "probesize": "32",
        }

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "url": self.spec.display, "transport": self.spec.transport}

    def _session(self, should_stop: Callable[[], bool]) -> Iterator[SourceFrame]:
        container = self._open(self.spec.url, self.options())
        try:
            stream = self._video_stream(container)
            self._connected(stream)
            self.timeline.reset()  # the new stream's pts start anywhere
            interval = self._interval(stream)
            first: float | None = None
            rel = -interval
            for data, pts, _keyframe in self._packets(container, stream):
                if pts is None:
                    rel += interval
                else:
                    if first is None:  # frames without pts before it: one interval each
                        first = pts - (rel + interval)
                    if 0 < pts - first - rel < 1.0:  # the camera's rate, from its own clock
                        interval += (pts - first - rel - interval) * 0.1
                        self.stats.frame_interval_ms = round(interval * 1000)
                    rel = pts - first
                yield self._frame(data, self.timeline.stamp(rel, time.monotonic()), stream)
                if should_stop():
                    return
        finally:
            container.close()
