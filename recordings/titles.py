"""A recording's title as a person reads it (the admin's list; the pages use title.js).

Its name if it has one, else what was seen, when, how long: "Cat · Tue 18:08 · 2 min"
(the server's time zone), never the file name.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

# No import of the model: its __str__ uses this module (a recording is duck-typed here).


def spoken_duration(seconds: float) -> str:
    s = max(0, round(seconds or 0))
    if s < 60:
        return f"{s} s"
    m = round(s / 60)
    if m < 60:
        return f"{m} min"
    return f"{m // 60} h" + (f" {m % 60} min" if m % 60 else "")


def what_was_seen(rec: Any) -> str:
    classes = list(rec.detection_classes or [])
    if not classes:
        return "Event" if rec.trigger == "event" else "Recording"
    seen = " & ".join(c[:1].upper() + c[1:] for c in classes[:2])
    return seen + (f" +{len(classes) - 2}" if len(classes) > 2 else "")


def recording_title(rec: Any) -> str:
    if rec.name:
        return rec.name
    parts = [what_was_seen(rec)]
    if rec.started_at:
        parts.append(timezone.localtime(rec.started_at).strftime("%a %H:%M"))
    if rec.status != "recording":  # no length yet while it runs
        parts.append(spoken_duration(rec.duration))
    return " · ".join(parts)
