"""MQTT at the worker's stop, against a real mosquitto: the site stops (SIGTERM) while an
event is open. The event part ends the event during the stop; its "ended" message and the
class's OFF state still reach the subscriber, because the worker stops its worker-wide
tasks (the MQTT publisher) only after its parts, and the publisher sends what it holds
before it says goodbye."""

from __future__ import annotations

import json

from tests.support.mosquitto import Subscriber, running_broker
from tests.support.processes import site_env, wait_for
from tests.support.webrtc_client import create_event_rule, running_site, simulated_camera


def messages(sub: Subscriber, kind: str) -> list:
    return [m for m in sub.on("petcam/default/events") if json.loads(m.payload)["type"] == kind]


def test_an_event_open_at_the_stop_is_ended_on_the_broker(tmp_path):
    with running_broker(tmp_path / "broker") as broker:
        sub = Subscriber(broker, ["petcam/#"]).wait_subscribed()
        # The event would only end a minute after the pet leaves: it is open at the stop.
        env = site_env(tmp_path, PETCAM_MQTT_URL=broker.url, PETCAM_MQTT_CLASSES="cat",
                       PETCAM_EVENT_END_SECONDS="60", PETCAM_EVENT_RULES_REFRESH_SECONDS="0.3")
        with running_site(env, tmp_path / "logs") as site:
            create_event_rule(site.base, site.token, camera="default", name="cat",
                              classes=["cat"], min_confidence=0.8)
            with simulated_camera(site, "--bitrate", "300", "--detect-fps", "15"):
                wait_for(lambda: messages(sub, "started"), 20, "the event's start message")
                wait_for(lambda: sub.latest("petcam/default/cat") == b"ON", 10, "ON")
                assert not messages(sub, "ended")
                assert site.proc.stop() == 0, site.proc.log_tail()  # camera still on
        ended = wait_for(lambda: messages(sub, "ended"), 10, "the end message sent at the stop")
        assert sub.latest("petcam/default/cat") == b"OFF"
        assert sub.latest("petcam/availability") == b"offline"
        sub.close()
    (start,) = messages(sub, "started")
    assert len(ended) == 1
    event = json.loads(ended[0].payload)["event"]
    assert event["id"] == json.loads(start.payload)["event"]["id"] and event["ended_at"]
