"""MQTT publisher: events and camera state to a broker, with Home Assistant discovery.

Django-free: the worker glue (events/mqtt_part.py) builds it from settings. One
connection per worker process, kept up with backoff. Two kinds of message:

- **state** (retained: discovery configs, ON/OFF, counts, the latest snapshot): only the
  latest payload per topic is kept, and all of it is sent again after every (re)connect,
  so Home Assistant sees the current state however long the broker was away;
- **events** (not retained, QoS 1): kept in order in a bounded queue while the broker is
  away and sent after the reconnect; a message leaves the queue only once the broker
  acknowledged it. Beyond the bound the oldest is dropped and counted.

The availability topic carries "online" (birth) and, through the broker's last will,
"offline" when the worker goes away without saying goodbye.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiomqtt

log = logging.getLogger("petcam.mqtt")
# aiomqtt waits for the broker's goodbye with no time limit; a broker that is already
# gone never sends it, and the worker must still be able to stop.
DISCONNECT_TIMEOUT = 3.0

ONLINE, OFFLINE = "online", "offline"
# MQTT 3.1.1 CONNACK 4/5 and MQTT 5 reason codes 134/135: the broker refused who we are.
_AUTH_CODES = {4, 5, 134, 135}


class MqttConfigError(ValueError):
    """A setting the publisher cannot work with (the message names it)."""


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int
    tls: bool
    username: str = ""
    password: str = ""
    ca_file: str = ""
    prefix: str = "petcam"
    discovery_prefix: str = "homeassistant"
    queue_size: int = 1000
    max_backoff: float = 30.0
    client_id: str = ""

    @classmethod
    def from_url(cls, url: str, **fields: Any) -> MqttConfig:
        """`mqtt://host[:port]` (1883) or `mqtts://host[:port]` (8883, TLS)."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("mqtt", "mqtts"):
            raise MqttConfigError("PETCAM_MQTT_URL must start with mqtt:// or mqtts://, "
                                  f"got {url!r}")
        if not parts.hostname:
            raise MqttConfigError(f"PETCAM_MQTT_URL has no host: {url!r}")
        try:
            port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        except ValueError as exc:
            raise MqttConfigError(f"PETCAM_MQTT_URL has a bad port: {url!r}") from exc
        if parts.path not in ("", "/") or parts.query or parts.username:
            raise MqttConfigError("PETCAM_MQTT_URL is only scheme://host:port (credentials go "
                                  f"in PETCAM_MQTT_USERNAME/PASSWORD), got {url!r}")
        config = cls(host=parts.hostname, port=port, tls=parts.scheme == "mqtts", **fields)
        config.check()
        return config

    def check(self) -> None:
        for name, topic in (("PETCAM_MQTT_PREFIX", self.prefix),
                            ("PETCAM_MQTT_DISCOVERY_PREFIX", self.discovery_prefix)):
            if not topic or any(c in topic for c in "#+") or topic.startswith("/") \
                    or topic.endswith("/"):
                raise MqttConfigError(f"{name} must be a topic without wildcards or outer "
                                      f"slashes, got {topic!r}")
        if self.queue_size < 1:
            raise MqttConfigError("PETCAM_MQTT_QUEUE_SIZE must be at least 1, "
                                  f"got {self.queue_size}")
        if self.ca_file and not self.tls:
            raise MqttConfigError("PETCAM_MQTT_CA_FILE is set but PETCAM_MQTT_URL is not mqtts://")
        if self.password and not self.username:
            raise MqttConfigError("PETCAM_MQTT_PASSWORD is set without PETCAM_MQTT_USERNAME")

    @property
    def availability_topic(self) -> str:
        return f"{self.prefix}/availability"

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        try:
            return ssl.create_default_context(cafile=self.ca_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise MqttConfigError(f"PETCAM_MQTT_CA_FILE {self.ca_file!r} cannot be read as "
                                  f"PEM certificates: {exc}") from exc


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower())


def discovery(config: MqttConfig, camera: str, classes: list[str]) -> dict[str, dict]:
    """Home Assistant MQTT discovery configs (topic -> payload) for one camera: a binary
    sensor and a count sensor per class, and the latest snapshot as an image entity."""
    base = f"{config.prefix}/{camera}"
    node = f"petcam_{_slug(camera)}"
    device = {"identifiers": [node], "name": f"Petcam {camera}", "manufacturer": "petcam",
              "model": "Pet camera"}
    common = {"availability": [{"topic": config.availability_topic}],
              "payload_available": ONLINE, "payload_not_available": OFFLINE,
              "device": device}
    out: dict[str, dict] = {}
    for name in classes:
        key = _slug(name)
        out[f"{config.discovery_prefix}/binary_sensor/{node}/{key}/config"] = {
            **common, "name": name.capitalize(), "unique_id": f"{node}_{key}",
            "state_topic": f"{base}/{name}", "payload_on": "ON", "payload_off": "OFF",
            "device_class": "occupancy"}
        out[f"{config.discovery_prefix}/sensor/{node}/{key}_count/config"] = {
            **common, "name": f"{name.capitalize()} count", "unique_id": f"{node}_{key}_count",
            "state_topic": f"{base}/{name}/count", "state_class": "measurement",
            "icon": "mdi:counter"}
    out[f"{config.discovery_prefix}/image/{node}/snapshot/config"] = {
        **common, "name": "Last event", "unique_id": f"{node}_snapshot",
        "image_topic": f"{base}/snapshot", "content_type": "image/jpeg"}
    out[f"{config.discovery_prefix}/sensor/{node}/camera/config"] = {
        **common, "name": "Day or night camera", "unique_id": f"{node}_camera",
        "state_topic": f"{base}/camera", "icon": "mdi:theme-light-dark"}
    return out


class MqttPublisher:
    """Keeps one broker connection up and sends the state and the queued events."""

    def __init__(self, config: MqttConfig) -> None:
        self.config = config
        self._state: dict[str, bytes] = {}  # topic -> latest retained payload
        self._dirty: dict[str, None] = {}  # state topics not yet sent (in order)
        self._events: deque[tuple[str, bytes]] = deque()
        self._wake = asyncio.Event()
        self.connected = False
        self.connects = self.sent = self.dropped = self.failures = 0
        self.last_error = ""

    # --- what the worker hands in (on the loop; never blocks) ------------------------------

    def set_state(self, topic: str, payload: str | bytes | dict) -> None:
        """A retained message: only its latest payload counts."""
        data = _encode(payload)
        if self._state.get(topic) == data:
            return
        self._state[topic] = data
        self._dirty[topic] = None
        self._wake.set()

    def publish_event(self, topic: str, payload: str | bytes | dict) -> None:
        """A message that must not be lost: queued in order, bounded."""
        if len(self._events) >= self.config.queue_size:
            self._events.popleft()
            self.dropped += 1
            log.warning("MQTT queue full (%d): oldest event message dropped (%d so far)",
                        self.config.queue_size, self.dropped)
        self._events.append((topic, _encode(payload)))
        self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._events)

    def stats(self) -> dict[str, Any]:
        return {"connected": self.connected, "connects": self.connects, "sent": self.sent,
                "queued": self.queued, "dropped": self.dropped, "failures": self.failures,
                "last_error": self.last_error}

    # --- the connection -------------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        c = self.config
        will = aiomqtt.Will(c.availability_topic, OFFLINE, qos=1, retain=True)
        tls = c.tls_context()
        return aiomqtt.Client(c.host, c.port, username=c.username or None,
                              password=c.password or None, identifier=c.client_id or None,
                              will=will, tls_context=tls, keepalive=30, timeout=10)

    @contextlib.asynccontextmanager
    async def _session(self):
        """The client connected, as `async with aiomqtt.Client()`, with a bounded exit."""
        client = self._client()
        await client.__aenter__()
        try:
            yield client
        except BaseException as exc:
            await self._leave(client, type(exc), exc, exc.__traceback__)
            raise
        await self._leave(client, None, None, None)

    async def _leave(self, client: aiomqtt.Client, *exc_info: Any) -> None:
        try:
            await asyncio.wait_for(client.__aexit__(*exc_info), DISCONNECT_TIMEOUT)
        except TimeoutError:
            log.warning("MQTT broker did not acknowledge the disconnect within %.0f s; "
                        "closed without it", DISCONNECT_TIMEOUT)

    async def run(self, before_leaving: Callable[[], Awaitable[None]] | None = None) -> None:
        """Connect, send, and on any broker trouble reconnect after 1, 2, 4 ... s (capped).
        Cancelled while connected (the worker stops), it first awaits `before_leaving` (the
        hooks still handing in messages), sends what it holds, then says goodbye: all within
        DISCONNECT_TIMEOUT, so a broker that stopped answering never holds up the stop."""
        delay = 1.0
        while True:
            try:
                async with self._session() as client:
                    self.connected = True
                    self.connects += 1
                    delay = 1.0
                    log.info("MQTT connected to %s:%d (%d event messages waiting)",
                             self.config.host, self.config.port, self.queued)
                    try:
                        await self._serve(client)
                    finally:
                        if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                            # Going away on purpose: last messages, then say so (the will
                            # is for crashes).
                            await asyncio.shield(self._last_words(client, before_leaving))
                        self.connected = False
            except aiomqtt.MqttError as exc:
                self.connected = False
                self.failures += 1
                self.last_error, fix_needed = self._explain(exc)
                # A refused login or certificate will not heal by itself: an error.
                log.log(logging.ERROR if fix_needed else logging.WARNING,
                        "%s; retrying in %.0f s (%d event messages queued)",
                        self.last_error, delay, self.queued)
            except Exception as exc:  # a bug must not end MQTT for the worker's lifetime
                self.connected = False
                self.failures += 1
                self.last_error = f"MQTT publisher failed: {exc!r}"
                log.exception("MQTT publisher failed; retrying in %.0f s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.max_backoff)

    def _explain(self, exc: aiomqtt.MqttError) -> tuple[str, bool]:
        """What went wrong, for the log and the status, and whether a setting is to blame."""
        where = f"MQTT broker {self.config.host}:{self.config.port}"
        rc = getattr(exc, "rc", None)
        code = getattr(rc, "value", rc)
        if code in _AUTH_CODES or "not authori" in str(exc).lower() \
                or "password" in str(exc).lower():
            who = self.config.username or "(no user name)"
            return (f"{where} refused the login of {who!r}: wrong PETCAM_MQTT_USERNAME or "
                    f"PETCAM_MQTT_PASSWORD ({exc})"), True
        if "certificate" in str(exc).lower() or "ssl" in str(exc).lower():
            return (f"{where}: TLS failed, check PETCAM_MQTT_CA_FILE and the host name "
                    f"({exc})"), True
        return f"{where} unreachable or lost ({exc})", False

    async def _last_words(self, client: aiomqtt.Client,
                          before_leaving: Callable[[], Awaitable[None]] | None) -> None:
        try:
            async with asyncio.timeout(DISCONNECT_TIMEOUT):
                if before_leaving is not None:
                    await before_leaving()
                while await self._send_one(client):
                    pass
                await client.publish(self.config.availability_topic, OFFLINE, qos=1,
                                     retain=True, timeout=DISCONNECT_TIMEOUT)
        except TimeoutError:
            log.warning("MQTT: leaving with %d event message(s) and %d state(s) unsent "
                        "(the broker did not take them within %.0f s)", self.queued,
                        len(self._dirty), DISCONNECT_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - best effort: the will covers it otherwise
            log.warning("MQTT: leaving without the last messages: %s", exc)

    async def _send_one(self, client: aiomqtt.Client) -> bool:
        """Send the next dirty state, else the oldest queued event; False if none."""
        if self._dirty:
            topic = next(iter(self._dirty))
            await client.publish(topic, self._state[topic], qos=1, retain=True, timeout=10)
            self._dirty.pop(topic, None)
        elif self._events:
            item = self._events[0]
            await client.publish(item[0], item[1], qos=1, timeout=10)
            # Only now: a message cut off by the broker going away is sent again.
            if self._events and self._events[0] is item:
                self._events.popleft()
        else:
            return False
        self.sent += 1
        return True

    async def _serve(self, client: aiomqtt.Client) -> None:
        await client.publish(self.config.availability_topic, ONLINE, qos=1, retain=True,
                             timeout=10)
        self._dirty = dict.fromkeys(self._state)  # the broker may have lost what it kept
        while True:
            self._wake.clear()
            if not await self._send_one(client):
                await self._idle(client)

    async def _idle(self, client: aiomqtt.Client) -> None:
        """Until there is something to send, or the broker goes away (noticed now, so the
        status says so and the backoff starts, not at the next message)."""
        # aiomqtt resolves this future on disconnect; no public hook for it (pinned 2.5.1).
        gone: asyncio.Future = client._disconnected
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait([wake, gone], return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()
        if gone.done():
            exc = gone.exception()
            raise exc if isinstance(exc, aiomqtt.MqttError) else aiomqtt.MqttError(
                "the broker closed the connection")


def _encode(payload: str | bytes | dict) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, dict):
        return json.dumps(payload, separators=(",", ":")).encode()
    return payload.encode()
