"""Watching the live page in a real headless Chromium (issue 17, items 1, 2 and 6).

One site, its camera named "Kitchen corner" in the admin's Camera model. Desktop
(1366x768) as the admin: the page says "starting camera" until the simulator's first
frame, then "live"; the heading is the camera's name; the technical details are folded
behind a toggle; snapshot downloads a JPEG of the frame on screen named after the camera
and the time; full screen and picture-in-picture toggle; the controls fade while live and
come back with the mouse (the camera going off: test_browser_live_video.py). Phone
(390x844, touch) as a viewer: the picture edge to edge and first, no details and no record
button, controls of 44 px or more, a tap shows and hides them, and on its side the picture
fills the screen.
Screenshots: test-artifacts/live-watch-*.png.
"""

from __future__ import annotations

import re
from pathlib import Path

import av
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import launch, screenshot
from tests.support.processes import Proc, manage, start_install, start_simulator

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
PHONE_LANDSCAPE = {"width": 844, "height": 390}
NAME = "Kitchen corner"
VIEWER = ("milo", "a long enough viewer passphrase")
SIM_ARGS = ("--width", "640", "--height", "360", "--bitrate", "800")
SNAPSHOT_NAME = re.compile(r"^Kitchen corner \d{4}-\d\d-\d\d \d\d\.\d\d\.\d\d\.jpg$")
# Every control a finger may need on the picture: its box, for the 44 px rule.
CONTROL_BOXES_JS = """() => [...document.querySelectorAll(
    '#controls button:not([hidden]), #details summary, .cameras-nav a')]
  .filter(e => e.getClientRects().length > 0)  // inside a hidden note: not on screen
  .map(e => {
  const r = e.getBoundingClientRect();
  return {id: e.id || e.textContent.trim(), w: r.width, h: r.height};
})"""


class Site:
    def __init__(self, tmp: Path) -> None:
        self.install = start_install(tmp)
        self.env, self.logs = self.install.env, tmp / "logs"
        self.base = self.install.base
        self.sim: Proc | None = None
        manage(self.env, "shell", "-c",
               "from streaming.models import Camera;"
               f"Camera.objects.filter(slug='default').update(name={NAME!r});"
               "from tests.support.roles import make_user;"
               f"make_user({VIEWER[0]!r}, 'viewers', password={VIEWER[1]!r})")

    def start_camera(self) -> None:
        self.sim = start_simulator(self.env, self.logs, *SIM_ARGS)

    def stop(self) -> None:
        if self.sim:
            self.sim.stop()
        self.install.site.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = Site(tmp_path_factory.mktemp("live-watch"))
    try:
        yield site
    finally:
        site.stop()


def log_in(page, site: Site, username: str, password: str) -> None:
    page.goto(site.base + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(site.base + "/")


def small_targets(page) -> list[dict]:
    return [b for b in page.evaluate(CONTROL_BOXES_JS) if b["w"] < 44 or b["h"] < 44]


def test_desktop_watch_snapshot_fullscreen_pip_details(site, tmp_path):
    with sync_playwright() as pw:
        browser = launch(pw)
        context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
        page = context.new_page()
        log_in(page, site, site.install.username, site.install.password)

        # Before the camera's first frame: "starting camera", not "camera off" (item 6).
        state = page.get_by_test_id("state")
        expect(state).to_have_text("starting camera", timeout=10_000)
        expect(page.get_by_test_id("player-message")).to_have_text("Starting the camera…")
        screenshot(page, "live-watch-desktop-starting")
        site.start_camera()
        expect(state).to_have_text("live", timeout=30_000)
        page.wait_for_function("() => document.getElementById('video').videoWidth === 640",
                               timeout=10_000)
        expect(page.get_by_test_id("player-message")).to_be_hidden()

        # The camera's name, not its slug; the picture fits the window.
        expect(page.get_by_test_id("camera-name")).to_have_text(NAME)
        assert page.title() == f"{NAME} · live · petcam"
        stage = page.locator("#stage").bounding_box()
        assert stage["y"] + stage["height"] <= DESKTOP["height"], stage
        assert stage["width"] >= 1000, stage

        # Technical details: folded until asked for (an admin may open them).
        details = page.get_by_test_id("details")
        expect(page.get_by_test_id("frames-read")).to_be_hidden()
        details.get_by_test_id("details-toggle").click()
        expect(page.get_by_test_id("resolution")).to_have_text("640×360", timeout=5_000)
        expect(page.get_by_test_id("frames-read")).to_be_visible()
        expect(page.get_by_test_id("connection")).to_have_text("connected")
        screenshot(page, "live-watch-desktop-details")
        details.get_by_test_id("details-toggle").click()

        # Snapshot: a JPEG of the frame on screen, at the video's own size.
        page.mouse.move(600, 300)
        with page.expect_download() as download_info:
            page.get_by_test_id("snapshot-button").click()
        download = download_info.value
        assert SNAPSHOT_NAME.match(download.suggested_filename), download.suggested_filename
        saved = tmp_path / "snapshot.jpg"
        download.save_as(saved)
        assert saved.read_bytes()[:3] == b"\xff\xd8\xff"
        with av.open(str(saved)) as container:
            picture = next(container.decode(video=0))
        assert (picture.width, picture.height) == (640, 360)
        assert picture.to_ndarray(format="gray").mean() > 20  # the scene, not a black frame
        expect(page.get_by_test_id("toast")).to_contain_text("Saved Kitchen corner")

        # Full screen: the stage (picture, boxes, controls) fills the screen; and back.
        page.get_by_test_id("fullscreen-button").click()
        page.wait_for_function("() => document.fullscreenElement === "
                               "document.getElementById('stage')", timeout=5_000)
        expect(page.get_by_test_id("fullscreen-button")).to_have_attribute(
            "aria-label", "Leave full screen")
        expect(page.get_by_test_id("stage-state")).to_be_visible()  # name and state over it
        expect(page.get_by_test_id("stage-state")).to_have_text("live")
        screenshot(page, "live-watch-desktop-fullscreen")
        page.get_by_test_id("fullscreen-button").click()
        page.wait_for_function("() => document.fullscreenElement === null", timeout=5_000)

        # Picture-in-picture, and back.
        page.get_by_test_id("pip-button").click()
        page.wait_for_function("() => document.pictureInPictureElement === "
                               "document.getElementById('video')", timeout=5_000)
        page.get_by_test_id("pip-button").click()
        page.wait_for_function("() => document.pictureInPictureElement === null",
                               timeout=5_000)

        # The controls fade while the pet is on screen and come back with the mouse.
        page.mouse.move(5, DESKTOP["height"] - 5)  # away from the picture
        page.wait_for_function("() => petcamControls.hidden()", timeout=10_000)
        screenshot(page, "live-watch-desktop-playing")
        page.mouse.move(600, 300)
        page.wait_for_function("() => !petcamControls.hidden()", timeout=2_000)
        assert small_targets(page) == []
        expect(page.get_by_test_id("record-button")).to_be_visible()

        context.close()
        browser.close()


def test_phone_viewer_tap_controls_and_landscape(site):
    assert site.sim is not None and site.sim.alive(), "runs after the desktop test"
    with sync_playwright() as pw:
        browser = launch(pw)
        context = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True,
                                      device_scale_factor=2)
        page = context.new_page()
        log_in(page, site, *VIEWER)
        expect(page.get_by_test_id("state")).to_have_text("live", timeout=30_000)
        page.wait_for_function("() => document.getElementById('video').videoWidth === 640",
                               timeout=10_000)

        # A viewer: the picture and its state, no technical details, no record button.
        expect(page.get_by_test_id("camera-name")).to_have_text(NAME)
        assert page.get_by_test_id("details").count() == 0
        assert page.get_by_test_id("record-button").count() == 0
        assert page.locator("text=Segment").count() == 0

        # Edge to edge, and the picture comes before everything else but its heading.
        stage = page.locator("#stage").bounding_box()
        activity = page.get_by_test_id("activity-chart").bounding_box()
        assert stage["x"] == 0 and stage["width"] == PHONE["width"], stage
        assert stage["y"] + stage["height"] <= activity["y"]
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert small_targets(page) == []
        screenshot(page, "live-watch-phone")

        # A tap shows the controls; a tap on the bare picture hides them again.
        page.wait_for_function("() => petcamControls.hidden()", timeout=10_000)
        screenshot(page, "live-watch-phone-playing")
        page.get_by_test_id("video").tap()
        page.wait_for_function("() => !petcamControls.hidden()", timeout=2_000)
        expect(page.get_by_test_id("snapshot-button")).to_be_visible()
        screenshot(page, "live-watch-phone-controls")
        page.get_by_test_id("video").tap()
        page.wait_for_function("() => petcamControls.hidden()", timeout=2_000)
        # While hidden, a tap where a button is only brings the controls back.
        page.get_by_test_id("snapshot-button").tap()
        page.wait_for_function("() => !petcamControls.hidden()", timeout=2_000)
        assert page.evaluate("petcamControls.snapshots.length") == 0

        # On its side: the picture fills the screen, the site header gives way.
        page.set_viewport_size(PHONE_LANDSCAPE)
        page.wait_for_function("() => document.querySelector('body > header')"
                               ".getBoundingClientRect().height === 0", timeout=2_000)
        stage = page.locator("#stage").bounding_box()
        assert stage["width"] == PHONE_LANDSCAPE["width"], stage
        assert stage["height"] >= PHONE_LANDSCAPE["height"] - 50, stage
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, "live-watch-phone-landscape")
        context.close()
        browser.close()
