"""Phone notifications end to end: the real simulator's pet ("cat") detections fire a
rule in the site's media worker, and the push arrives at a local Web Push service (on
loopback, allowed by PETCAM_PUSH_ALLOW_LOCAL as only tests do) signed with the site's
VAPID key and decryptable with the keys this test made as the browser. Prints the delay
from the detection (the camera's timestamp of the first qualifying frame) to the push
being received."""

from __future__ import annotations

import json
from datetime import datetime

from tests.support.processes import site_env, wait_for
from tests.support.push_service import PushService
from tests.support.webrtc_client import http, running_site, simulated_camera


def test_detection_to_push(tmp_path):
    env = site_env(tmp_path, PETCAM_EVENT_END_SECONDS="1",
                   PETCAM_EVENT_RULES_REFRESH_SECONDS="0.3", PETCAM_PUSH_ALLOW_LOCAL="1")
    service = PushService()
    try:
        with running_site(env, tmp_path / "logs") as site:
            auth = {"Authorization": f"Bearer {site.token}"}

            def api(method: str, path: str, body: object = None):
                data = None if body is None else json.dumps(body).encode()
                headers = {**auth, "Content-Type": "application/json"} if data else auth
                return http(method, site.base + path, data, headers)

            phone, dogs_only = service.subscribe(), service.subscribe()
            for sub, classes in ((phone, ["cat"]), (dogs_only, ["dog"])):
                made = api("POST", "/api/push/subscriptions/",
                           {**sub.as_browser_json(), "label": "phone", "classes": classes})
                assert made.status == 201, made.body
            key = api("GET", "/api/push/vapid-public-key/").json()["public_key"]
            rule = api("POST", "/api/event-rules/", {"camera": "default", "name": "cat",
                                                     "classes": ["cat"],
                                                     "min_confidence": 0.8})
            assert rule.status == 201, rule.body
            with simulated_camera(site, "--bitrate", "300", "--detect-fps", "15"):
                wait_for(lambda: phone.received or service.errors, 30, "the push")
            assert service.errors == []
            (data,) = phone.received
            event = api("GET", f"/api/events/{data['event']}/").json()
            assert data["title"] == "Cat in the camera"  # the seeded camera is named "Camera"
            assert data["url"] == f"/events/#event-{event['id']}"
            # The event's own snapshot; the live still when the worker, attached just now,
            # had no IDR yet to decode the start frame from (its first event here).
            assert data["image"] in (f"/api/events/{event['id']}/snapshot/",
                                     "/api/cameras/default/still/"), data
            assert service.vapid_keys == {key}
            assert dogs_only.received == []
            delay = phone.arrived[0] - datetime.fromisoformat(event["started_at"]).timestamp()
            print(f"\npush received {delay * 1000:.0f} ms after the detection's camera timestamp")
    finally:
        service.close()
