"""The playback page in a real headless Chromium: timeline, seeking, stored boxes, thumbnails,
the signed link for VLC.

One site with a live-encoding simulator (320x240, 0.5 s GOP, the pet's true box as
detections at the simulator's default 10 per second) records ~7 s through the API;
the recorder keeps every detector result in the recording's detection track. The
track's results from 1.5 s to 3.5 s of the recording are then removed (as if the pet
had left the picture), so the timeline has two stretches of "cat" and a marker in the
middle of the recording. The simulator stamps each picture's number into it
(READ_FRAME_CODE_FN in tests/support/browser.py reads it back from the <video>), and
each stored detection carries the frame number and the pet's box: clicking a marker
must show that very frame with that box drawn over it, and while the recording plays
the drawn box must sit on the pet (IoU with `pet_box` of the frame on screen).
"""

from __future__ import annotations

import re
import statistics
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

from streaming.simulator.scene import pet_box
from tests.support.browser import READ_FRAME_CODE_FN, launch, screenshot
from tests.support.processes import (
    Client,
    manage,
    start_install,
    start_simulator,
    stop_install,
    wait_for,
)

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 320, 240
GAP = (1.5, 3.5)  # recording seconds with no stored detections

# The picture on screen: its frame code, the time it was presented for, what is drawn.
SCREEN_JS = "() => {" + READ_FRAME_CODE_FN + r"""
  const video = document.querySelector("[data-testid=playback-video]");
  const c = document.createElement("canvas");
  c.width = video.videoWidth; c.height = video.videoHeight;
  const ctx = c.getContext("2d", {willReadFrequently: true});
  ctx.drawImage(video, 0, 0);
  const s = window.petcamPlayback;
  const overlay = document.querySelector("[data-testid=playback-overlay]");
  let edge = null;
  if (s.boxes.length) {  // the overlay's pixel on the middle of the box's top edge
    const b = s.boxes[0].css, dpr = overlay.width / overlay.getBoundingClientRect().width;
    const px = overlay.getContext("2d").getImageData(
      Math.round((b.x + b.w / 2) * dpr), Math.round(b.y * dpr), 1, 1).data;
    edge = [px[0], px[1], px[2], px[3]];
  }
  return {code: readFrameCode(ctx), time: video.currentTime, mediaTime: s.mediaTime,
          result: s.result, boxes: s.boxes.map((b) => b.video), edge: edge,
          clock: document.querySelector("[data-testid=playback-time]").textContent};
}"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("playback")
    install = start_install(tmp)
    sim = None
    try:
        sim = start_simulator(install.env, tmp / "logs", "--gop", "15", "--encode", "live",
                              "--bitrate", "800")
        client = Client(install.base)
        client.login(install.username, install.password)
        wait_for(lambda: client.get_json("/api/cameras/default/")[1].get("state") == "live",
                 30, "the camera to go live", interval=0.2)
        rec = client.record(7.0, "garden cat")  # > 2 detection samples after the gap
        assert rec["status"] == "complete" and rec["duration"] > 6, rec
        sim.stop()

        def stored_to_the_end():  # the feed writes its samples every 2 s
            body = client.get_json(f"/api/recordings/{rec['id']}/timeline/")[1]
            cat = [c for c in body["classes"] if c["class_name"] == "cat"]
            return cat and cat[0]["segments"][-1][1] >= rec["duration"] - 1.5

        wait_for(stored_to_the_end, 15, "the detection track to be written", interval=0.3)
        manage(install.env, "shell", "-c",
               "import json;"
               "from recordings.models import Recording;"
               "from recordings.sidecars import DETECTIONS, sidecar_path;"
               f"r = Recording.objects.get(pk={rec['id']});"
               "p = sidecar_path(r.file.name, DETECTIONS);"
               "kept = [line for line in p.read_text().splitlines()"
               f" if not {GAP[0]} <= json.loads(line)['t'] < {GAP[1]}];"
               "p.write_text(chr(10).join(kept) + chr(10))")
        timeline = client.get_json(f"/api/recordings/{rec['id']}/timeline/")[1]
        assert timeline["source"] == "track" and 0.05 < timeline["interval"] < 0.2, timeline
        segments = timeline["classes"][0]["segments"]
        assert len(segments) == 2 and segments[1][0] >= GAP[1], timeline
        yield install, rec, timeline
    finally:
        stop_install(install, sim)


def open_page(browser, install, rec, *, from_list: bool = False, **context):
    """Log in and open the recording's playback page (directly, or from its card)."""
    page = browser.new_context(**context).new_page()
    start = "/recordings/" if from_list else f"/recordings/{rec['id']}/"
    page.goto(install.base + start)
    page.get_by_label("Username").fill(install.username)
    page.get_by_label("Password").fill(install.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(install.base + start)
    if from_list:
        page.locator(f"[data-testid=recording-card][data-id='{rec['id']}']").get_by_test_id(
            "recording-open").click()
    page.wait_for_url(f"{install.base}/recordings/{rec['id']}/")
    page.wait_for_function("() => window.petcamPlayback && window.petcamPlayback.ready",
                           timeout=15_000)
    return page


def shown_after_seek(page, expected_time: float, want_result: bool = True) -> dict:
    """Wait until the frame for `expected_time` is on screen (and its boxes drawn)."""
    page.wait_for_function(
        """([t, wantResult]) => {
          const v = document.querySelector("[data-testid=playback-video]");
          const s = window.petcamPlayback;
          return !v.seeking && v.readyState >= 2 && Math.abs(v.currentTime - t) < 0.05
                 && (!wantResult || (s.result && s.boxes.length > 0));
        }""", arg=[expected_time, want_result], timeout=10_000)
    page.wait_for_timeout(100)  # one more presented frame: the overlay follows it
    return page.evaluate(SCREEN_JS)


def check_marker_seek(page, marker, rec: dict) -> dict:
    """Click a marker: the picture is the stored sample's frame, with its box drawn."""
    t = float(marker.get_attribute("data-time"))
    fps = rec["frame_count"] / rec["duration"]
    marker.click()
    shown = shown_after_seek(page, t + 0.4 / fps)
    stored = shown["result"]
    assert stored["how"] == "matched" and abs(stored["time"] - t) < 1e-6, shown
    # The frame on screen is the detection's frame (the simulator stamps the picture).
    assert shown["code"] is not None and abs(shown["code"] - stored["frame_number"]) <= 1, shown
    # The box drawn is the stored one, and it is where the pet is in that picture.
    x, y, w, h = pet_box(shown["code"], WIDTH, HEIGHT)
    box = shown["boxes"][0]
    assert abs(box["x"] - x) <= 6 and abs(box["y"] - y) <= 6, (box, (x, y, w, h))
    assert abs(box["w"] - w) <= 2 and abs(box["h"] - h) <= 2
    r, g, b, a = shown["edge"]  # the overlay painted it, in the cat's colour (the edge
    # pixel may sit half on the anti-aliased line: alpha from ~0.5 up)
    assert a > 120 and r > 200 and 120 < g < 220 and b < 80, shown["edge"]
    return shown


def test_playback_page_seeks_to_markers_and_draws_the_stored_boxes(recorded):
    install, rec, timeline = recorded
    client = Client(install.base)
    client.login(install.username, install.password)
    samples = client.get_json(f"/api/recordings/{rec['id']}/detections/")[1]["results"]
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = open_page(browser, install, rec, from_list=True,
                             viewport={"width": 1280, "height": 900})
            expect(page.get_by_test_id("playback-title")).to_have_text("garden cat")
            rows = page.get_by_test_id("timeline-row")
            expect(rows).to_have_count(1)
            markers = page.get_by_test_id("timeline-marker")
            expect(markers).to_have_count(2)
            # the markers sit at their times along the track (the day strip above it may
            # push the timeline below the fold: the clicks below are at screen positions)
            page.get_by_test_id("timeline").scroll_into_view_if_needed()
            track = page.locator("#tl-rows").bounding_box()
            second = markers.nth(1)
            t2 = float(second.get_attribute("data-time"))
            mark = second.bounding_box()
            duration = page.evaluate("window.petcamPlayback.duration")
            x_expected = track["x"] + track["width"] * t2 / duration
            assert abs(mark["x"] + mark["width"] / 2 - x_expected) < 3

            mid = check_marker_seek(page, second, rec)
            first = check_marker_seek(page, markers.nth(0), rec)
            assert mid["code"] > first["code"] and mid["time"] > first["time"]
            screenshot(page, "playback-marker-desktop")

            # Click anywhere on the timeline: jump there. The frame shown lies between the
            # frames of the detector results around that time (judged by frame numbers,
            # not a frame rate: a simulator on a loaded machine does not keep an even
            # pace), and the box drawn is the nearer result's.
            later = [r for r in samples if r["time"] > GAP[1]]
            assert len(later) >= 2, samples
            stored, after = later[0], later[1]
            target = stored["time"] + 0.4 * (after["time"] - stored["time"])
            page.mouse.click(track["x"] + track["width"] * target / duration, track["y"] + 5)
            shown = shown_after_seek(page, target, want_result=True)
            assert abs(shown["time"] - target) < 0.05
            nearest = shown["result"]
            assert nearest["how"] == "matched" and nearest["frame_number"] == \
                stored["frame_number"], (shown, stored, after)
            assert stored["frame_number"] <= shown["code"] < after["frame_number"], (
                shown, stored, after)

            # Late in the gap (> one detector interval after the last result): no box.
            page.mouse.click(track["x"] + track["width"] * (GAP[1] - 0.3) / duration,
                             track["y"] + 5)
            shown = shown_after_seek(page, GAP[1] - 0.3, want_result=False)
            assert shown["boxes"] == [] and shown["result"] is None, shown

            # Scrubbing: hovering shows the keyframe thumbnail before that time.
            page.mouse.move(track["x"] + track["width"] * 0.5, track["y"] + 5)
            preview = page.get_by_test_id("scrub-preview")
            expect(preview).to_be_visible()
            tile = page.get_by_test_id("scrub-thumbnail")
            page.wait_for_function(  # the strip is made on first use
                "() => document.querySelector('[data-testid=scrub-thumbnail]').dataset.time "
                "!== undefined", timeout=10_000)
            page.mouse.move(track["x"] + track["width"] * 0.5 + 1, track["y"] + 5)
            tile_time = float(tile.get_attribute("data-time"))
            assert 0.5 * duration - 0.6 <= tile_time <= 0.5 * duration + 1e-3
            strip = page.evaluate("window.petcamPlayback.thumbnails")
            assert strip["count"] >= 10
            screenshot(page, "playback-scrub-desktop")
        finally:
            browser.close()


# While the recording plays: per presented frame, the frame number in the picture and the
# box the page drew for that very frame (its own requestVideoFrameCallback ran first: the
# state is read a tick later and kept only if it is for the same mediaTime).
PLAY_SAMPLES_JS = "async ({until, count}) => {" + READ_FRAME_CODE_FN + r"""
  const video = document.querySelector("[data-testid=playback-video]");
  const c = document.createElement("canvas");
  c.width = video.videoWidth; c.height = video.videoHeight;
  const ctx = c.getContext("2d", {willReadFrequently: true});
  const samples = [];
  while (samples.length < count && video.currentTime < until && !video.ended) {
    samples.push(await new Promise((resolve) => video.requestVideoFrameCallback((now, md) => {
      ctx.drawImage(video, 0, 0);
      const code = readFrameCode(ctx);
      setTimeout(() => {
        const s = window.petcamPlayback;
        resolve({code: code, mediaTime: md.mediaTime, pageMediaTime: s.mediaTime,
                 result: s.result, boxes: s.boxes.map((b) => ({...b.video, cls: b.class_name}))});
      }, 0);
    })));
  }
  video.pause();
  return samples;
}"""


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    union = aw * ah + bw * bh - ix * iy
    return ix * iy / union if union > 0 else 0.0


def test_playback_boxes_sit_on_the_pet_while_it_plays(recorded):
    """The detector's own results, drawn on the frame nearest them: the box is where the pet
    is in the picture on screen (IoU against the simulator's true box)."""
    install, rec, _timeline = recorded
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = open_page(browser, install, rec, viewport={"width": 1366, "height": 768})
            assert page.evaluate("window.petcamPlayback.source") == "track"
            start = GAP[1] + 0.2
            page.evaluate(f"""new Promise((resolve) => {{
                const v = document.querySelector('[data-testid=playback-video]');
                v.addEventListener('seeked', resolve, {{once: true}});
                v.currentTime = {start};
            }})""")
            page.evaluate("document.querySelector('[data-testid=playback-video]').play()")
            samples = page.evaluate(PLAY_SAMPLES_JS, {"until": rec["duration"] - 0.2,
                                                      "count": 90})
            screenshot(page, "playback-boxes-desktop")
        finally:
            browser.close()
    usable = [s for s in samples if s["code"] is not None
              and s["pageMediaTime"] == s["mediaTime"]]
    assert len(usable) >= 20, (len(samples), samples[:5])
    ious, misses = [], []
    for s in usable:
        if len(s["boxes"]) != 1 or s["boxes"][0]["cls"] != "cat":
            misses.append(s)
            continue
        b = s["boxes"][0]
        ious.append(iou((b["x"], b["y"], b["w"], b["h"]), pet_box(s["code"], WIDTH, HEIGHT)))
    print(f"playback IoU over {len(ious)} frames (of {len(samples)} presented, {len(misses)} "
          f"without a box): mean {statistics.mean(ious):.3f}, min {min(ious):.3f}, "
          f"median {statistics.median(ious):.3f}")
    # The pet is in every frame after the gap: a frame without a box is only right where
    # the track itself has no result within one detector interval (the feed can miss a
    # result on a loaded machine: the detector overwrote it before it was read).
    client = Client(install.base)
    client.login(install.username, install.password)
    track = client.get_json(f"/api/recordings/{rec['id']}/detections/")[1]
    reach = track["interval"] + 0.5 * rec["duration"] / rec["frame_count"]
    unjustified = [s for s in misses
                   if any(abs(r["time"] - s["mediaTime"]) <= reach for r in track["results"])]
    assert not unjustified and len(misses) <= 0.1 * len(usable), misses[:3]
    # As the live test: IoU >= 0.5 on at least 90 % of the frames. Not on all: where the
    # feed missed a result (a loaded machine), the nearest is a whole interval away.
    assert sum(v >= 0.5 for v in ious) >= 0.9 * len(ious), ious
    assert statistics.mean(ious) >= 0.75, ious


def test_the_link_for_vlc_is_signed_and_plays_without_a_login(recorded):
    install, rec, _timeline = recorded
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = open_page(browser, install, rec, viewport={"width": 1366, "height": 768},
                             permissions=["clipboard-read", "clipboard-write"])
            share = page.get_by_test_id("playback-share")
            expect(share).to_be_visible()
            share.locator("summary").click()
            link = page.get_by_test_id("playback-hls")
            expect(link).to_have_value(re.compile(r"/hls/index\.m3u8\?sig=."))
            expect(page.get_by_test_id("playback-hls-expiry")).to_have_text("in 15 min")
            url = link.input_value()
            assert url.startswith(install.base + f"/api/recordings/{rec['id']}/")
            page.get_by_test_id("playback-hls-copy").click()
            expect(page.get_by_test_id("playback-hls-copied")).to_have_text(
                "Copied. Paste it into VLC.")
            assert page.evaluate("navigator.clipboard.readText()") == url
            # The prev/next buttons say what they do.
            expect(page.get_by_test_id("next-sighting")).to_have_text("Next sighting ▶")
            assert "detected" in page.get_by_test_id("prev-sighting").get_attribute("title")
            screenshot(page, "playback-share-desktop")
        finally:
            browser.close()
    # What VLC does: fetch the playlist with no cookie and no header, then its media.
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        playlist = resp.read().decode()
    media = [line for line in playlist.splitlines() if "media.mp4" in line]
    assert media and all("sig=" in line for line in media), playlist
    unsigned = urllib.request.Request(url.split("?")[0])
    try:
        urllib.request.urlopen(unsigned, timeout=10)
        raise AssertionError("the playlist was served without the signature")
    except urllib.error.HTTPError as exc:
        assert exc.code in (401, 403)


def test_playback_page_on_a_phone(recorded):
    install, rec, _timeline = recorded
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = open_page(browser, install, rec, viewport={"width": 390, "height": 844},
                             is_mobile=True, has_touch=True, device_scale_factor=2)
            width = page.evaluate("document.scrollingElement.scrollWidth")
            assert width <= 390, "the page scrolls sideways on a phone"
            timeline = page.get_by_test_id("timeline").bounding_box()
            assert timeline["x"] >= 0 and timeline["x"] + timeline["width"] <= 390
            marker = page.get_by_test_id("timeline-marker").nth(1)
            box = marker.bounding_box()
            assert box["width"] >= 20 and box["height"] >= 28  # big enough for a finger
            t = float(marker.get_attribute("data-time"))
            marker.tap()
            fps = rec["frame_count"] / rec["duration"]
            shown = shown_after_seek(page, t + 0.4 / fps)
            assert shown["result"]["how"] == "matched"
            assert abs(shown["code"] - shown["result"]["frame_number"]) <= 1, shown
            # Rename in place from the title, as on the recordings page.
            title = page.get_by_test_id("playback-title")
            expect(title).to_have_text("garden cat")
            page.get_by_test_id("recording-rename").tap()
            box = page.get_by_test_id("recording-name-input")
            box.fill("Mimi in the garden")
            box.press("Enter")
            expect(title).to_have_text("Mimi in the garden")
            assert page.title() == "Mimi in the garden · petcam"
            assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
            page.reload()
            expect(title).to_have_text("Mimi in the garden")  # saved, not just shown
            page.get_by_test_id("recording-rename").tap()
            box.fill("garden cat")
            box.press("Enter")
            expect(title).to_have_text("garden cat")
            share = page.get_by_test_id("playback-share")
            expect(share).to_be_visible()
            share.locator("summary").tap()
            expect(page.get_by_test_id("playback-hls-copy")).to_be_visible()
            assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
            screenshot(page, "playback-phone")
        finally:
            browser.close()
