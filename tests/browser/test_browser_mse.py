"""Live video over WebSocket + MSE in a real headless Chromium, when WebRTC cannot work.

1. RTCPeerConnection removed by an init script, and MediaSource offered only as
   ManagedMediaSource (what iOS Safari has): the page goes straight to WS
   /ws/cameras/default/mse/, the picture plays (the simulator's frame numbers advance,
   640x360) and the detection boxes sit on the pet frame by frame (the IoU check of
   test_browser_detections, same sampling).
2. WebRTC that never connects (setRemoteDescription hangs): the page falls back to the
   WebSocket after a few seconds and says so; the switch button goes back to WebRTC.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser.test_browser_detections import SAMPLE_JS, check_sample
from tests.support.browser import NO_WEBRTC, READ_VIDEO_FRAME_CODE, launch, screenshot
from tests.support.processes import start_install, start_simulator

pytestmark = pytest.mark.browser

SIM_ARGS = ("--fps", "30", "--bitrate", "1500", "--profile", "main", "--detect-fps", "30",
            "--width", "640", "--height", "360")
# iOS Safari (17.1+): no MediaSource, a ManagedMediaSource. Chromium has only the former;
# under the other name it exercises the page's choice (and its remote-playback switch).
IOS_LIKE = NO_WEBRTC + "window.ManagedMediaSource = window.MediaSource; delete window.MediaSource;"
HANGING_WEBRTC = """
window.RTCPeerConnection = class extends window.RTCPeerConnection {
  setRemoteDescription() { return new Promise(() => {}); }  // ICE never starts
};"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mse-browser")
    install = start_install(tmp, PETCAM_ICE_TIMEOUT="3")
    sim = start_simulator(install.env, tmp / "logs", *SIM_ARGS)
    try:
        yield install
    finally:
        sim.stop()
        install.site.stop()


def open_live(pw, site, init_script: str, wait_live: bool = True):
    browser = launch(pw)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(init_script)
    page = context.new_page()
    page.goto(site.base + "/")
    page.get_by_label("Username").fill(site.username)
    page.get_by_label("Password").fill(site.password)
    page.get_by_role("button", name="Log in").click()
    if wait_live:
        expect(page.get_by_test_id("state")).to_have_text("live", timeout=20_000)
    return browser, page


def test_without_webrtc_the_video_plays_over_the_websocket_and_boxes_draw(site):
    with sync_playwright() as pw:
        browser, page = open_live(pw, site, IOS_LIKE)
        try:
            assert page.evaluate("typeof window.RTCPeerConnection") == "undefined"
            assert page.evaluate("typeof window.MediaSource") == "undefined"
            page.wait_for_function("() => document.getElementById('video').videoWidth === 640",
                                   timeout=20_000)
            expect(page.get_by_test_id("transport")).to_have_text("WebSocket")
            expect(page.get_by_test_id("connection")).to_have_text("connected")
            assert page.evaluate("petcamPlayer.transport") == "mse"
            assert page.evaluate("document.getElementById('video').videoHeight") == 360
            assert page.evaluate("document.getElementById('video').disableRemotePlayback")
            # The picture moves: the frame number drawn into it goes up.
            first = page.wait_for_function(READ_VIDEO_FRAME_CODE, timeout=10_000).json_value()
            page.wait_for_timeout(1000)
            later = page.evaluate(READ_VIDEO_FRAME_CODE)
            assert later is not None and later >= first + 15, (first, later)
            page.wait_for_function("() => petcamOverlay.mode === 'clock' && "
                                   "petcamOverlay.boxes.length === 1", timeout=15_000)
            samples = page.evaluate(SAMPLE_JS, {"count": 40, "spacingMs": 60})
            results = [check_sample(s) for s in samples]
            good = sum(ok for ok, _, _ in results)
            failures = [why for ok, _, why in results if not ok]
            print(f"MSE: {good}/{len(samples)} samples IoU>=0.5; failures {failures[:5]}; "
                  f"lag {page.evaluate('petcamPlayer.mse.lag()')} s, "
                  f"first frame {page.evaluate('petcamPlayer.ttff()')} ms")
            screenshot(page, "live-mse")
            assert good >= 0.9 * len(samples), failures
        finally:
            browser.close()


def test_webrtc_that_does_not_connect_falls_back_and_the_switch_goes_back(site):
    with sync_playwright() as pw:
        # "live" means frames on screen: here none come until the WebSocket takes over.
        browser, page = open_live(pw, site, HANGING_WEBRTC, wait_live=False)
        try:
            expect(page.get_by_test_id("transport")).to_have_text("WebRTC")
            expect(page.get_by_test_id("state")).not_to_have_text("live")
            # No ICE within the player's 5 s: the WebSocket takes over.
            expect(page.get_by_test_id("transport")).to_have_text("WebSocket", timeout=15_000)
            page.wait_for_function("() => document.getElementById('video').videoWidth === 640",
                                   timeout=20_000)
            expect(page.get_by_test_id("state")).to_have_text("live", timeout=10_000)
            switch = page.get_by_test_id("transport-switch")
            expect(switch).to_have_text("use WebRTC")
            switch.click()
            expect(page.get_by_test_id("transport")).to_have_text("WebRTC")
            assert page.evaluate("petcamPlayer.mse") is None
        finally:
            browser.close()
