"""A real headless Chromium on /recordings/: the grid, the player (with seeking), rename in
place, a running recording's card (placeholder picture, no Delete), delete."""

from __future__ import annotations

import json
import re
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

            # Rename in place: a bad name is refused with the reason and stays editable,
            # Escape cancels, Enter saves; an empty name gives the automatic title.
            name = card.get_by_test_id("recording-name")
            card.get_by_test_id("recording-rename").click()
            box = card.get_by_test_id("recording-name-input")
            expect(box).to_be_focused()
            expect(box).to_have_value("cat nap")
            box.fill("../sofa")
            box.press("Enter")
            expect(card.get_by_test_id("recording-name-error")).to_contain_text("may not contain")
            expect(box).to_be_visible()
            box.press("Escape")
            expect(name).to_have_text("cat nap")
            card.get_by_test_id("recording-rename").click()
            box.fill("Mimi on the sofa 🐈")
            box.press("Enter")
            expect(name).to_have_text("Mimi on the sofa 🐈")
            assert client.get_json(f"/api/recordings/{rec['id']}/")[1]["name"] == \
                "Mimi on the sofa 🐈"
            card.get_by_test_id("recording-rename").click()
            box.fill("")
            box.press("Enter")
            # what the simulator's detector saw, the weekday and time, how long
            expect(name).to_have_text(re.compile(
                rf"^Cat · \w+ \d\d:\d\d · {int(rec['duration'] + 0.5)} s$"))  # Math.round
            assert client.get_json(f"/api/recordings/{rec['id']}/")[1]["name"] == ""

            # A recording in progress: a placeholder instead of a black picture, no Delete.
            headers = {"Content-Type": "application/json", "X-CSRFToken": client.csrf(),
                       "Referer": base + "/"}
            status, _, body = client.request("POST", "/api/cameras/default/recording/start/",
                                             b"{}", headers)
            assert status == 201, body
            running = json.loads(body)
            page.reload()
            expect(cards).to_have_count(2, timeout=10_000)
            live_card = page.locator(f"[data-testid=recording-card][data-id='{running['id']}']")
            expect(live_card.get_by_test_id("recording-placeholder")).to_have_text(
                "● Recording now…")
            expect(live_card.get_by_test_id("recording-thumbnail")).to_have_count(0)
            expect(live_card.get_by_test_id("recording-delete")).to_have_count(0)
            expect(live_card.get_by_test_id("recording-name")).to_have_text(
                re.compile(r"^(Recording|Cat) · \w+ \d\d:\d\d$"))  # no length yet
            screenshot(page, "recordings-page-running-phone")
            page.set_viewport_size({"width": 1366, "height": 768})
            screenshot(page, "recordings-page-running-desktop")
            page.set_viewport_size({"width": 390, "height": 844})
            status, _, body = client.request("POST", "/api/cameras/default/recording/stop/",
                                             b"", headers)
            assert status == 200, body
            client.request("DELETE", f"/api/recordings/{running['id']}/", None, headers)
            page.reload()
            expect(cards).to_have_count(1, timeout=10_000)

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
