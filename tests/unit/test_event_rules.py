"""Event rules: which detections qualify (classes, confidence, zone on the box centre,
schedule in the rule's time zone incl. overnight windows), when events start (minimum
time in view), end (no qualifying detection for end_gap s) and may start again
(cooldown); field validation; the peak snapshot (decoded from real x264 units)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import av
import numpy as np
import pytest

from events.rules import (
    COCO_CLASSES,
    Box,
    Rule,
    RuleError,
    RuleTracker,
    clean_classes,
    clean_schedule,
    clean_timezone,
    clean_zone,
    point_in_polygon,
    qualifying,
    schedule_active,
)
from events.snapshot import BOX_COLOUR, draw_box, event_snapshot, frames_to_peak
from tests.support.recordings import camera_units

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # a Wednesday
CAT = Box("cat", 0.9, 0.4, 0.4, 0.2, 0.2)  # centre (0.5, 0.5)


def rule(**kw) -> Rule:
    return Rule(id=1, classes=frozenset(kw.pop("classes", {"cat"})), **kw)


# --- qualifying -----------------------------------------------------------------------------

def test_classes_and_min_confidence():
    r = rule(classes={"cat", "dog"}, min_confidence=0.6)
    boxes = [CAT, Box("dog", 0.59, 0, 0, 0.1, 0.1), Box("person", 0.99, 0, 0, 0.1, 0.1),
             Box("dog", 0.6, 0, 0, 0.1, 0.1)]
    assert [(b.class_name, b.confidence) for b in qualifying(r, boxes, NOON)] == [
        ("cat", 0.9), ("dog", 0.6)]


def test_zone_counts_the_box_centre():
    left_half = ((0, 0), (0.5, 0), (0.5, 1), (0, 1))
    r = rule(zone=left_half)
    inside = Box("cat", 0.9, 0.1, 0.1, 0.2, 0.2)  # centre (0.2, 0.2)
    overlapping = Box("cat", 0.9, 0.4, 0.1, 0.3, 0.2)  # overlaps, centre (0.55, 0.2): out
    assert qualifying(r, [inside, overlapping], NOON) == [inside]


def test_point_in_polygon_concave():
    # a "U": the notch in the middle is outside
    u = [(0, 0), (1, 0), (1, 1), (0.7, 1), (0.7, 0.3), (0.3, 0.3), (0.3, 1), (0, 1)]
    assert point_in_polygon(0.1, 0.5, u) and point_in_polygon(0.9, 0.5, u)
    assert not point_in_polygon(0.5, 0.6, u)
    assert point_in_polygon(0.5, 0.1, u)
    assert not point_in_polygon(1.5, 0.5, u)


@pytest.mark.parametrize(("schedule", "tz", "when", "active"), [
    (None, "UTC", NOON, True),
    ({"days": ["wed"], "start": "09:00", "end": "17:00"}, "UTC", NOON, True),
    ({"days": ["thu"], "start": "09:00", "end": "17:00"}, "UTC", NOON, False),
    ({"days": ["wed"], "start": "12:01", "end": "17:00"}, "UTC", NOON, False),
    ({"days": ["wed"], "start": "09:00", "end": "12:00"}, "UTC", NOON, False),  # end exclusive
    # 12:00 UTC is 13:00 in Paris (CET) and 07:00 in New York (EST)
    ({"days": ["wed"], "start": "13:00", "end": "14:00"}, "Europe/Paris", NOON, True),
    ({"days": ["wed"], "start": "13:00", "end": "14:00"}, "UTC", NOON, False),
    ({"days": ["wed"], "start": "06:30", "end": "07:30"}, "America/New_York", NOON, True),
    # overnight Tuesday 22:00 -> Wednesday 06:00
    ({"days": ["tue"], "start": "22:00", "end": "06:00"}, "UTC",
     datetime(2026, 12, 2, 3, 0, tzinfo=UTC), True),
    ({"days": ["tue"], "start": "22:00", "end": "06:00"}, "UTC",
     datetime(2026, 12, 1, 23, 0, tzinfo=UTC), True),
    ({"days": ["tue"], "start": "22:00", "end": "06:00"}, "UTC",
     datetime(2026, 12, 2, 23, 0, tzinfo=UTC), False),  # Wednesday night: not listed
    ({"days": ["tue"], "start": "22:00", "end": "06:00"}, "UTC",
     datetime(2026, 12, 1, 3, 0, tzinfo=UTC), False),  # Tuesday early: Monday's night
    ({"days": ["tue"], "start": "22:00", "end": "06:00"}, "UTC",
     datetime(2026, 12, 2, 6, 0, tzinfo=UTC), False),
    # start == end: 24 hours from start; 00:00-00:00 is the whole listed day
    ({"days": ["wed"], "start": "00:00", "end": "00:00"}, "UTC", NOON, True),
    ({"days": ["wed"], "start": "00:00", "end": "00:00"}, "UTC",
     datetime(2026, 12, 2, 23, 59, tzinfo=UTC), True),
    ({"days": ["wed"], "start": "00:00", "end": "00:00"}, "UTC",
     datetime(2026, 12, 3, 0, 0, tzinfo=UTC), False),  # Thursday: not listed
    ({"days": ["wed"], "start": "10:00", "end": "10:00"}, "UTC",
     datetime(2026, 12, 3, 9, 59, tzinfo=UTC), True),  # Wed 10:00 -> Thu 10:00
    # overnight in Tokyo (UTC+9): Wed 01:00 Tokyo = Tue 16:00 UTC
    ({"days": ["tue"], "start": "23:00", "end": "02:00"}, "Asia/Tokyo",
     datetime(2026, 12, 1, 16, 0, tzinfo=UTC), True),
])
def test_schedule(schedule, tz, when, active):
    assert schedule_active(schedule, tz, when) is active
    assert bool(qualifying(rule(schedule=schedule, timezone=tz), [CAT], when)) is active


# --- the tracker ----------------------------------------------------------------------------

def feed(tracker: RuleTracker, t: float, *boxes: Box, frame: int | None = None):
    return [(tr.kind, tr.event.start) for tr in
            tracker.feed(list(boxes), t, frame if frame is not None else int(t * 10), NOON)]


def test_min_time_in_view_then_end_after_gap():
    tracker = RuleTracker(rule(min_seconds=2.0), end_gap=1.0)
    assert feed(tracker, 10.0, CAT) == []
    assert feed(tracker, 11.0, CAT) == []
    assert feed(tracker, 11.9, CAT) == []
    assert feed(tracker, 12.0, CAT) == [("start", 10.0)]
    assert feed(tracker, 12.5, CAT) == []  # still open
    assert tracker.tick(13.4) == []
    (end,) = tracker.tick(13.6)
    assert end.kind == "end" and end.event.last_seen == 12.5


def test_a_gap_longer_than_end_gap_restarts_the_run():
    tracker = RuleTracker(rule(min_seconds=2.0), end_gap=1.0)
    feed(tracker, 10.0, CAT)
    feed(tracker, 11.0, CAT)
    assert feed(tracker, 12.5, CAT) == []  # 1.5 s without the cat: counting starts again
    assert feed(tracker, 13.5, CAT) == []
    assert feed(tracker, 14.5, CAT) == [("start", 12.5)]


def test_other_classes_and_weak_detections_do_not_keep_an_event_open():
    tracker = RuleTracker(rule(min_confidence=0.8), end_gap=1.0)
    assert feed(tracker, 1.0, CAT) == [("start", 1.0)]
    feed(tracker, 1.5, Box("dog", 0.99, 0, 0, 1, 1), Box("cat", 0.5, 0, 0, 1, 1))
    assert [t.kind for t in tracker.tick(2.1)] == ["end"]


def test_cooldown_between_events():
    tracker = RuleTracker(rule(cooldown=5.0), end_gap=1.0)
    assert feed(tracker, 0.0, CAT) == [("start", 0.0)]
    assert [t.kind for t in tracker.feed([], 2.0, 20, NOON)] == ["end"]  # ended at 0.0
    assert feed(tracker, 3.0, CAT) == []  # 3 s after the end: cooling
    assert feed(tracker, 4.0, CAT) == []
    assert feed(tracker, 5.0, CAT) == [("start", 3.0)]  # run kept through the cooldown


def test_peak_is_the_most_confident_detection():
    tracker = RuleTracker(rule(min_seconds=1.0), end_gap=1.0)
    feed(tracker, 0.0, Box("cat", 0.7, 0, 0, 0.1, 0.1), frame=1)
    feed(tracker, 0.5, Box("cat", 0.95, 0, 0, 0.1, 0.1), frame=2)  # before the start
    (start,) = tracker.feed([Box("cat", 0.8, 0, 0, 0.1, 0.1)], 1.0, 3, NOON)
    assert start.event.peak.frame_number == 2
    feed(tracker, 1.5, Box("cat", 0.97, 0, 0, 0.1, 0.1), frame=4)
    feed(tracker, 2.0, Box("cat", 0.6, 0, 0, 0.1, 0.1), frame=5)
    (end,) = tracker.tick(3.5)
    assert (end.event.peak.frame_number, end.event.peak.box.confidence) == (4, 0.97)


def test_outside_the_schedule_nothing_starts():
    r = rule(schedule={"days": ["thu"], "start": "00:00", "end": "23:59"})
    tracker = RuleTracker(r, end_gap=1.0)
    assert tracker.feed([CAT], 1.0, 1, NOON) == []


# --- validation -----------------------------------------------------------------------------

@pytest.mark.parametrize("zone", [
    [[0, 0], [1, 0]],  # two points
    [[0, 0], [1, 0], [1, 1.5]],  # outside the picture
    [[0, 0], [0.5, 0.5], [1, 1]],  # no area
    [[0, 0], [1, 0], "x"],
    [[0, 0], [1, 0], [True, 1]],
    [[0, 0, 0], [1, 0], [1, 1]],
    [[0.0, 0.0]] * 33,
    "left half",
])
def test_bad_zones(zone):
    with pytest.raises(RuleError) as caught:
        clean_zone(zone)
    assert caught.value.field == "zone"


def test_good_zone_and_none():
    assert clean_zone([[0, 0], [1, 0], [0.5, 1]]) == [[0.0, 0.0], [1.0, 0.0], [0.5, 1.0]]
    assert clean_zone([]) == [] and clean_zone(None) == []


@pytest.mark.parametrize("classes", [[], "cat", ["unicorn"], ["cat", 3]])
def test_bad_classes(classes):
    with pytest.raises(RuleError, match="class"):
        clean_classes(classes, COCO_CLASSES)


@pytest.mark.parametrize("schedule", [
    {"days": ["wed"], "start": "25:00", "end": "06:00"},
    {"days": ["someday"], "start": "22:00", "end": "06:00"},
    {"days": [], "start": "22:00", "end": "06:00"},
    {"days": ["wed"], "start": "22:00"},
    {"days": ["wed"], "start": "9:00", "end": "10:00"},
    {"days": ["wed"], "start": "09:00", "end": "10:00", "extra": 1},
    ["wed"],
])
def test_bad_schedules(schedule):
    with pytest.raises(RuleError) as caught:
        clean_schedule(schedule)
    assert caught.value.field == "schedule"


def test_schedule_days_are_ordered_and_timezone_checked():
    assert clean_schedule({"days": ["sun", "mon"], "start": "22:00", "end": "06:00"}) == {
        "days": ["mon", "sun"], "start": "22:00", "end": "06:00"}
    assert clean_timezone("Europe/Paris") == "Europe/Paris"
    for bad in ("Mars/Olympus", "", "../etc/passwd", 5):
        with pytest.raises(RuleError):
            clean_timezone(bad)


# --- snapshot -------------------------------------------------------------------------------

def test_snapshot_decodes_up_to_the_peak_frame_and_draws_the_box():
    units = camera_units(n=40, gop=30)  # IDR at 1 and 31
    gop = units[30:]
    assert frames_to_peak(gop, 35)[-1].frame_number == 35
    assert frames_to_peak(gop, 999)[-1].frame_number == 40  # nearest
    box = (0.25, 0.25, 0.5, 0.5)
    jpeg = event_snapshot(gop, 35, box)
    assert jpeg and jpeg[:2] == b"\xff\xd8"
    with av.open(io.BytesIO(jpeg)) as container:
        frame = next(container.decode(video=0))
    rgb = frame.to_ndarray(format="rgb24").astype(int)
    assert rgb.shape == (240, 320, 3)
    edge = rgb[60:180, 81]  # inside the left edge of the box (x = 80..82)
    assert np.abs(edge - np.array(BOX_COLOUR)).max(axis=1).mean() < 40
    inside = rgb[120, 160]
    assert np.abs(inside - np.array(BOX_COLOUR)).max() > 60  # not filled


def test_snapshot_without_a_picture():
    assert event_snapshot([], 1, None) is None


def test_draw_box_clips_to_the_picture():
    rgb = np.zeros((10, 10, 3), np.uint8)
    draw_box(rgb, (0.8, 0.8, 0.5, 0.5), width=1)
    assert (rgb[8, 8] == BOX_COLOUR).all() and (rgb[9, 9] == BOX_COLOUR).all()
    assert (rgb[0, 0] == 0).all()
