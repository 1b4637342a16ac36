"""A real headless Chromium on /recordings/: the grid, the player (with seeking), delete."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect, sync_playwright

from streaming.media.shm import segment as shm_segment
from tests.support.browser import launch, screenshot
from tests.support.processes import (
    Client,
    start_install,
    start_simulator,
)

pytestmark = pytest.mark.browser


def test_recordings_page_lists_plays_seeks_and_deletes(tmp_path, free_port):
    install = start_install(tmp_path, free_port)
    env, username, password, site = install.env, install.username, install.password, install.site
    logs = tmp_path / "logs"
    sim = start_simulator(env, logs, "--gop", "15")
    base = install.base
    try:
        client = Client(base)
        client.login(username, password)
        deadline = time.monotonic() + 20
        while client.get_json("/api/cameras/default/")[1].get("state") != "live":
            assert time.monotonic() < deadline, "the camera never went live"
            time.sleep(0.2)
        rec = client.record(4.0, "cat nap")
        assert rec["status"] == "complete" and rec["duration"] >= 3.0, rec

        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
            page.goto(base + "/recordings/")
            page.get_by_label("Username").fill(username)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(base + "/recordings/")
            expect(page.get_by_role("link", name="Recordings")).to_be_visible()

            cards = page.get_by_test_id("recording-card")
            expect(cards).to_have_count(1, timeout=10_000)
            card = cards.first
            expect(card.get_by_test_id("recording-name")).to_have_text("cat nap")
            expect(card.get_by_test_id("recording-trigger")).to_have_text("manual")
            thumb = card.get_by_test_id("recording-thumbnail")
            expect(thumb).to_be_visible()
            page.wait_for_function(
                "() => document.querySelector('[data-testid=recording-thumbnail]')"
                ".naturalWidth > 0",
                timeout=10_000)

            # Filters: another trigger hides it, back to all shows it.
            page.get_by_test_id("filter-trigger").select_option("event")
            expect(cards).to_have_count(0)
            expect(page.get_by_test_id("recordings-empty")).to_be_visible()
            page.get_by_test_id("filter-trigger").select_option("")
            expect(cards).to_have_count(1)

            card.get_by_test_id("recording-play").click()
            video = page.get_by_test_id("player-video")
            expect(video).to_be_visible()
            page.evaluate("document.querySelector('[data-testid=player-video]').muted = true")
            page.evaluate("document.querySelector('[data-testid=player-video]').play()")
            page.wait_for_function(
                "() => document.querySelector('[data-testid=player-video]').currentTime > 0.5",
                timeout=10_000)
            assert page.evaluate(
                "document.querySelector('[data-testid=player-video]').videoWidth") == 320

            middle = rec["duration"] / 2
            page.evaluate(f"""new Promise((resolve) => {{
                const v = document.querySelector('[data-testid=player-video]');
                v.pause();
                v.addEventListener('seeked', resolve, {{once: true}});
                v.currentTime = {middle};
            }})""")
            at = page.evaluate("document.querySelector('[data-testid=player-video]').currentTime")
            assert abs(at - middle) < 0.5, at
            page.evaluate("document.querySelector('[data-testid=player-video]').play()")
            page.wait_for_function(
                "() => document.querySelector('[data-testid=player-video]').currentTime > "
                f"{at + 0.3}",
                timeout=10_000)
            screenshot(page, "recordings-page-playing")

            # Keep toggle round-trips through PATCH.
            keep = card.get_by_test_id("recording-keep")
            keep.check()
            expect(keep).to_be_enabled()
            deadline = time.monotonic() + 5
            while not client.get_json(f"/api/recordings/{rec['id']}/")[1]["keep"]:
                assert time.monotonic() < deadline, "keep was not saved"
                time.sleep(0.1)
            keep.uncheck()
            expect(keep).to_be_enabled()

            page.once("dialog", lambda dialog: dialog.accept())
            card.get_by_test_id("recording-delete").click()
            expect(cards).to_have_count(0, timeout=5_000)
            expect(page.get_by_test_id("recordings-empty")).to_be_visible()
            expect(page.get_by_test_id("player")).to_be_hidden()
            assert client.get_json("/api/recordings/")[1]["count"] == 0
            page.reload()
            expect(page.get_by_test_id("recordings-empty")).to_be_visible()
            expect(cards).to_have_count(0)
            screenshot(page, "recordings-page-empty")
            browser.close()
    finally:
        sim.stop()
        site.stop()
        shm_segment.unlink(env["PETCAM_SHM_STREAM"])
        shm_segment.unlink(env["PETCAM_SHM_DETECTIONS"])
