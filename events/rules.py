"""Event rules, Django-free: which detections count, and when an event starts and ends.

A detection *qualifies* for a rule when its class is one of the rule's classes, its
confidence is at least the minimum, the centre of its box lies inside the zone (if the
rule has one; normalized 0..1 coordinates of the picture) and the rule's schedule is
active at that wall-clock time, in the rule's time zone.

`RuleTracker` turns a rule's qualifying detections into events, on camera time:

* an object must qualify for `min_seconds` in a row (gaps shorter than `end_gap` do not
  break the run) before an event starts;
* the event ends `end_gap` seconds after the last qualifying detection;
* a new event of the same rule starts no sooner than `cooldown` seconds after the
  previous one ended.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The YOLO detector's (COCO) classes: the names a rule may use unless settings say others.
COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)
MAX_ZONE_POINTS = 32
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class RuleError(ValueError):
    """A rule field that cannot be used; `field` names it, the message says why."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


# --- validation (the API, the admin and the worker all go through these) -------------------


def clean_classes(value: object, known: Iterable[str]) -> list[str]:
    if not isinstance(value, list) or not value:
        raise RuleError("classes", "Choose at least one class, as a list of names.")
    known_set = set(known)
    out: list[str] = []
    for name in value:
        if not isinstance(name, str) or name not in known_set:
            raise RuleError("classes", f"Unknown class {name!r}: the detector knows "
                            f"{', '.join(sorted(known_set)[:8])}, ...")
        if name not in out:
            out.append(name)
    return out


def clean_zone(value: object) -> list[list[float]]:
    """[] (whole picture) or 3..32 [x, y] points in 0..1, a polygon with an area."""
    if value is None or value == []:
        return []
    if not isinstance(value, list) or not 3 <= len(value) <= MAX_ZONE_POINTS:
        raise RuleError("zone", f"A zone is a list of 3 to {MAX_ZONE_POINTS} [x, y] points "
                        "(or empty for the whole picture).")
    points: list[list[float]] = []
    for p in value:
        if (not isinstance(p, list | tuple) or len(p) != 2
                or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in p)):
            raise RuleError("zone", "Each zone point is [x, y], two numbers.")
        x, y = float(p[0]), float(p[1])
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0) or math.isnan(x) or math.isnan(y):
            raise RuleError("zone", "Zone points are fractions of the picture: x and y "
                            "between 0 and 1.")
        points.append([x, y])
    if abs(_area(points)) < 1e-6:
        raise RuleError("zone", "The zone's points enclose no area.")
    return points


def clean_schedule(value: object) -> dict | None:
    """None (always) or {"days": ["mon", ...], "start": "HH:MM", "end": "HH:MM"}.
    start > end is an overnight window that begins on the listed day; start == end is
    24 hours from start (00:00 to 00:00: the whole of each listed day)."""
    if value is None or value == {}:
        return None
    if not isinstance(value, dict) or set(value) - {"days", "start", "end"}:
        raise RuleError("schedule", "A schedule is {days, start, end}.")
    days = value.get("days", list(DAY_NAMES))
    if not isinstance(days, list) or not days or any(d not in DAY_NAMES for d in days):
        raise RuleError("schedule", f"Schedule days are some of {', '.join(DAY_NAMES)}.")
    out = {"days": [d for d in DAY_NAMES if d in days]}
    for key in ("start", "end"):
        text = value.get(key)
        if not isinstance(text, str) or not _HHMM.match(text):
            raise RuleError("schedule", f"Schedule '{key}' is a time like 07:30 (24-hour).")
        out[key] = text
    return out


def clean_timezone(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise RuleError("timezone", "A time zone name is needed, e.g. Europe/Paris.")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise RuleError("timezone", f"Unknown time zone {value!r}.") from None
    return value


def clean_seconds(field_name: str, value: object, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise RuleError(field_name, f"'{field_name}' must be a number of seconds.")
    if not 0 <= value <= high:
        raise RuleError(field_name, f"'{field_name}' must be between 0 and {high:g} seconds.")
    return float(value)


def clean_confidence(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise RuleError("min_confidence", "'min_confidence' must be between 0 and 1.")
    return float(value)


# --- geometry and time ----------------------------------------------------------------------


def _area(points: Sequence[Sequence[float]]) -> float:
    return sum(points[i - 1][0] * p[1] - p[0] * points[i - 1][1]
               for i, p in enumerate(points)) / 2


def point_in_polygon(x: float, y: float, polygon: Sequence[Sequence[float]]) -> bool:
    """Even-odd ray casting; points on an edge may fall either way."""
    inside = False
    j = len(polygon) - 1
    for i in range(len(polygon)):
        xi, yi = polygon[i]
        xj, yj = polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _minutes(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def schedule_active(schedule: dict | None, tz: str, when: datetime) -> bool:
    """Is `when` (aware) inside the schedule, read in time zone `tz`?"""
    if not schedule:
        return True
    local = when.astimezone(ZoneInfo(tz))
    now = local.hour * 60 + local.minute
    start, end = _minutes(schedule["start"]), _minutes(schedule["end"])
    today = DAY_NAMES[local.weekday()]
    yesterday = DAY_NAMES[(local.weekday() - 1) % 7]
    if start < end:
        return today in schedule["days"] and start <= now < end
    # overnight: the part after midnight belongs to the window that began the day before
    return ((today in schedule["days"] and now >= start)
            or (yesterday in schedule["days"] and now < end))


# --- the rule and its state -----------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    id: int
    classes: frozenset[str]
    min_confidence: float = 0.5
    min_seconds: float = 0.0
    cooldown: float = 0.0
    zone: tuple[tuple[float, float], ...] = ()
    schedule: dict | None = None
    timezone: str = "UTC"


@dataclass(frozen=True)
class Box:
    """One detection, with its box in normalized picture coordinates."""

    class_name: str
    confidence: float
    x: float
    y: float
    w: float
    h: float


def qualifying(rule: Rule, boxes: Iterable[Box], wall: datetime) -> list[Box]:
    """The boxes that count for `rule` at wall-clock time `wall`."""
    if not schedule_active(rule.schedule, rule.timezone, wall):
        return []
    return [b for b in boxes
            if b.class_name in rule.classes and b.confidence >= rule.min_confidence
            and (not rule.zone or point_in_polygon(b.x + b.w / 2, b.y + b.h / 2, rule.zone))]


@dataclass
class Peak:
    box: Box
    timestamp: float  # camera time
    frame_number: int


@dataclass
class OpenEvent:
    start: float  # camera time of the first qualifying detection of the run
    peak: Peak
    last_seen: float
    stored_id: int | None = None  # the Event row, once written


@dataclass
class Transition:
    kind: str  # "start" or "end"
    event: OpenEvent


@dataclass
class RuleTracker:
    """One rule's state on one camera; fed on camera time (CLOCK_MONOTONIC seconds)."""

    rule: Rule
    end_gap: float = 3.0
    run_start: float | None = None  # first qualifying detection of the current run
    run_last: float | None = None
    run_peak: Peak | None = None
    open: OpenEvent | None = None
    last_end: float | None = None
    last_best: Peak | None = None  # the best qualifying box of the latest result, if any

    def feed(self, boxes: list[Box], timestamp: float, frame_number: int,
             wall: datetime) -> list[Transition]:
        out = self.tick(timestamp)  # a long gap before this result ends what was open
        hits = qualifying(self.rule, boxes, wall)
        self.last_best = None
        if not hits:
            return out
        best = max(hits, key=lambda b: b.confidence)
        peak = self.last_best = Peak(best, timestamp, frame_number)
        if self.open is not None:
            self.open.last_seen = timestamp
            if best.confidence > self.open.peak.box.confidence:
                self.open.peak = peak
            return out
        if self.run_start is None:
            self.run_start, self.run_peak = timestamp, peak
        elif self.run_peak is None or best.confidence > self.run_peak.box.confidence:
            self.run_peak = peak
        self.run_last = timestamp
        cooled = self.last_end is None or timestamp - self.last_end >= self.rule.cooldown
        if timestamp - self.run_start >= self.rule.min_seconds and cooled:
            assert self.run_peak is not None
            self.open = OpenEvent(self.run_start, self.run_peak, timestamp)
            self.run_start = self.run_last = self.run_peak = None
            out.append(Transition("start", self.open))
        return out

    def tick(self, now: float) -> list[Transition]:
        """End the open event / forget the run when nothing qualified for `end_gap` s."""
        if self.run_last is not None and now - self.run_last > self.end_gap:
            self.run_start = self.run_last = self.run_peak = None
        if self.open is not None and now - self.open.last_seen > self.end_gap:
            ended, self.open = self.open, None
            self.last_end = ended.last_seen
            return [Transition("end", ended)]
        return []
