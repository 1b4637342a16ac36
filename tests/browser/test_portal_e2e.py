"""The portal end to end in a real headless Chromium on a phone-sized screen.

On the shared two-camera site (`manage.py serve --simulate --cameras 2`, as
`make run CAMERAS=2`): log in, the grid plays both cameras (each tile its own player,
told apart by their sizes), open the garden camera, record with the button, find the
recording on /recordings/, play it and delete it. Screenshots land in
test-artifacts/portal-*.png.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import NO_WEBRTC, launch, screenshot
from tests.support.two_camera_site import SIZES

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def playing(selector: str, width: int) -> str:
    """JS predicate: the <video> at `selector` shows frames of this width and its clock moves.

    A function, not an expression: Playwright evaluates it once and calls it, where it
    would eval an expression on every poll (refused by the page's CSP, no 'unsafe-eval')."""
    return (f"() => {{ const v = document.querySelector({selector!r}); "
            f"return v && v.videoWidth === {width} && v.currentTime > 0.3; }}")


@pytest.fixture
def site(two_camera_site):
    two_camera_site.wait_both_live()
    two_camera_site.stop_recordings()
    return two_camera_site


def test_the_grid_says_how_each_camera_plays_and_falls_back_to_the_websocket(site):
    """An operator's tile details say "via WebRTC"; in a browser without WebRTC every
    tile plays over the WebSocket instead and says so, with a switch back offered only
    where the other way exists."""
    with sync_playwright() as pw:
        browser = launch(pw)
        for init_script, transport in (("", "WebRTC"), (NO_WEBRTC, "WebSocket")):
            context = browser.new_context(viewport={"width": 1366, "height": 768})
            context.add_init_script(init_script)
            page = context.new_page()
            page.goto(site.base + "/")
            page.get_by_label("Username").fill(site.username)
            page.get_by_label("Password").fill(site.password)
            page.get_by_role("button", name="Log in").click()
            for slug, (width, _) in SIZES.items():
                tile = page.get_by_test_id(f"tile-{slug}")
                page.wait_for_function(playing(f"[data-testid=tile-{slug}] video", width),
                                       timeout=30_000)
                expect(tile.get_by_test_id("transport")).to_have_text(transport)
                switch = tile.get_by_test_id("transport-switch")
                if transport == "WebRTC":
                    expect(switch).to_have_text("use WebSocket")
                else:
                    expect(switch).to_be_hidden()  # no WebRTC to switch to
            screenshot(page, f"portal-grid-{transport.lower()}")
            context.close()
        browser.close()


def test_watch_record_find_play_delete(site):
    base, username, password = site.base, site.username, site.password
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport=PHONE)
        page.goto(base + "/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()

        # The grid: every camera's tile plays its own camera.
        expect(page.get_by_test_id("camera-grid")).to_be_visible()
        for slug, (width, _) in SIZES.items():
            tile = page.get_by_test_id(f"tile-{slug}")
            expect(tile.get_by_test_id("state")).to_have_text("live", timeout=30_000)
            page.wait_for_function(playing(f"[data-testid=tile-{slug}] video", width),
                                   timeout=20_000)
            expect(tile.get_by_test_id("player-message")).to_be_hidden()
        # nothing wider than the phone: the tiles stack
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, "portal-grid-phone")

        # Tap a tile's picture: that camera alone, full page: live video, status, record
        # button (the tile's "Open" link goes there too).
        assert page.get_by_test_id("tile-garden").get_by_role("link", name="Open") \
            .get_attribute("href") == "/?camera=garden"
        page.get_by_test_id("tile-garden").get_by_test_id("video").click()
        page.wait_for_url(base + "/?camera=garden")
        expect(page.get_by_test_id("state")).to_have_text("live", timeout=20_000)
        page.wait_for_function(playing("[data-testid=video]", SIZES["garden"][0]),
                               timeout=20_000)
        expect(page.get_by_test_id("resolution")).to_have_text("352×288")
        screenshot(page, "portal-live-garden")

        button = page.get_by_test_id("record-button")
        expect(button).to_have_text("● Record")
        button.click()
        expect(button).to_have_text("■ Stop", timeout=10_000)
        page.wait_for_function(
            "() => { const t = document.querySelector('[data-testid=record-timer]')"
            ".textContent.split(':').map(Number); return t[t.length - 1] >= 2; }",
            timeout=15_000)
        screenshot(page, "portal-recording")
        button.click()
        expect(button).to_have_text("● Record", timeout=15_000)
        newest = site.call("GET", "/api/recordings/?camera=garden&limit=1").json()["results"][0]
        assert newest["status"] == "complete" and newest["created_by"] is not None, newest
        rec_id = newest["id"]

        # The recordings page has it (newest first): play it, then delete it.
        page.get_by_role("link", name="Recordings").click()
        page.wait_for_url(base + "/recordings/")
        card = page.locator(f"[data-testid=recording-card][data-id='{rec_id}']")
        expect(card).to_be_visible(timeout=10_000)
        card.get_by_test_id("recording-play").click()
        video = page.get_by_test_id("player-video")
        expect(video).to_be_visible()
        page.evaluate("(() => { const v = document.querySelector('[data-testid=player-video]');"
                      " v.muted = true; return v.play(); })()")
        page.wait_for_function(playing("[data-testid=player-video]", SIZES["garden"][0]),
                               timeout=15_000)
        screenshot(page, "portal-recording-playing")

        page.once("dialog", lambda dialog: dialog.accept())
        card.get_by_test_id("recording-delete").click()
        expect(card).to_have_count(0, timeout=10_000)
        expect(page.get_by_test_id("player")).to_be_hidden()
        screenshot(page, "portal-recording-deleted")
        browser.close()

    # Gone for the API too: the row and its file.
    assert site.call("GET", f"/api/recordings/{rec_id}/").status == 404
    assert site.call("GET", newest["download_url"]).status == 404


# The header's parts (title, links, log-out button) as boxes, to tell whether they share a row.
HEADER_BOXES_JS = """() => [...document.querySelectorAll(
    'header h1, header nav a, header nav button')].map(e => {
  const r = e.getBoundingClientRect();
  return {text: e.textContent.trim(), top: r.top, bottom: r.bottom, right: r.right};
})"""


def test_the_header_is_one_row_on_a_phone(site):
    """Issue 17: the header wrapped to two lines on a phone. Logged in as the superuser
    (every link, Admin too), on each page with the header."""
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport=PHONE)
        page.goto(site.base + "/accounts/login/")
        page.get_by_label("Username").fill(site.username)
        page.get_by_label("Password").fill(site.password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(site.base + "/")
        for path in ("/", "/recordings/", "/account/"):
            page.goto(site.base + path)
            boxes = page.evaluate(HEADER_BOXES_JS)
            assert {"petcam", "Live", "Recordings", "Account", "Admin"} <= {
                b["text"] for b in boxes}, boxes
            assert max(b["top"] for b in boxes) < min(b["bottom"] for b in boxes), (
                f"{path}: the header wraps: {boxes}")
            assert max(b["right"] for b in boxes) <= PHONE["width"], (path, boxes)
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, "portal-header-phone")
        browser.close()
