"""The MQTT publisher (events/mqtt.py) against a real mosquitto on loopback: Home
Assistant discovery configs, birth and last will, events queued while the broker
restarts (none lost; beyond the bound the oldest dropped and counted), the last messages
sent at the stop (bounded when the broker stopped answering), a password the broker
refuses (logged clearly), TLS with a throwaway CA, and bad settings."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import signal
import subprocess
import sys
import time

import aiomqtt
import pytest

from events.mqtt import DISCONNECT_TIMEOUT, MqttConfig, MqttConfigError, MqttPublisher, discovery
from tests.support import processes
from tests.support.mosquitto import Subscriber, make_tls, running_broker
from tests.support.processes import ROOT, wait_for

# The predicates read the subscriber's and publisher's state on the loop itself.
until = functools.partial(processes.until, in_thread=False)


@contextlib.asynccontextmanager
async def running(pub: MqttPublisher):
    task = asyncio.create_task(pub.run())
    try:
        yield pub
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def config(broker, **fields) -> MqttConfig:
    return MqttConfig.from_url(broker.url, **fields)


@pytest.mark.parametrize(("url", "fields", "message"), [
    ("http://broker:1883", {}, "must start with mqtt:// or mqtts://"),
    ("mqtt://", {}, "has no host"),
    ("mqtt://broker:99999", {}, "bad port"),
    ("mqtt://user:pw@broker", {}, "PETCAM_MQTT_USERNAME/PASSWORD"),
    ("mqtt://broker/topic", {}, "only scheme://host:port"),
    ("mqtt://broker", {"prefix": "petcam/#"}, "PETCAM_MQTT_PREFIX"),
    ("mqtt://broker", {"discovery_prefix": ""}, "PETCAM_MQTT_DISCOVERY_PREFIX"),
    ("mqtt://broker", {"queue_size": 0}, "PETCAM_MQTT_QUEUE_SIZE"),
    ("mqtt://broker", {"ca_file": "/etc/ca.pem"}, "not mqtts://"),
    ("mqtt://broker", {"password": "x"}, "without PETCAM_MQTT_USERNAME"),
])
def test_bad_settings_are_refused_with_the_setting_named(url, fields, message):
    with pytest.raises(MqttConfigError, match=message.replace("/", ".").replace("?", ".")):
        MqttConfig.from_url(url, **fields)


def test_the_idle_watch_was_checked_against_the_pinned_aiomqtt():
    """events/mqtt.py waits on aiomqtt's private disconnect future: a new aiomqtt fails
    here first (re-read MqttPublisher._idle against its source)."""
    from importlib.metadata import version

    pinned = next(line.split("==")[1].strip() for line in
                  (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("aiomqtt=="))
    assert version("aiomqtt") == pinned == "2.5.1"
    assert "_disconnected" in aiomqtt.Client.__init__.__code__.co_names


def test_ports_default_by_scheme_and_a_bad_ca_file_is_named(tmp_path):
    assert MqttConfig.from_url("mqtt://broker").port == 1883
    assert MqttConfig.from_url("mqtts://broker").port == 8883
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(MqttConfigError, match="PETCAM_MQTT_CA_FILE"):
        MqttConfig.from_url("mqtts://broker", ca_file=str(bad)).tls_context()


@pytest.mark.asyncio
async def test_discovery_configs_are_valid_home_assistant_configs(tmp_path):
    with running_broker(tmp_path / "broker") as broker:
        sub = Subscriber(broker, ["homeassistant/#", "petcam/#"]).wait_subscribed()
        pub = MqttPublisher(config(broker))
        for topic, payload in discovery(pub.config, "garden", ["cat", "dog"]).items():
            pub.set_state(topic, payload)
        async with running(pub):
            await until(lambda: sub.latest("petcam/availability") == b"online", 10, "birth")
            configs = await until(
                lambda: [m for m in sub.messages if m.topic.startswith("homeassistant/")]
                if len(sub.messages) >= 7 else None, 10, "the discovery configs")
        # Cancelled on purpose: the publisher says "offline" itself.
        await until(lambda: sub.latest("petcam/availability") == b"offline", 10, "goodbye")
        sub.close()
        # Retained: a Home Assistant that starts later still finds every config.
        late = Subscriber(broker, ["homeassistant/#"]).wait_subscribed()
        kept = await until(lambda: late.messages if len(late.messages) >= 6 else None, 10,
                           "the retained configs")
        late.close()
    assert {m.topic for m in kept} == {m.topic for m in configs}
    assert all(m.retain for m in kept)
    by_topic = {m.topic: m for m in configs}
    assert set(by_topic) == {
        "homeassistant/binary_sensor/petcam_garden/cat/config",
        "homeassistant/binary_sensor/petcam_garden/dog/config",
        "homeassistant/sensor/petcam_garden/cat_count/config",
        "homeassistant/sensor/petcam_garden/dog_count/config",
        "homeassistant/image/petcam_garden/snapshot/config",
        "homeassistant/sensor/petcam_garden/camera/config"}
    unique = set()
    for topic, msg in by_topic.items():
        cfg = json.loads(msg.payload)
        unique.add(cfg["unique_id"])
        assert cfg["device"]["identifiers"] == ["petcam_garden"] and cfg["device"]["name"]
        assert cfg["availability"] == [{"topic": "petcam/availability"}]
        assert (cfg["payload_available"], cfg["payload_not_available"]) == ("online",
                                                                           "offline")
        component = topic.split("/")[1]
        if component == "image":
            assert cfg["image_topic"] == "petcam/garden/snapshot"
            assert cfg["content_type"] == "image/jpeg"
        else:
            assert cfg["state_topic"].startswith("petcam/garden/")
        if component == "binary_sensor":
            assert cfg["state_topic"] in ("petcam/garden/cat", "petcam/garden/dog")
            assert (cfg["payload_on"], cfg["payload_off"]) == ("ON", "OFF")
    assert len(unique) == 6


def test_the_last_will_says_offline_when_the_worker_dies(tmp_path):
    with running_broker(tmp_path / "broker") as broker:
        sub = Subscriber(broker, ["petcam/availability"]).wait_subscribed()
        code = ("import asyncio; from events.mqtt import MqttConfig, MqttPublisher;"
                f"asyncio.run(MqttPublisher(MqttConfig.from_url({broker.url!r})).run())")
        child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
        try:
            wait = time.monotonic() + 15
            while sub.latest("petcam/availability") != b"online":
                assert time.monotonic() < wait and child.poll() is None, "no birth message"
                time.sleep(0.05)
        finally:
            child.kill()  # no goodbye: only the broker's will can say it
            child.wait()
        wait = time.monotonic() + 15
        while sub.latest("petcam/availability") != b"offline":
            assert time.monotonic() < wait, "the will never came"
            time.sleep(0.05)
        sub.close()


@pytest.mark.asyncio
async def test_events_queued_while_the_broker_restarts_all_arrive_in_order(tmp_path):
    with running_broker(tmp_path / "broker", persistent=True) as broker:
        # A persistent session: the broker keeps its QoS 1 messages while it reconnects.
        sub = Subscriber(broker, ["petcam/cam/events"], client_id="petcam-test-sub")
        sub.wait_subscribed()
        pub = MqttPublisher(config(broker, max_backoff=1))
        async with running(pub):
            await until(lambda: pub.connected, 10, "the publisher to connect")
            pub.publish_event("petcam/cam/events", {"n": 0})
            await until(lambda: sub.on("petcam/cam/events"), 10, "the first event")
            broker.stop()
            await until(lambda: not pub.connected, 10, "the publisher to notice")
            for n in range(1, 21):  # events while the broker is away
                pub.publish_event("petcam/cam/events", {"n": n})
                await asyncio.sleep(0.01)
            assert pub.queued == 20 and pub.dropped == 0
            broker.start()
            await until(lambda: len(sub.on("petcam/cam/events")) >= 21, 20,
                        "the queued events after the restart")
            assert pub.queued == 0 and pub.connects >= 2 and pub.failures >= 1
        got = [json.loads(m.payload)["n"] for m in sub.on("petcam/cam/events")]
        sub.close()
    # At least once: none lost, in order (a message cut off mid-send may come twice).
    assert sorted(set(got)) == list(range(21))
    assert got == sorted(got)


@pytest.mark.asyncio
async def test_beyond_the_bound_the_oldest_events_are_dropped_and_counted(tmp_path, caplog):
    with running_broker(tmp_path / "broker") as broker:
        sub = Subscriber(broker, ["petcam/cam/events"]).wait_subscribed()
        pub = MqttPublisher(config(broker, queue_size=3))
        with caplog.at_level(logging.WARNING, "petcam.mqtt"):
            for n in range(5):  # before the first connection: all queued
                pub.publish_event("petcam/cam/events", {"n": n})
        assert pub.queued == 3 and pub.dropped == 2 and pub.stats()["dropped"] == 2
        assert "oldest event message dropped (2 so far)" in caplog.text
        async with running(pub):
            await until(lambda: len(sub.on("petcam/cam/events")) >= 3, 10, "the kept events")
        got = [json.loads(m.payload)["n"] for m in sub.on("petcam/cam/events")]
        sub.close()
    assert got == [2, 3, 4]


@pytest.mark.asyncio
async def test_the_broker_asks_for_a_password_and_a_wrong_one_is_logged(tmp_path, caplog):
    users = {"petcam": "s3cret-pass"}
    with running_broker(tmp_path / "broker", users=users) as broker:
        sub = Subscriber(broker, ["petcam/#"], username="petcam", password="s3cret-pass")
        sub.wait_subscribed()
        good = MqttPublisher(config(broker, username="petcam", password="s3cret-pass"))
        good.publish_event("petcam/cam/events", {"n": 1})
        async with running(good):
            await until(lambda: sub.on("petcam/cam/events"), 10, "the event")
        for user, password in (("petcam", "wrong"), ("", "")):
            bad = MqttPublisher(config(broker, username=user, password=password))
            bad.publish_event("petcam/cam/events", {"n": 2})
            caplog.clear()
            with caplog.at_level(logging.WARNING, "petcam.mqtt"):
                async with running(bad):
                    await until(lambda b=bad: b.failures, 10, "the refusal")
            assert not bad.connects and bad.queued == 1  # kept for when it is fixed
            assert "refused the login" in caplog.text, caplog.text
            assert "PETCAM_MQTT_PASSWORD" in bad.last_error
        sub.close()
    assert [json.loads(m.payload)["n"] for m in sub.on("petcam/cam/events")] == [1]


@pytest.mark.asyncio
async def test_tls_with_the_ca_file_and_a_clear_error_without_it(tmp_path, caplog):
    tls = make_tls(tmp_path / "tls")
    with running_broker(tmp_path / "broker", tls=tls) as broker:
        assert broker.url.startswith("mqtts://")
        sub = Subscriber(broker, ["petcam/#"]).wait_subscribed()
        pub = MqttPublisher(config(broker, ca_file=str(tls.ca)))
        pub.publish_event("petcam/cam/events", {"n": 1})
        async with running(pub):
            await until(lambda: sub.on("petcam/cam/events"), 10, "the event over TLS")
        untrusted = MqttPublisher(config(broker))  # the system's CAs do not know this one
        with caplog.at_level(logging.WARNING, "petcam.mqtt"):
            async with running(untrusted):
                await until(lambda: untrusted.failures, 10, "the TLS failure")
        assert not untrusted.connects
        assert "TLS failed" in untrusted.last_error, untrusted.last_error
        sub.close()


@pytest.mark.asyncio
async def test_at_the_stop_what_hooks_hand_in_is_sent_before_the_goodbye(tmp_path):
    with running_broker(tmp_path / "broker") as broker:
        sub = Subscriber(broker, ["petcam/#"]).wait_subscribed()
        pub = MqttPublisher(config(broker))

        async def an_event_ends_during_the_stop() -> None:
            await asyncio.sleep(0.2)
            pub.publish_event("petcam/cam/events", {"type": "ended"})
            pub.set_state("petcam/cam/cat", "OFF")

        task = asyncio.create_task(pub.run(before_leaving=an_event_ends_during_the_stop))
        await until(lambda: pub.connected, 10, "the publisher to connect")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(wait_for, lambda: sub.latest("petcam/availability") == b"offline",
                                10, "the goodbye")
        assert [m.payload for m in sub.on("petcam/cam/events")] == [b'{"type":"ended"}']
        assert sub.latest("petcam/cam/cat") == b"OFF"
        sub.close()


@pytest.mark.asyncio
async def test_a_broker_that_stopped_answering_does_not_hold_up_the_stop(tmp_path, caplog):
    with running_broker(tmp_path / "broker") as broker:
        pub = MqttPublisher(config(broker))

        async def an_event_ends_during_the_stop() -> None:
            pub.publish_event("petcam/cam/events", "x")

        task = asyncio.create_task(pub.run(before_leaving=an_event_ends_during_the_stop))
        await until(lambda: pub.connected, 10, "the publisher to connect")
        broker.proc.popen.send_signal(signal.SIGSTOP)  # alive, connected, silent
        try:
            task.cancel()
            # Bounded: DISCONNECT_TIMEOUT for the last words, again for the disconnect.
            done, _ = await asyncio.wait([task], timeout=4 * DISCONNECT_TIMEOUT)
            assert done, "the publisher did not stop"
        finally:
            broker.proc.popen.send_signal(signal.SIGCONT)
    assert "1 event message(s) and 0 state(s) unsent" in caplog.text
