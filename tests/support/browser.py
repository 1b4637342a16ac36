"""Headless Debian Chromium driven by Playwright, as the tests use it."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
# An init script: a browser without WebRTC (the pages fall back to live over the WebSocket).
NO_WEBRTC = "delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def launch(playwright):
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                      headless=True)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# Reads the simulator's frame code (streaming/simulator/scene.py: 2 rows of 18 blocks of
# 16 px at (16, 16), start/end markers, bits most significant first) from a 2D context
# holding the picture's top-left corner at native scale. Paste into page scripts
# (the tests and benchmarks/browser_latency_bench.py).
READ_FRAME_CODE_FN = r"""
function readFrameCode(ctx) {
  const white = (row, col) => {
    const px = ctx.getImageData(16 + 16 * col + 4, 16 + 16 * row + 4, 8, 8).data;
    let sum = 0;
    for (let i = 0; i < px.length; i += 4) sum += (px[i] + px[i + 1] + px[i + 2]) / 3;
    const mean = sum / 64;
    if (mean > 80 && mean < 176) throw new Error("grey block");
    return mean >= 128;
  };
  try {
    if (!white(0, 0) || white(1, 0) || white(0, 17) || !white(1, 17)) return null;
    let n = 0;
    for (let row = 0; row < 2; row++)
      for (let col = 1; col <= 16; col++) n = n * 2 + (white(row, col) ? 1 : 0);
    return n;
  } catch (e) { return null; }
}
"""


# A page expression: the frame number drawn by the simulator in the picture the page's
# <video id="video"> shows now (null while there is none or it cannot be read).
READ_VIDEO_FRAME_CODE = "() => {" + READ_FRAME_CODE_FN + """
  const video = document.getElementById("video");
  const w = video.videoWidth, h = video.videoHeight;
  if (!w || !h) return null;
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  ctx.drawImage(video, 0, 0, w, h);
  return readFrameCode(ctx);
}"""
