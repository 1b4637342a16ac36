"""Recording schedules and the playback page's day strip in a real headless Chromium.

One site with the simulator and fast schedule settings (checked every 0.3 s, segments cut
every 1.5 s: PETCAM_SCHEDULE_SEGMENT_SECONDS, tests only). The owner adds an all-day
schedule on the schedules page; the worker records linked segments (real files) until
the owner turns it off there. A short manual recording (a real file) then becomes the
event recording: its row is marked trigger "event" and moved to lie across two of the
continuous segments, as an event recording made during a continuous one would.

On the playback page of the first segment (1366x768) the strip shows every segment and
the event, in their colours, the segment on screen outlined; the event lies on top of the
continuous segments; a click plays the event. On a phone (390x844, touch) the strip fits
the screen, its targets are finger-sized, and a tap plays a continuous segment.

The browser's and the schedule's time zone are chosen so that local noon is now: the
00:00-23:59 window is open, and the recordings never straddle a local midnight (the
strip shows one day).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import launch, screenshot
from tests.support.processes import (
    Client,
    manage,
    start_install,
    start_simulator,
    stop_install,
    wait_for,
)

pytestmark = pytest.mark.browser

MOVE_TO_EVENT = (
    "from datetime import timedelta;"
    "from recordings.models import Recording as R;"
    "seg = R.objects.get(pk={segment}); r = R.objects.get(pk={manual});"
    "start = seg.started_at + timedelta(seconds=0.5);"
    "R.objects.filter(pk=r.pk).update(trigger='event', detection_classes=['cat'],"
    " started_at=start, ended_at=start + timedelta(seconds=r.duration))")


def noon_here_zone() -> str:
    """An Etc/GMT zone whose local time is about noon now."""
    offset = (12 - datetime.now(UTC).hour + 12) % 24 - 12  # -12..11 hours east of UTC
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # POSIX signs are reversed


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("daystrip")
    install = start_install(tmp, PETCAM_SCHEDULE_POLL_SECONDS="0.3",
                            PETCAM_SCHEDULE_SEGMENT_SECONDS="1.5")
    sim = None
    try:
        sim = start_simulator(install.env, tmp / "logs", "--bitrate", "300", "--gop", "15")
        client = Client(install.base)
        client.login(install.username, install.password)
        wait_for(lambda: client.get_json("/api/cameras/default/")[1].get("state") == "live",
                 30, "the camera to go live", interval=0.2)
        yield install, client
    finally:
        stop_install(install, sim)


def log_in(browser, install, path: str, **context):
    page = browser.new_context(timezone_id=noon_here_zone(), **context).new_page()
    page.goto(install.base + path)
    page.get_by_label("Username").fill(install.username)
    page.get_by_label("Password").fill(install.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(install.base + path)
    return page


def recordings(client, **filters) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in {"camera": "default", **filters}.items())
    return sorted(client.get_json(f"/api/recordings/?{query}")[1]["results"],
                  key=lambda r: r["id"])


def make_schedule_on_the_page(browser, install, client) -> list[dict]:
    """Add an all-day schedule, let it record linked segments, turn it off: the segments."""
    page = log_in(browser, install, "/recordings/schedules/",
                  viewport={"width": 1366, "height": 768})
    camera = page.locator("[data-testid=schedule-camera][data-camera=default]")
    expect(camera.get_by_test_id("schedule-none")).to_be_visible()
    camera.get_by_test_id("schedule-add").click()
    form = page.get_by_test_id("schedule-form")
    for box in form.locator("input[name=day]").all():
        box.check()
    page.get_by_test_id("schedule-start").fill("00:00")
    page.get_by_test_id("schedule-end").fill("23:59")
    page.get_by_test_id("schedule-minutes").fill("1")
    expect(page.get_by_test_id("schedule-preview")).to_have_text(
        "Record continuously: every day 00:00–23:59, in 1-minute files")
    page.get_by_test_id("schedule-timezone").fill("Mars/Olympus")  # the server says why not
    page.get_by_test_id("schedule-save").click()
    expect(page.get_by_test_id("schedule-error")).to_have_text(
        "Unknown time zone 'Mars/Olympus'.")
    assert client.get_json("/api/cameras/default/recording-schedules/")[1]["results"] == []
    page.get_by_test_id("schedule-timezone").fill(noon_here_zone())  # open now, for sure
    page.get_by_test_id("schedule-save").click()
    row = camera.get_by_test_id("schedule-row")
    expect(row.get_by_test_id("schedule-words")).to_have_text(
        "Record continuously: every day 00:00–23:59, in 1-minute files")
    wait_for(lambda: len([r for r in recordings(client, trigger="schedule")
                          if r["status"] == "complete"]) >= 3,
             40, "three finished schedule segments", interval=0.3)
    row.get_by_test_id("schedule-toggle").click()  # turn it off
    expect(camera.get_by_test_id("schedule-off")).to_be_visible()
    wait_for(lambda: not client.get_json("/api/cameras/default/recording/")[1]["recording"],
             20, "the scheduled recording to stop", interval=0.3)
    page.context.close()
    # on a phone: it fits, and Edit fills the form with the schedule
    page = log_in(browser, install, "/recordings/schedules/",
                  viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    page.get_by_test_id("schedule-edit").tap()
    expect(page.get_by_test_id("schedule-start")).to_have_value("00:00")
    expect(page.get_by_test_id("schedule-preview")).to_have_text(
        "Record continuously: every day 00:00–23:59, in 1-minute files")
    expect(page.get_by_test_id("schedule-enabled")).not_to_be_checked()
    screenshot(page, "recording-schedules-phone")
    page.context.close()
    segments = recordings(client, trigger="schedule")
    assert len(segments) >= 4 and all(r["status"] == "complete" for r in segments), segments
    assert [r["previous_segment"] for r in segments] == [None, *[r["id"] for r in segments[:-1]]]
    return segments


def strip_boxes(page) -> dict[int, dict]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
        "[data-testid=day-strip-segment]")].map((b) => { const r = b.getBoundingClientRect();
        return [b.dataset.id, {x: r.x, y: r.y, w: r.width, h: r.height, trigger: b.dataset.trigger,
                               current: b.getAttribute("aria-current") === "true"}]; }))""")


def wait_playing(page, rec_id: int, seconds: float = 0.2) -> None:
    """The playback page shows recording `rec_id`, played more than `seconds` into it."""
    page.wait_for_function(
        """([id, seconds]) => { const s = window.petcamPlayback;
                     const v = document.querySelector("[data-testid=playback-video]");
                     return s && s.ready && s.recording.id === id && v.currentTime > seconds; }""",
        arg=[rec_id, seconds], timeout=15_000)


def test_the_day_strip_shows_continuous_and_event_recordings_and_plays_them(site):
    install, client = site
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            segments = make_schedule_on_the_page(browser, install, client)
            manual = client.record(1.5, "")
            manage(install.env, "shell", "-c",
                   MOVE_TO_EVENT.format(segment=segments[1]["id"], manual=manual["id"]))
            event_id, first = manual["id"], segments[0]["id"]

            # --- laptop: the first continuous segment on screen ---------------------------
            page = log_in(browser, install, f"/recordings/{first}/",
                          viewport={"width": 1366, "height": 768})
            page.wait_for_function("() => window.petcamPlayback.dayStrip", timeout=15_000)
            strip = page.get_by_test_id("day-strip")
            expect(strip).to_be_visible()
            strip.scroll_into_view_if_needed()
            legend = page.get_by_test_id("day-strip-legend")
            for word in ("Continuous", "Event", "Manual", "Playing now"):
                expect(legend).to_contain_text(word)
            boxes = strip_boxes(page)
            assert set(boxes) == {str(r["id"]) for r in segments} | {str(event_id)}, boxes
            assert [b["current"] for k, b in boxes.items() if b["current"]] == [True]
            assert boxes[str(first)]["current"]
            assert boxes[str(event_id)]["trigger"] == "event"
            assert {boxes[str(r["id"])]["trigger"] for r in segments} == {"schedule"}
            # the kinds in distinct colours
            colour = page.evaluate("""() => Object.fromEntries(["schedule", "event"].map((k) =>
                [k, getComputedStyle(document.querySelector(
                    `[data-testid=day-strip-segment][data-trigger=${k}]`)).backgroundColor]))""")
            assert colour["schedule"] != colour["event"], colour
            # linked segments join: each begins where the one before ends (to a pixel)
            for before, after in zip(segments, segments[1:], strict=False):
                a, b = boxes[str(before["id"])], boxes[str(after["id"])]
                assert abs(a["x"] + a["w"] - b["x"]) < 1.5, (a, b)
            # the event lies over the continuous segments and is what a click there hits
            ev = boxes[str(event_id)]
            second = boxes[str(segments[1]["id"])]
            assert second["x"] < ev["x"] < second["x"] + second["w"], (ev, second)
            hit = page.evaluate("([x, y]) => document.elementFromPoint(x, y).dataset.id",
                                [ev["x"] + ev["w"] / 2, ev["y"] + ev["h"] / 2])
            assert hit == str(event_id)
            screenshot(page, "day-strip-desktop")
            # the day before has none of them; back again, and no day after today
            today = page.get_by_test_id("day-strip-date").text_content()
            expect(page.get_by_test_id("day-strip-next")).to_be_disabled()
            page.get_by_test_id("day-strip-prev").click()
            expect(page.get_by_test_id("day-strip-empty")).to_be_visible()
            expect(page.get_by_test_id("day-strip-segment")).to_have_count(0)
            expect(page.get_by_test_id("day-strip-date")).not_to_have_text(today)
            page.get_by_test_id("day-strip-next").click()
            expect(page.get_by_test_id("day-strip-segment")).to_have_count(len(boxes))
            expect(page.get_by_test_id("day-strip-date")).to_have_text(today)
            expect(page.get_by_test_id("day-strip-empty")).to_be_hidden()
            page.locator(f"[data-testid=day-strip-segment][data-id='{event_id}']").click()
            page.wait_for_url(f"{install.base}/recordings/{event_id}/?play=1")
            wait_playing(page, event_id)
            page.wait_for_function("() => window.petcamPlayback.dayStrip", timeout=15_000)
            boxes = strip_boxes(page)
            assert boxes[str(event_id)]["current"]
            # paused: the line of the picture on screen is that far into the event's block
            t = page.evaluate("""async () => {
                const v = document.querySelector("[data-testid=playback-video]");
                v.pause(); await new Promise((r) => setTimeout(r, 300)); return v.currentTime; }""")
            now = page.get_by_test_id("day-strip-now").bounding_box()
            ev, span = boxes[str(event_id)], manual["duration"]
            assert 0 < t <= span + 0.1, (t, span)
            assert abs(now["x"] + now["width"] / 2 - (ev["x"] + ev["w"] * t / span)) < 3, (
                now, ev, t)
            page.context.close()

            # --- phone, touch: the event on screen, tap a continuous segment --------------
            page = log_in(browser, install, f"/recordings/{event_id}/",
                          viewport={"width": 390, "height": 844}, is_mobile=True,
                          has_touch=True, device_scale_factor=2)
            page.wait_for_function("() => window.petcamPlayback.dayStrip", timeout=15_000)
            page.get_by_test_id("day-strip").scroll_into_view_if_needed()
            track = page.locator("#ds-track").bounding_box()
            assert track["x"] >= 0 and track["x"] + track["width"] <= 390, track
            assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
            boxes = strip_boxes(page)
            assert boxes[str(event_id)]["current"]
            last = segments[-1]["id"]  # the one no event lies over
            assert boxes[str(last)]["h"] >= 40 and boxes[str(last)]["w"] >= 10, boxes[str(last)]
            screenshot(page, "day-strip-phone")
            page.locator(f"[data-testid=day-strip-segment][data-id='{last}']").tap()
            page.wait_for_url(f"{install.base}/recordings/{last}/?play=1")
            # cut when the schedule was switched off: it may be a fraction of a second
            wait_playing(page, last, min(0.2, segments[-1]["duration"] / 2))
            page.context.close()
        finally:
            browser.close()

