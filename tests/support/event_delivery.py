"""Where an event leaves petcam, each at a real receiver on loopback, with arrival times:
a Web Push service that checks VAPID and decrypts (tests/support/push_service.py), a
mosquitto broker with a subscriber on the event topic (tests/support/mosquitto.py), and
an HTTP receiver that checks the webhook's HMAC signature. The end-to-end test and
benchmarks/event_delivery_bench.py use it the same way: `env()` for the site, `connect()`
once it runs, `deliveries(event_id)` as each event starts."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.mosquitto import Broker, Subscriber
from tests.support.push_service import PushService, Subscription

CHANNELS = ("push", "mqtt", "webhook")
WEBHOOK_SECRET = "e2e-webhook-secret-0123456789"


@dataclass
class Delivery:
    """One event message as a receiver got it."""

    channel: str
    kind: str  # "started" or "ended"
    event: dict  # for push: {"id", "snapshot_url"} from the notification's payload
    payload: dict
    at: float  # time.time() on arrival


class WebhookReceiver:
    """A loopback HTTP server keeping every POST whose signature verifies (others: 401,
    listed in `.errors`)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.requests: list[tuple[dict, float]] = []
        self.errors: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                at = time.time()
                stamp = self.headers.get("X-Petcam-Timestamp", "")
                mac = hmac.new(receiver.secret.encode(), f"{stamp}.".encode() + body,
                               hashlib.sha256).hexdigest()
                if self.headers.get("X-Petcam-Signature") != "sha256=" + mac:
                    receiver.errors.append(f"bad signature on {self.path}")
                    self.send_response(401)
                else:
                    receiver.requests.append((json.loads(body), at))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/petcam-hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class DeliveryProbe:
    """The three receivers; stop them with `close()` (or use it as a context manager)."""

    def __init__(self, directory: Path, camera: str = "default") -> None:
        self.camera = camera
        self._stack = contextlib.ExitStack()
        try:
            self.broker = Broker(directory / "broker")
            self.broker.start()
            self._stack.callback(self.broker.stop)
            self.mqtt = Subscriber(self.broker, [f"petcam/{camera}/events"]).wait_subscribed()
            self._stack.callback(self.mqtt.close)
            self.push = PushService()
            self._stack.callback(self.push.close)
            self.webhook = WebhookReceiver(WEBHOOK_SECRET)
            self._stack.callback(self.webhook.close)
        except BaseException:
            self._stack.close()
            raise
        self.phone: Subscription = self.push.subscribe()

    def env(self, classes: str = "cat") -> dict[str, str]:
        """The site's settings: publish to this broker, allow loopback push and webhooks."""
        return {"PETCAM_MQTT_URL": self.broker.url, "PETCAM_MQTT_CLASSES": classes,
                "PETCAM_PUSH_ALLOW_LOCAL": "1", "PETCAM_WEBHOOK_ALLOW_LOCAL": "1"}

    def connect(self, api: Callable[[str, str, object], tuple[int, dict]], *,
                classes: list[str], **rule: object) -> int:
        """Subscribe the phone (as its browser would) and make the rule with this webhook;
        `api(method, path, body)` -> (status, JSON). Returns the rule's id."""
        code, body = api("POST", "/api/push/subscriptions/",
                         {**self.phone.as_browser_json(), "label": "e2e phone"})
        assert code == 201, body
        code, body = api("POST", "/api/event-rules/", {
            "camera": self.camera, "name": "delivery", "classes": classes,
            "webhook_url": self.webhook.url, "webhook_secret": WEBHOOK_SECRET, **rule})
        assert code == 201, body
        return body["id"]

    def all(self) -> list[Delivery]:
        out = [Delivery("push", "started", {"id": data.get("event"),
                                            "snapshot_url": _snapshot_of(data)}, data, at)
               for data, at in zip(self.phone.received, self.phone.arrived, strict=False)]
        for m in self.mqtt.on(f"petcam/{self.camera}/events"):
            data = json.loads(m.payload)
            out.append(Delivery("mqtt", data["type"], data["event"], data, m.at))
        for data, at in list(self.webhook.requests):
            out.append(Delivery("webhook", data["type"].removeprefix("event."), data["event"],
                                data, at))
        return out

    def deliveries(self, event_id: int, kind: str = "started") -> dict[str, Delivery]:
        """The first `kind` message of the event per channel (so far)."""
        found: dict[str, Delivery] = {}
        for d in self.all():
            if d.kind == kind and d.event.get("id") == event_id and d.channel not in found:
                found[d.channel] = d
        return found

    def errors(self) -> list[str]:
        return [*self.push.errors, *self.webhook.errors]

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> DeliveryProbe:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _snapshot_of(push_data: dict) -> str | None:
    """The notification's picture, if it is an event's snapshot (not the live still)."""
    image = push_data.get("image")
    return image if isinstance(image, str) and "/api/events/" in image else None
