"""Where the files derived from a recording live: next to it, named after it.

The playback indexes and the thumbnail strip are made once and cached beside the
recording (`<stem>.index.json`, `<stem>.strip.jpg`, `<stem>.strip.json`), and the recorder
writes the detection track beside it (`<stem>.detections.jsonl`), so they
go wherever the recording goes and are removed with it (recordings/retention.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from .models import media_path

KEYFRAME_INDEX = "index.json"
STRIP_IMAGE = "strip.jpg"
STRIP_INDEX = "strip.json"
DETECTIONS = "detections.jsonl"  # every detector result inside it (recording seconds)
ALL = (KEYFRAME_INDEX, STRIP_IMAGE, STRIP_INDEX, DETECTIONS)


def sidecar_relpath(file_name: str, kind: str) -> str:
    """`recordings/cam/day/x.mp4` + `index.json` -> `recordings/cam/day/x.index.json`."""
    if kind not in ALL:
        raise ValueError(f"unknown sidecar {kind!r}")
    return f"{file_name.rsplit('.', 1)[0]}.{kind}"


def sidecar_names(file_name: str | None) -> list[str]:
    """Every sidecar a recording file may have (relative to MEDIA_ROOT)."""
    return [sidecar_relpath(file_name, kind) for kind in ALL] if file_name else []


def sidecar_path(file_name: str, kind: str) -> Path:
    """Absolute path of a sidecar; ValueError if it would leave MEDIA_ROOT."""
    return media_path(sidecar_relpath(file_name, kind))


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one, never half of it."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
