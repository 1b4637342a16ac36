"""The detections seen from inside a recording: times in recording seconds.

Two sources. A recording made since the detection track exists has every detector
result inside it in its sidecar (`<stem>.detections.jsonl`, written by the recorder:
recordings/detection_track.py), timed on the file's own clock: that is what
playback uses ("track"). Older recordings fall back to the stored history ("history"):

A recording's second t is the wall-clock instant `started_at + t` (both the recorder
and the detection feed turn the camera's CLOCK_MONOTONIC stamps into wall-clock time
the same way), so every lookup is a range query on DetectionSample's (camera, time)
index: `detection_camera_time` (detections/models.py). Samples are taken every
PETCAM_DETECTION_SAMPLE_SECONDS while something is detected, all boxes of one
detector result share one time: they are grouped back into results here.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from detections.models import DetectionSample
from recordings.detection_track import TrackEntry, detector_interval, read_track

from .models import Recording
from .sidecars import DETECTIONS, sidecar_path

MAX_WINDOW_SECONDS = 600.0  # one /detections/ answer covers at most this much
MAX_ROWS = 20_000


def sample_seconds() -> float:
    return float(settings.PETCAM_DETECTION_SAMPLE_SECONDS) or 1.0


def span(rec: Recording) -> float:
    """Seconds the recording covers (a running one: up to now)."""
    if rec.status == Recording.Status.RECORDING and rec.started_at:
        return max(rec.duration, (timezone.now() - rec.started_at).total_seconds())
    return rec.duration


@lru_cache(maxsize=4)  # an hour at 30 results/s is ~100k entries: keep only a few
def _read_track(path: str, mtime_ns: int, size: int) -> tuple[list[TrackEntry], list[float],
                                                              float]:
    """Parsed once per file version (a running recording's track grows: new key)."""
    entries = read_track(Path(path))
    return entries, [e.time for e in entries], detector_interval(entries)


def track(rec: Recording, start: float = 0.0,
          end: float = math.inf) -> tuple[list[TrackEntry], float] | None:
    """(entries in [start, end) inside the recording, detector interval) from the sidecar,
    or None when the recording has no track."""
    try:
        path = sidecar_path(rec.file.name, DETECTIONS)
        st = path.stat()
    except (ValueError, OSError):
        return None
    entries, times, interval = _read_track(str(path), st.st_mtime_ns, st.st_size)
    # results that came while the file was being closed lie past its end: outside
    end = min(end, span(rec) + 2e-3)
    return entries[bisect_left(times, start):bisect_left(times, end)], interval


def source(rec: Recording) -> tuple[str, float]:
    """("track", detector interval) or ("history", sampling interval)."""
    found = track(rec)
    return ("track", found[1]) if found is not None else ("history", sample_seconds())


def _at(rec: Recording, t: float) -> datetime:
    return rec.started_at + timedelta(seconds=t)


def _seconds(rec: Recording, when: datetime) -> float:
    return round((when - rec.started_at).total_seconds(), 3)


def _rows(rec: Recording, start: float, end: float, limit: int = MAX_ROWS):
    """(time, frame_number, class, confidence, x, y, w, h) in [start, end), time order."""
    return (DetectionSample.objects
            .filter(camera=rec.camera, time__gte=_at(rec, start), time__lt=_at(rec, end))
            .order_by("time", "id")
            .values_list("time", "frame_number", "class_name", "confidence", "x", "y", "w", "h")
            [:limit])


def results(rec: Recording, start: float, end: float) -> list[dict]:
    """Detector results in [start, end) recording seconds, the live message's shape."""
    found = track(rec, start, end)
    if found is not None:
        return [e.to_json() for e in found[0][:MAX_ROWS]]
    grouped: list[dict] = []
    for when, frame_number, class_name, confidence, x, y, w, h in _rows(rec, start, end):
        t = _seconds(rec, when)
        if not grouped or grouped[-1]["frame_number"] != frame_number or grouped[-1]["time"] != t:
            grouped.append({"time": t, "frame_number": frame_number, "detections": []})
        grouped[-1]["detections"].append(
            {"class_name": class_name, "confidence": round(confidence, 4),
             "bbox": {"x": x, "y": y, "w": w, "h": h}})
    return grouped


def result_at(rec: Recording, t: float, tolerance: float) -> dict | None:
    """The stored result nearest recording second t, if one is within `tolerance` s."""
    nearest = None
    for result in results(rec, max(0.0, t - tolerance), t + tolerance + 0.001):
        if nearest is None or abs(result["time"] - t) < abs(nearest["time"] - t):
            nearest = result
    return nearest


def _sightings(rec: Recording, duration: float):
    """(recording second, class) of every stored sighting in time order, the step between
    results, and the longest gap inside one stretch."""
    found = track(rec)
    if found is not None:
        entries, interval = found
        # a detector missing a few frames is not the pet leaving: join gaps up to 1 s
        return ([(e.time, c[0]) for e in entries for c in e.detections], interval,
                max(1.0, 2.5 * interval))
    rows = (DetectionSample.objects
            .filter(camera=rec.camera, time__gte=rec.started_at, time__lt=_at(rec, duration))
            .order_by("time")
            .values_list("time", "class_name"))
    step = sample_seconds()
    return (((_seconds(rec, when), name) for when, name in rows.iterator(chunk_size=5000)),
            step, 2.5 * step)


def timeline(rec: Recording) -> list[dict]:
    """Per class, the stretches of the recording it was seen in: [[start, end], ...].

    Consecutive sightings of a class closer than 2.5 steps (at least 1 s for a track)
    are one stretch; a stretch
    ends one step after its last sighting (clamped to the end). The step is the
    detector's interval for a track, the sampling interval for history.
    """
    duration = span(rec)
    sightings, step, gap = _sightings(rec, duration)
    stretches: dict[str, list[list[float]]] = {}
    counts: dict[str, int] = {}
    for t, class_name in sightings:
        counts[class_name] = counts.get(class_name, 0) + 1
        runs = stretches.setdefault(class_name, [])
        if runs and t - runs[-1][1] <= gap:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    return [{"class_name": name, "count": counts[name],
             "segments": [[s, round(min(duration, e + step), 3)] for s, e in runs]}
            for name, runs in sorted(stretches.items())]
