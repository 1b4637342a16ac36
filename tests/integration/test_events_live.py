"""Event rules end to end with the real simulator: its pet ("cat") detections fire a rule;
the Event row appears while the pet is in view, and once the camera stops it ends with a
JPEG snapshot of the peak frame (the box drawn where the simulator drew the pet) and the
event recording (pre/post-roll) as its clip. Prints the delay from the detection (the
camera's timestamp of the first qualifying frame) to the row being stored. The rule's
webhook (a real HTTP receiver on loopback, allowed by the setting) gets the start and the
end, signed."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from datetime import datetime, timedelta

import av
import numpy as np

from events.snapshot import BOX_COLOUR
from streaming.simulator.scene import pet_box
from tests.support.processes import site_env, wait_for
from tests.support.recordings import ffprobe
from tests.support.webhook_receiver import Receiver
from tests.support.webrtc_client import http, running_site, simulated_camera
from tests.unit.test_event_webhooks import SECRET


def test_a_rule_fires_an_event_with_snapshot_and_clip(tmp_path):
    env = site_env(tmp_path, PETCAM_EVENT_CLASSES="cat", PETCAM_EVENT_PREROLL_SECONDS="1",
                   PETCAM_EVENT_POSTROLL_SECONDS="1", PETCAM_EVENT_END_SECONDS="1",
                   PETCAM_EVENT_RULES_REFRESH_SECONDS="0.3", PETCAM_WEBHOOK_ALLOW_LOCAL="1")
    receiver = Receiver([])
    with running_site(env, tmp_path / "logs") as site:
        auth = {"Authorization": f"Bearer {site.token}"}

        def api(method: str, path: str, body: object = None):
            data = None if body is None else json.dumps(body).encode()
            headers = {**auth, "Content-Type": "application/json"} if data else auth
            return http(method, site.base + path, data, headers)

        made = api("POST", "/api/event-rules/", {"camera": "default", "name": "cat",
                                                 "classes": ["cat"], "min_confidence": 0.8,
                                                 "webhook_url": receiver.url,
                                                 "webhook_secret": SECRET})
        assert made.status == 201, made.body
        rule = made.json()["id"]

        def events() -> list[dict]:
            reply = api("GET", f"/api/events/?rule={rule}")
            assert reply.status == 200, reply.body
            return reply.json()["results"]

        with simulated_camera(site, "--bitrate", "300", "--detect-fps", "15"):
            (started,) = wait_for(events, 20, "the rule's first event")
            assert started["ended_at"] is None and started["class_name"] == "cat"

            def recorded() -> int | None:  # a clip worth watching: 2 s after the event began
                state = api("GET", "/api/cameras/default/recording/").json()
                return state.get("frame_count") if state.get("frame_count", 0) >= 60 else None

            wait_for(recorded, 20, "the event recording to hold 2 s")
        delay = (datetime.fromisoformat(started["stored_at"])
                 - datetime.fromisoformat(started["started_at"])).total_seconds()
        print(f"\nevent stored {delay * 1000:.0f} ms after the detection's camera timestamp")

        # The camera stopped: the event ends 1 s after the last detection, the recording
        # 1 s after it (post-roll).
        def finished() -> dict | None:
            (ev,) = events()
            if not (ev["ended_at"] and ev["recording"]):
                return None
            rec = api("GET", f"/api/recordings/{ev['recording']}/").json()
            return ev if rec["status"] == "complete" else None

        ev = wait_for(finished, 20, "the event and its recording to end")
        assert ev["id"] == started["id"] and ev["peak_confidence"] >= 0.8

        snap = api("GET", ev["snapshot_url"])
        assert snap.status == 200 and snap.headers["Content-Type"] == "image/jpeg"
        with av.open(io.BytesIO(snap.body)) as container:
            rgb = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
        assert rgb.shape == (240, 320, 3)
        # The box is the simulator's true pet box of the peak frame, drawn on its edges.
        x, y, w, h = pet_box(ev["frame_number"], 320, 240)
        assert np.allclose(ev["box"], [x / 320, y / 240, w / 320, h / 240], atol=1e-6)
        left_edge = rgb[y + 2:y + h - 2, x + 1]
        off = np.abs(left_edge - np.array(BOX_COLOUR)).max(axis=1)
        assert np.median(off) < 50, off

        clip = api("GET", ev["clip_url"])
        assert clip.status == 200
        path = tmp_path / "clip.mp4"
        path.write_bytes(clip.body)
        probe = ffprobe(path)
        assert probe["codec_name"] == "h264" and int(probe["nb_read_frames"]) >= 60
        rec = api("GET", f"/api/recordings/{ev['recording']}/").json()
        assert rec["trigger"] == "event" and "cat" in rec["detection_classes"]
        # It overlaps the event and did not end before it: with post-roll after it, or,
        # the camera having stopped, on the same last frame (the two rows map camera
        # time to wall time apart, microseconds may part them). (Its start may follow
        # the event's by up to a GOP: the camera had only just come up, no pre-roll yet.)
        def wall(iso: str) -> datetime:
            return datetime.fromisoformat(iso)
        assert wall(rec["started_at"]) <= wall(ev["ended_at"])
        assert wall(rec["ended_at"]) >= wall(ev["ended_at"]) - timedelta(milliseconds=1)

        # The worker POSTed the start and the end to the rule's webhook, signed.
        wait_for(lambda: len(receiver.requests) >= 2, 10, "the webhook's two requests")
        receiver.close()
        kinds = []
        for headers, body in receiver.requests:
            stamp = headers["X-Petcam-Timestamp"]
            mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
            assert headers["X-Petcam-Signature"] == "sha256=" + mac.hexdigest()
            payload = json.loads(body)
            assert payload["event"]["id"] == ev["id"]
            kinds.append(payload["type"])
        assert kinds == ["event.started", "event.ended"]
