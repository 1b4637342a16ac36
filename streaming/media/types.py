"""The types every part of the media path passes around: access units, camera config, errors."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, weakref_slot=True)
class AccessUnit:
    """One frame as sent downstream (weakly referable: its RTP payloads live as long as
    it does, webrtc/packetizer.PayloadCache)."""

    data: bytes  # Annex-B; the camera's bytes, plus SPS/PPS in front if an IDR lacked them
    is_idr: bool
    frame_number: int
    timestamp: float  # seconds, CLOCK_MONOTONIC
    nal_types: tuple[int, ...]  # of data, in order
    camera_id: int | None = None  # the frame header's camera_id (day/night); None: not shm


@dataclass(frozen=True)
class CameraConfig:
    """What the media worker needs of a camera (a Camera row, read once at start)."""

    slug: str
    stream_segment: str
    detections_segment: str
    source: str = ""  # "": shared memory; rtsp://... or file:///... (other sources)
    max_viewers: int = 10
    name: str = ""


class MediaError(Exception):
    """A refused or failed media operation. `code` is the API error code (e.g.
    `max_viewers`, `invalid_sdp`, `already_recording`, `disk_full`); `detail` is for people.

    The one error type of the media path: the worker raises it, sends it over the
    RPC as `{"error": code, "detail": detail}`, the web tier raises it again from the
    reply, and the API turns it into `{"error", "detail"}` with the code's status.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
