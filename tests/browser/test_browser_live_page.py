"""A real headless Chromium logs in and watches the live camera status change."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import launch, screenshot
from tests.support.processes import install, site_env, start_simulator, start_site

pytestmark = pytest.mark.browser


def test_live_page_shows_the_camera_and_follows_a_restart(tmp_path, free_port):
    env = site_env(tmp_path)
    logs = tmp_path / "logs"
    username, password = install(env)
    site = start_site(env, free_port, logs)
    sim = start_simulator(env, logs, "--profile", "high")
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"http://127.0.0.1:{free_port}/")
            expect(page).to_have_url(f"http://127.0.0.1:{free_port}/accounts/login/?next=/")
            page.get_by_label("Username").fill(username)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Log in").click()

            badge = page.get_by_test_id("state")
            expect(badge).to_have_text("live", timeout=20_000)
            expect(page.get_by_test_id("resolution")).to_have_text("320×240")
            expect(page.get_by_test_id("profile")).to_contain_text("High (64")
            page.wait_for_function(
                "() => parseFloat(document.querySelector('[data-testid=fps]').textContent) > 20",
                timeout=10_000)
            frames = int(page.get_by_test_id("frames-read").text_content())
            assert frames > 0
            screenshot(page, "live-page-camera-on")

            sim.stop()
            expect(badge).to_have_text("camera off", timeout=10_000)
            screenshot(page, "live-page-camera-off")

            sim = start_simulator(env, logs, "--width", "640", "--height", "360")
            expect(badge).to_have_text("live", timeout=20_000)
            expect(page.get_by_test_id("resolution")).to_have_text("640×360", timeout=10_000)

            # A phone-sized screen still shows the status, in the details an admin opens.
            page.set_viewport_size({"width": 390, "height": 844})
            expect(page.get_by_test_id("fps")).to_be_hidden()
            page.get_by_test_id("details-toggle").click()
            expect(page.get_by_test_id("fps")).to_be_visible()
            screenshot(page, "live-page-phone")
            browser.close()
    finally:
        sim.stop()
        site.stop()
