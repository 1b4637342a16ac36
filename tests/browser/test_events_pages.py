"""The events pages in a real headless Chromium, on the shared two-camera site, under the
site's Content-Security-Policy: an operator draws a zone (the left 40 % of the picture)
on the camera's still, saves the rule, the simulator's pet walks in and out of it, and
the events page shows the event with its snapshot; deleting it from the page removes it.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_browser_csp import Watch, browser, log_in, open_context, site  # noqa: F401
from tests.support.processes import wait_for

pytestmark = pytest.mark.browser

ZONE = [(0.02, 0.02), (0.4, 0.02), (0.4, 0.98), (0.02, 0.98)]


def test_draw_a_zone_and_see_the_event(site, browser):  # noqa: F811
    watch = Watch()
    context = open_context(browser, watch)
    page = watch.page(context)
    page.goto(site.base + "/events/rules/new/")
    log_in(page, site.base, site.username, site.password, "/events/rules/new/")
    page.wait_for_function(
        "() => document.getElementById('still').naturalWidth === 320", timeout=15_000)
    watch.check(page, "rule editor")

    page.get_by_test_id("rule-name").fill("Cat on the left")
    page.get_by_test_id("rule-classes").fill("cat")
    page.get_by_test_id("rule-cooldown").fill("0")
    canvas = page.get_by_test_id("rule-zone")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    for x, y in ZONE:  # clicks where a finger would: the locator scrolls the canvas in view
        canvas.click(position={"x": x * box["width"], "y": y * box["height"]})
    expect(page.locator("#zone-note")).to_contain_text("Only this area counts")
    page.get_by_test_id("rule-save").click()
    page.wait_for_url(site.base + "/events/rules/")
    expect(page.get_by_test_id("rule-row")).to_have_count(1)
    watch.check(page, "rules list")

    rules = site.call("GET", "/api/event-rules/").json()["results"]
    rule = next(r for r in rules if r["name"] == "Cat on the left")
    try:
        assert rule["classes"] == ["cat"] and rule["cooldown_seconds"] == 0
        assert len(rule["zone"]) == 4
        for (x, y), (want_x, want_y) in zip(rule["zone"], ZONE, strict=True):
            assert abs(x - want_x) < 0.01 and abs(y - want_y) < 0.01
        assert rule["timezone"]  # the browser's own

        def ended() -> list[dict] | None:  # the pet walked in and out of the zone
            found = site.call("GET", f"/api/events/?rule={rule['id']}").json()["results"]
            done = [e for e in found if e["ended_at"] and e["snapshot_url"]]
            return done or None

        event = wait_for(ended, 60, "an event of the zone rule", interval=0.5)[0]
        # its box's centre was inside the zone
        x, _, w, _ = event["box"]
        assert x + w / 2 < 0.4

        page.goto(site.base + "/events/?camera=default")
        card = page.locator(f"[data-testid=event-card][data-id='{event['id']}']")
        expect(card).to_be_visible(timeout=10_000)
        page.wait_for_function(
            f"() => document.querySelector(\"[data-testid=event-card][data-id='{event['id']}']"
            " img\").naturalWidth === 320", timeout=10_000)
        watch.check(page, "events page")
        page.on("dialog", lambda dialog: dialog.accept())
        card.get_by_test_id("event-delete").click()
        expect(card).to_have_count(0)
        assert site.call("GET", f"/api/events/{event['id']}/").status == 404
        page.wait_for_timeout(500)  # late errors of the delete, if any
        assert not watch.problems, watch.problems
    finally:
        site.call("DELETE", f"/api/event-rules/{rule['id']}/")
        context.close()
