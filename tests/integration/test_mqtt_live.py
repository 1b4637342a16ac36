"""MQTT end to end: the site (its media worker) publishing to a real mosquitto while the
real simulator's pet fires an event rule. Home Assistant's discovery configs for the
camera arrive, the event's start and end reach `petcam/default/events`, `petcam/default/cat`
goes ON then OFF, the count follows the pet, the event's snapshot arrives as a JPEG and
the day/night camera is published. Prints the delay from the detection (the camera's
timestamp of the first qualifying frame) to the event message reaching a subscriber."""

from __future__ import annotations

import io
import json
import signal
from datetime import datetime

import av

from tests.support.mosquitto import Subscriber, running_broker
from tests.support.processes import site_env, wait_for
from tests.support.webrtc_client import (
    camera_status,
    create_event_rule,
    running_site,
    simulated_camera,
)


def test_events_and_state_reach_the_broker_and_home_assistant(tmp_path):
    with running_broker(tmp_path / "broker") as broker:
        sub = Subscriber(broker, ["petcam/#", "homeassistant/#"]).wait_subscribed()
        env = site_env(tmp_path, PETCAM_MQTT_URL=broker.url, PETCAM_MQTT_CLASSES="cat",
                       PETCAM_EVENT_END_SECONDS="1", PETCAM_EVENT_RULES_REFRESH_SECONDS="0.3")
        with running_site(env, tmp_path / "logs") as site:
            create_event_rule(site.base, site.token, camera="default", name="cat",
                              classes=["cat"], min_confidence=0.8)
            wait_for(lambda: sub.latest("petcam/availability") == b"online", 20, "birth")
            config = wait_for(lambda: sub.latest(
                "homeassistant/binary_sensor/petcam_default/cat/config"), 20, "discovery")
            assert json.loads(config)["state_topic"] == "petcam/default/cat"

            with simulated_camera(site, "--bitrate", "300", "--detect-fps", "15") as sim:
                started = wait_for(lambda: [m for m in sub.on("petcam/default/events")
                                            if json.loads(m.payload)["type"] == "started"],
                                   20, "the event's start message")[0]
                wait_for(lambda: sub.latest("petcam/default/cat/count") == b"1", 10,
                         "the cat counted")
                wait_for(lambda: sub.latest("petcam/default/camera") == b"day", 10, "day")
                status = camera_status(site.base, site.token)
                assert status["mqtt"]["connected"] and status["mqtt"]["dropped"] == 0
                sim.popen.send_signal(signal.SIGUSR1)  # the board switches to infrared
                wait_for(lambda: sub.latest("petcam/default/camera") == b"night", 10,
                         "night")
            # The camera stopped: the event ends a second after the last detection.
            ended = wait_for(lambda: [m for m in sub.on("petcam/default/events")
                                      if json.loads(m.payload)["type"] == "ended"],
                             20, "the event's end message")[0]
            snapshot = wait_for(lambda: sub.latest("petcam/default/snapshot"), 10,
                                "the snapshot")
            wait_for(lambda: sub.latest("petcam/default/cat/count") == b"0", 10,
                     "the count back to 0 once the camera is off")
        # The site stopped on purpose: it said goodbye.
        wait_for(lambda: sub.latest("petcam/availability") == b"offline", 10, "goodbye")
        sub.close()

    start, end = json.loads(started.payload)["event"], json.loads(ended.payload)["event"]
    assert start["id"] == end["id"] and start["camera"] == "default"
    assert start["class_name"] == "cat" and start["ended_at"] is None
    assert end["ended_at"] and end["snapshot_url"]
    states = [m.payload for m in sub.on("petcam/default/cat")]
    assert states[-2:] == [b"ON", b"OFF"], states
    assert snapshot[:2] == b"\xff\xd8"  # a JPEG, the event's picture
    with av.open(io.BytesIO(snapshot)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (320, 240)
    detected = datetime.fromisoformat(start["started_at"]).timestamp()
    stored = datetime.fromisoformat(start["stored_at"]).timestamp() - detected
    handed = json.loads(started.payload)["published_at"] - detected
    print(f"\nafter the detection's camera timestamp: row stored {stored * 1000:.0f} ms, "
          f"handed to the publisher {handed * 1000:.0f} ms, MQTT event message received "
          f"{(started.at - detected) * 1000:.0f} ms")
