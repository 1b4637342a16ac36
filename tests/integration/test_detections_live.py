"""Detections end to end: the simulator's pet box reaches a WebSocket client, and the
history is sampled into the database."""

from __future__ import annotations

import asyncio
import json

import websockets

from streaming.simulator.scene import pet_box
from tests.support.processes import (
    create_token,
    install,
    manage,
    site_env,
    start_simulator,
    start_site,
)


def test_live_detections_match_the_simulated_pet(tmp_path, free_port):
    env = site_env(tmp_path, PETCAM_DETECTION_SAMPLE_SECONDS="0.5")
    username, _ = install(env)
    token = create_token(env, username)
    site = start_site(env, free_port, tmp_path / "logs")
    sim = start_simulator(env, tmp_path / "logs", "--detect-fps", "30")
    try:
        async def collect() -> list[dict]:
            url = f"ws://127.0.0.1:{free_port}/ws/cameras/default/?token={token}"
            got: list[dict] = []
            async with websockets.connect(url) as ws:
                while len(got) < 60:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    # Until the first frame is read the picture size is unknown (None).
                    if message["type"] == "detections" and (got or message["frame_width"]):
                        got.append(message)
            return got

        messages = asyncio.run(collect())
        numbers = [m["frame_number"] for m in messages]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
        # At the detector's 30 Hz, consecutive results are at most a frame or two apart.
        assert max(b - a for a, b in zip(numbers, numbers[1:], strict=False)) <= 3
        for m in messages:
            assert (m["camera"], m["frame_width"], m["frame_height"]) == ("default", 320, 240)
            (det,) = m["detections"]
            assert det["class_name"] == "cat" and 0.8 <= det["confidence"] <= 1.0
            x, y, w, h = pet_box(m["frame_number"], 320, 240)
            assert det["bbox"] == {"x": x, "y": y, "w": w, "h": h}
    finally:
        sim.stop()
        site.stop()
    # History was sampled into the database.
    out = manage(env, "shell", "-c", "from detections.models import DetectionSample as S;"
                 "print(S.objects.filter(class_name='cat').count())")
    assert int(out.strip().splitlines()[-1]) >= 2
