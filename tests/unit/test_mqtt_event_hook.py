"""The MQTT event hook (events/mqtt_part.py) turning event starts and ends into topics:
a class stays ON while any event of it is open, the start's class is the one turned OFF
even when the peak changed the event's class, a new class is announced to Home
Assistant; a bad broker URL turns MQTT off with the setting named."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from events import mqtt_part


@pytest.fixture
def fresh(settings, monkeypatch):
    settings.PETCAM_MQTT_URL = "mqtt://127.0.0.1:1"
    settings.PETCAM_MQTT_CLASSES = ["cat"]
    for name, value in (("_publisher", None), ("_config_error", None), ("_open", {}),
                        ("_classes", {})):
        monkeypatch.setattr(mqtt_part, name, value)
    return settings


def event(id_: int, class_name: str) -> dict:
    return {"id": id_, "camera": "sofa", "class_name": class_name, "snapshot_url": None}


def test_a_class_is_on_while_any_of_its_events_is_open(fresh):
    pub = mqtt_part.publisher()
    assert pub is not None and pub.config.port == 1
    state = pub._state
    run = asyncio.run
    run(mqtt_part.on_event("started", event(1, "cat")))
    run(mqtt_part.on_event("started", event(2, "cat")))
    assert state["petcam/sofa/cat"] == b"ON"
    run(mqtt_part.on_event("ended", event(1, "cat")))
    assert state["petcam/sofa/cat"] == b"ON"  # event 2 is still open
    # Event 2's peak was a dog: the cat it started as goes OFF.
    run(mqtt_part.on_event("ended", event(2, "dog")))
    assert state["petcam/sofa/cat"] == b"OFF"
    # The dog was new: announced, its sensors start OFF and at 0.
    assert "homeassistant/binary_sensor/petcam_sofa/dog/config" in state
    assert state["petcam/sofa/dog"] == b"OFF" and state["petcam/sofa/dog/count"] == b"0"
    kinds = [json.loads(p)["type"] for _, p in pub._events]
    assert kinds == ["started", "started", "ended", "ended"]
    assert all(t == "petcam/sofa/events" for t, _ in pub._events)


def test_a_bad_url_turns_mqtt_off_and_says_why(fresh, caplog):
    fresh.PETCAM_MQTT_URL = "http://broker"
    with caplog.at_level(logging.ERROR, "petcam.mqtt"):
        assert mqtt_part.publisher() is None
        assert mqtt_part.publisher() is None
    assert caplog.text.count("MQTT is off: PETCAM_MQTT_URL must start with mqtt://") == 1
    asyncio.run(mqtt_part.on_event("started", event(1, "cat")))  # a no-op, no error


def test_without_a_url_nothing_is_published(fresh):
    fresh.PETCAM_MQTT_URL = ""
    assert mqtt_part.publisher() is None
