"""An event end to end, every part real: the camera simulator's pet ("cat") detections
fire a rule in the site's media worker; the event starts with its own snapshot (the
triggering frame, box drawn); its start reaches a phone as a decrypted Web Push (local
push service, VAPID checked), a real mosquitto as the MQTT event message and a loopback
HTTP receiver as a signed webhook POST, each carrying the event's id and snapshot URL;
once the camera stops the event ends with the peak's snapshot and its clip (the event
recording, read by ffprobe). Prints each channel's delay from the detection (the
camera's timestamp of the triggering frame, mapped to wall time as the worker does);
timings are not asserted here (benchmarks/event_delivery_bench.py measures them)."""

from __future__ import annotations

import io
import json
from datetime import datetime

import av
import numpy as np

from events.snapshot import BOX_COLOUR
from streaming.simulator.scene import pet_box
from tests.support.event_delivery import CHANNELS, DeliveryProbe
from tests.support.processes import site_env, wait_for
from tests.support.recordings import ffprobe
from tests.support.webrtc_client import http, running_site, simulated_camera

WIDTH, HEIGHT = 320, 240


def check_snapshot(jpeg: bytes, event: dict) -> None:
    """A JPEG of the simulator's picture with the pet's true box of the event's frame
    drawn on its edges (the simulator draws the pet exactly at pet_box)."""
    assert jpeg[:2] == b"\xff\xd8"
    with av.open(io.BytesIO(jpeg)) as container:
        rgb = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert rgb.shape == (HEIGHT, WIDTH, 3)
    x, y, w, h = pet_box(event["frame_number"], WIDTH, HEIGHT)
    assert np.allclose(event["box"], [x / WIDTH, y / HEIGHT, w / WIDTH, h / HEIGHT],
                       atol=1e-6)
    left_edge = rgb[y + 2:y + h - 2, x + 1]
    off = np.abs(left_edge - np.array(BOX_COLOUR)).max(axis=1)
    assert np.median(off) < 50, off


def test_detection_to_push_mqtt_and_webhook_with_snapshot_and_clip(tmp_path):
    with DeliveryProbe(tmp_path) as probe:
        env = site_env(tmp_path, **probe.env(), PETCAM_EVENT_CLASSES="cat",
                       PETCAM_EVENT_PREROLL_SECONDS="1", PETCAM_EVENT_POSTROLL_SECONDS="1",
                       PETCAM_EVENT_END_SECONDS="1", PETCAM_EVENT_RULES_REFRESH_SECONDS="0.3")
        with running_site(env, tmp_path / "logs") as site:
            auth = {"Authorization": f"Bearer {site.token}"}

            def api(method: str, path: str, body: object = None) -> tuple[int, dict]:
                data = None if body is None else json.dumps(body).encode()
                headers = {**auth, "Content-Type": "application/json"} if data else auth
                reply = http(method, site.base + path, data, headers)
                return reply.status, reply.json()

            with simulated_camera(site, "--bitrate", "300", "--detect-fps", "15"):
                # The rule comes once the worker holds a GOP, as on a camera that has been
                # running (a worker that joins mid-GOP starts its first event without a
                # snapshot: tests/unit/test_event_worker_part.py).
                wait_for(lambda: api("GET", "/api/cameras/default/")[1].get("gop_frames"), 20,
                         "the worker to hold a GOP")
                rule = probe.connect(api, classes=["cat"], min_confidence=0.8)

                def first_event() -> dict | None:
                    code, body = api("GET", f"/api/events/?rule={rule}")
                    assert code == 200, body
                    return body["results"][-1] if body["results"] else None

                started = wait_for(first_event, 30, "the rule's first event")
                arrived = wait_for(
                    lambda: (len(got := probe.deliveries(started["id"])) == 3 and got)
                    or probe.errors(), 20, "the start on all three channels")
                assert probe.errors() == [] and sorted(arrived) == sorted(CHANNELS), arrived
                # While the event lasts, its snapshot is the triggering frame's.
                code, event = api("GET", f"/api/events/{started['id']}/")
                assert event["ended_at"] is None and event["snapshot_url"]
                snap = http("GET", site.base + event["snapshot_url"], None, auth)
                assert snap.status == 200 and "no-cache" in snap.headers["Cache-Control"]
                check_snapshot(snap.body, event)

                def recorded() -> int | None:  # a clip worth watching: 2 s of it
                    _, state = api("GET", "/api/cameras/default/recording/")
                    return state.get("frame_count") if state.get("frame_count", 0) >= 60 \
                        else None

                wait_for(recorded, 20, "the event recording to hold 2 s")

            # The camera stopped: the event ends 1 s after the last detection, its
            # recording 1 s after that (post-roll).
            def finished() -> dict | None:
                _, ev = api("GET", f"/api/events/{started['id']}/")
                if not (ev["ended_at"] and ev["recording"]):
                    return None
                _, rec = api("GET", f"/api/recordings/{ev['recording']}/")
                return ev if rec["status"] == "complete" else None

            ev = wait_for(finished, 30, "the event and its recording to end")
            snap = http("GET", site.base + ev["snapshot_url"], None, auth)
            assert snap.status == 200 and "max-age" in snap.headers["Cache-Control"]
            check_snapshot(snap.body, ev)  # the peak's frame now (maybe the same one)
            clip = http("GET", site.base + ev["clip_url"], None, auth)
            assert clip.status == 200
            (tmp_path / "clip.mp4").write_bytes(clip.body)
            probe_info = ffprobe(tmp_path / "clip.mp4")
            assert probe_info["codec_name"] == "h264" and int(probe_info["nb_read_frames"]) >= 60
            ended = wait_for(lambda: len(got := probe.deliveries(ev["id"], "ended")) == 2
                             and got, 20, "the end over MQTT and the webhook")

    # Each channel carried the event's id and its own snapshot, from the start on.
    snapshot_url = f"/api/events/{ev['id']}/snapshot/"
    for channel, got in arrived.items():
        assert got.event["id"] == ev["id"], (channel, got.payload)
        assert got.event["snapshot_url"] == snapshot_url, (channel, got.payload)
    push = arrived["push"].payload
    assert push["image"] == snapshot_url and push["url"] == f"/events/#event-{ev['id']}"
    assert arrived["webhook"].payload["type"] == "event.started"
    assert sorted(ended) == ["mqtt", "webhook"]  # a push only at the start
    assert ended["webhook"].event["recording"] == ev["recording"]

    detected = datetime.fromisoformat(started["started_at"]).timestamp()
    stored = datetime.fromisoformat(started["stored_at"]).timestamp() - detected
    print(f"\nafter the detection (camera time -> wall): row stored {stored * 1000:.0f} ms; "
          + ", ".join(f"{c} {(arrived[c].at - detected) * 1000:.0f} ms" for c in CHANNELS))
