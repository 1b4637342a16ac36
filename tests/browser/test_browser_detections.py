"""Live detection boxes in a real headless Chromium: on the pet, frame by frame, at any size.

The simulator writes the pet's true box for every frame (--detect-fps 30) and
draws the frame's number into the picture (streaming/simulator/scene.py). In
the page, inside a requestVideoFrameCallback (so after the overlay handled
the same frame), the test reads the frame number from the <video>'s pixels
and what the overlay drew (window.petcamOverlay), and compares the drawn box
with `pet_box(frame_number)`: a box drawn from the newest message instead of
the frame's own result would trail the moving pet.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect, sync_playwright

from streaming.simulator.scene import pet_box
from tests.support.browser import ARTIFACTS, READ_FRAME_CODE_FN, launch, screenshot
from tests.support.processes import (
    start_install,
    start_simulator,
    wait_for,
)

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 640, 360
SIM_ARGS = ("--fps", "30", "--bitrate", "1500", "--profile", "main", "--detect-fps", "30",
            "--width", str(WIDTH), "--height", str(HEIGHT))
SAMPLES = 40  # per layout, ~4 s

# `count` presented frames, `spacingMs` apart: each with the frame number read from the
# picture, what the overlay drew for it, and the overlay canvas' alpha on the box's edge.
SAMPLE_JS = "async ({count, spacingMs}) => {" + READ_FRAME_CODE_FN + r"""
  const video = document.getElementById("video");
  const overlayCanvas = document.getElementById("overlay");
  const octx = overlayCanvas.getContext("2d");
  const canvas = document.createElement("canvas");
  canvas.width = 320; canvas.height = 64;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  const readCode = () => {
    if (video.videoWidth < 320 || video.videoHeight < 64) return null;
    ctx.drawImage(video, 0, 0, 320, 64, 0, 0, 320, 64);
    return readFrameCode(ctx);
  };
  const edgeAlpha = (box) => {
    // The box's left edge, half way down, in canvas pixels: drawn = opaque.
    const k = overlayCanvas.width / video.getBoundingClientRect().width;
    const x = Math.round(box.x * k), y = Math.round((box.y + box.h / 2) * k);
    const px = octx.getImageData(Math.max(0, x - 1), Math.max(0, y - 1), 3, 3).data;
    let max = 0;
    for (let i = 3; i < px.length; i += 4) max = Math.max(max, px[i]);
    return max;
  };
  const samples = [];
  for (let i = 0; i < count; i++) {
    samples.push(await new Promise((resolve) => video.requestVideoFrameCallback((now, md) => {
      const o = window.petcamOverlay;
      resolve({
        code: readCode(), rtp: md.rtpTimestamp, overlayRtp: o.rtpTimestamp, mode: o.mode,
        frameCameraTs: o.frameCameraTs, result: o.result,
        boxes: JSON.parse(JSON.stringify(o.boxes)), content: o.content,
        element: [video.getBoundingClientRect().width, video.getBoundingClientRect().height],
        videoSize: [video.videoWidth, video.videoHeight],
        edgeAlpha: o.boxes.length ? edgeAlpha(o.boxes[0].css) : null,
      });
    })));
    await new Promise((r) => setTimeout(r, spacingMs));
  }
  return samples;
}
"""


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def check_sample(s: dict) -> tuple[bool, float | None, str]:
    """(good, IoU, why not) of one sample."""
    if s["code"] is None:
        return False, None, "frame code unreadable"
    if s["mode"] != "clock":
        return False, None, f"mode {s['mode']}"
    if len(s["boxes"]) != 1:
        return False, None, f"{len(s['boxes'])} boxes"
    box = s["boxes"][0]
    truth = pet_box(s["code"], WIDTH, HEIGHT)
    drawn = tuple(box["video"][k] for k in "xywh")
    overlap = iou(drawn, truth)
    # The CSS box is the video box scaled into the picture's rectangle (object-fit: contain),
    # recomputed here from the element and video sizes alone.
    ew, eh = s["element"]
    vw, vh = s["videoSize"]
    scale = min(ew / vw, eh / vh)
    cx, cy = (ew - vw * scale) / 2, (eh - vh * scale) / 2
    css = box["css"]
    expected = (cx + drawn[0] * scale, cy + drawn[1] * scale, drawn[2] * scale, drawn[3] * scale)
    if max(abs(css[k] - e) for k, e in zip("xywh", expected, strict=True)) > 0.5:
        return False, overlap, f"css box {css} != {expected}"
    if not (cx - 1 <= css["x"] and css["x"] + css["w"] <= cx + vw * scale + 1
            and cy - 1 <= css["y"] and css["y"] + css["h"] <= cy + vh * scale + 1):
        return False, overlap, "css box outside the picture"
    if not s["edgeAlpha"] or s["edgeAlpha"] < 200:
        return False, overlap, f"box not on the canvas (alpha {s['edgeAlpha']})"
    if box["class_name"] != "cat":
        return False, overlap, box["class_name"]
    return overlap >= 0.5, overlap, "" if overlap >= 0.5 else f"IoU {overlap:.2f}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("detections-browser")
    install = start_install(tmp, PETCAM_DETECTION_SAMPLE_SECONDS="0.2")
    env, username, password = install.env, install.username, install.password
    port, proc = install.port, install.site
    try:
        yield {"env": env, "base": f"http://127.0.0.1:{port}", "username": username,
               "password": password, "logs": tmp / "logs"}
    finally:
        proc.stop()
        print(f"site log: {proc.log_path}")


def set_stage_shape(page, css: str | None) -> None:
    """Reshape the video's box (None: the page's own 16:9), to letterbox the picture.

    Through the element's style object: the page's CSP refuses an added <style>."""
    page.evaluate("""(css) => { document.getElementById("stage").style.cssText = css || ""; }""",
                  css)


def sample_layout(page, name: str, stage_css: str | None = None) -> dict:
    """Sample the overlay at the current viewport (optionally with another stage shape)."""
    set_stage_shape(page, stage_css)
    page.wait_for_timeout(300)  # a resize settles; the overlay redraws
    samples = page.evaluate(SAMPLE_JS, {"count": SAMPLES, "spacingMs": 60})
    results = [check_sample(s) for s in samples]
    good = sum(ok for ok, _, _ in results)
    ious = sorted(v for _, v, _ in results if v is not None)
    failures = [f"{why} (code {s['code']}, result {s['result']}, frame ts {s['frameCameraTs']}, "
                f"same frame as the overlay: {s['rtp'] == s['overlayRtp']})"
                for s, (ok, _, why) in zip(samples, results, strict=True) if not ok]
    exact = sum(1 for s in samples if s["result"] and s["code"] is not None
                and s["boxes"] and tuple(s["boxes"][0]["video"][k] for k in "xywh")
                == pet_box(s["code"], WIDTH, HEIGHT))
    content = samples[-1]["content"]
    element = samples[-1]["element"]
    print(f"{name}: element {element[0]:.0f}x{element[1]:.0f} CSS px, picture at "
          f"({content['x']:.0f},{content['y']:.0f}) {content['w']:.0f}x{content['h']:.0f}; "
          f"{good}/{len(samples)} samples IoU>=0.5 (exact box {exact}), "
          f"median IoU {ious[len(ious) // 2] if ious else float('nan'):.3f}; "
          f"failures: {failures[:5]}")
    screenshot(page, f"detections-{name}")
    return {"good": good, "n": len(samples), "content": content, "element": element,
            "failures": failures}


def test_boxes_follow_the_pet_at_any_size_and_vanish_with_the_detector(site):
    sim = start_simulator(site["env"], site["logs"], *SIM_ARGS)
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.goto(site["base"] + "/")
            page.get_by_label("Username").fill(site["username"])
            page.get_by_label("Password").fill(site["password"])
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_test_id("state")).to_have_text("live", timeout=20_000)
            page.wait_for_function("() => document.getElementById('video').videoWidth === 640",
                                   timeout=20_000)
            # The clock for our viewer session arrives ~1 s after the first frame.
            started = time.monotonic()
            page.wait_for_function("() => petcamOverlay.mode === 'clock' && "
                                   "petcamOverlay.boxes.length === 1", timeout=15_000)
            print(f"boxes frame-synced {time.monotonic() - started:.1f} s after the first "
                  f"640x360 frame; counts {page.evaluate('petcamOverlay.counts')}")
            expect(page.get_by_test_id("detections-state")).to_contain_text("frame-synced")

            layouts = [
                ("desktop-1280x800", {"width": 1280, "height": 800}, None),
                ("desktop-pillarbox", {"width": 1280, "height": 800}, "aspect-ratio: 2.4 / 1"),
                ("phone-390x844", {"width": 390, "height": 844}, None),
                ("phone-letterbox", {"width": 390, "height": 844}, "aspect-ratio: 3 / 4"),
            ]
            outcome = {}
            for name, viewport, stage_css in layouts:
                page.set_viewport_size(viewport)
                outcome[name] = sample_layout(page, name, stage_css)
            for name, r in outcome.items():
                assert r["good"] >= 0.9 * r["n"], (name, r)
            # The layouts really differ in scale and letterboxing.
            pillar, letter = outcome["desktop-pillarbox"]["content"], \
                outcome["phone-letterbox"]["content"]
            assert pillar["x"] > 50 and abs(pillar["y"]) < 1, pillar
            assert letter["y"] > 50 and abs(letter["x"]) < 1, letter
            assert outcome["phone-390x844"]["element"][0] < 400 < \
                outcome["desktop-1280x800"]["element"][0]

            # History: with a sample every 0.2 s the chart has a "cat" series by now
            # (the worker flushes samples every 2 s; the page refreshes every 60 s).
            page.set_viewport_size({"width": 1280, "height": 800})
            set_stage_shape(page, None)

            def cat_counted():
                got = page.evaluate("petcamActivity.refresh().then((a) => a.totals)")
                return got if got.get("cat", 0) > 0 else None
            totals = wait_for(cat_counted, 15, "cat samples in the activity chart", interval=1)
            expect(page.get_by_test_id("activity-legend")).to_contain_text("cat")
            painted = page.evaluate("""() => {
              const c = document.getElementById("activity-chart");
              const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
              const [r, g, b] = [0xff, 0xb0, 0x00];  // the cat colour
              let n = 0;
              for (let i = 0; i < d.length; i += 4)
                if (d[i + 3] > 200 && Math.abs(d[i] - r) < 8 && Math.abs(d[i + 1] - g) < 8
                    && Math.abs(d[i + 2] - b) < 8) n++;
              return n;
            }""")
            print(f"activity totals {totals}; {painted} cat-coloured chart pixels")
            assert painted > 0
            screenshot(page, "detections-activity")
            page.get_by_test_id("activity-chart").screenshot(
                path=str(ARTIFACTS / "detections-activity-chart.png"))

            # The detector stops (with the camera): the boxes go within ~2 s.
            assert page.evaluate("petcamOverlay.boxes.length") == 1
            stopped = time.monotonic()
            sim.stop()
            page.wait_for_function("() => petcamOverlay.boxes.length === 0", timeout=3_000)
            gone = time.monotonic() - stopped
            print(f"boxes gone {gone:.2f} s after the simulator stopped")
            assert gone <= 2.2, gone
            blank = page.evaluate("""() => {
              const c = document.getElementById("overlay");
              const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
              let n = 0;
              for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
              return n;
            }""")
            assert blank == 0, f"{blank} overlay pixels still drawn"
            screenshot(page, "detections-detector-stopped")
            browser.close()
    finally:
        sim.stop()
