"""A real headless Chromium records from the live page; a note says it was saved, with a link
to it; the catalog then serves a playable file."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect, sync_playwright

from streaming.media.shm import segment as shm_segment
from tests.support.browser import launch, screenshot
from tests.support.processes import (
    start_install,
    start_simulator,
)
from tests.support.recordings import decode_file, ffprobe

pytestmark = pytest.mark.browser


def seconds(text: str) -> int:
    parts = [int(p) for p in text.split(":")]
    return parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) > 2 else 0)


def test_record_button_records_and_the_catalog_serves_a_playable_file(tmp_path, free_port):
    install = start_install(tmp_path, free_port)
    env, username, password, site = install.env, install.username, install.password, install.site
    logs = tmp_path / "logs"
    sim = start_simulator(env, logs, "--gop", "15")
    base = install.base
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(base + "/")
            page.get_by_label("Username").fill(username)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_test_id("state")).to_have_text("live", timeout=20_000)

            button = page.get_by_test_id("record-button")
            expect(button).to_have_text("● Record")
            button.click()
            expect(button).to_have_text("■ Stop", timeout=5_000)
            timer, size = page.get_by_test_id("record-timer"), page.get_by_test_id("record-size")
            expect(timer).to_be_visible()
            page.wait_for_function(
                "() => parseInt(document.querySelector('[data-testid=record-size]').textContent)"
                " > 0",
                timeout=5_000)
            first_time, first_size = seconds(timer.text_content()), size.text_content()
            page.wait_for_function(
                f"() => {{ const t = document.querySelector('[data-testid=record-timer]')"
                f".textContent.split(':').map(Number); return t[t.length - 1] + "
                f"60 * t[t.length - 2] >= {first_time + 2}; }}", timeout=6_000)
            later_size = size.text_content()
            assert float(later_size.split()[0]) > float(first_size.split()[0]) or (
                later_size.split()[1] != first_size.split()[1])
            screenshot(page, "record-button-recording")
            expect(page.get_by_test_id("record-error")).to_be_hidden()

            button.click()
            expect(button).to_have_text("● Record", timeout=10_000)
            note = page.get_by_test_id("record-saved")
            expect(note).to_be_visible()
            expect(note).to_contain_text("Saved:")
            link = page.get_by_test_id("record-saved-link")
            expect(link).to_have_text(re.compile(r"^(Cat|Recording) · \w+ \d\d:\d\d · \d+ s$"))
            screenshot(page, "record-button-saved-desktop")
            page.set_viewport_size({"width": 390, "height": 844})
            expect(note).to_be_visible()
            box = note.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
            screenshot(page, "record-button-saved-phone")
            page.set_viewport_size({"width": 1366, "height": 768})

            listing = page.request.get(base + "/api/recordings/")
            assert listing.ok, listing.text()
            recordings = listing.json()["results"]
            assert len(recordings) == 1
            rec = recordings[0]
            assert rec["status"] == "complete" and rec["duration"] >= 2.0, rec
            assert rec["frame_count"] > 60 and rec["camera"] == "default"

            download = page.request.get(base + rec["download_url"])
            assert download.ok and download.headers["content-type"] == "video/mp4"
            data = download.body()
            assert len(data) == rec["bytes"]
            path = tmp_path / "downloaded.mp4"
            path.write_bytes(data)
            probe = ffprobe(path)
            assert (probe["codec_name"], probe["width"], probe["height"]) == ("h264", 320, 240)
            assert int(probe["nb_read_frames"]) == rec["frame_count"]
            frames, errors, packets = decode_file(path)
            assert errors == [] and packets[0].is_keyframe and frames[0].key_frame

            partial = page.request.get(base + rec["download_url"],
                                       headers={"Range": "bytes=0-1023"})
            assert partial.status == 206 and partial.body() == data[:1024]
            thumb = page.request.get(base + rec["thumbnail_url"])
            assert thumb.ok and thumb.body()[:2] == b"\xff\xd8"
            screenshot(page, "record-button-stopped")

            # The note's link opens that recording's playback page, under the same title.
            title = link.text_content()
            link.click()
            page.wait_for_url(f"{base}/recordings/{rec['id']}/")
            expect(page.get_by_test_id("playback-title")).to_have_text(title)
            page.go_back()
            expect(page.get_by_test_id("state")).to_have_text("live", timeout=20_000)
            expect(page.get_by_test_id("record-saved")).to_be_hidden()  # a fresh page: no note

            # A refused start (here a full disk, answered by a stand-in) is shown, not hidden.
            page.route("**/recording/start/", lambda route: route.fulfill(
                status=507, content_type="application/json",
                body='{"error": "disk_full", "detail": "The disk is full."}'))
            button.click()
            expect(page.get_by_test_id("record-error")).to_have_text(
                "Disk full: The disk is full.", timeout=5_000)
            expect(button).to_have_text("● Record")
            browser.close()
    finally:
        sim.stop()
        site.stop()
        shm_segment.unlink(env["PETCAM_SHM_STREAM"])
        shm_segment.unlink(env["PETCAM_SHM_DETECTIONS"])
