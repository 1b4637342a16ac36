"""A real mosquitto broker for the MQTT tests, and a subscriber that records what arrives.

The broker listens on 127.0.0.1 and a free port, with its own config under the test's
tmp dir: anonymous, with a password file (made by mosquitto_passwd), or TLS with a
throwaway CA and server certificate (made with `cryptography`). `stop()` and `start()`
again on the same port play a broker restart. Persistence is off unless asked for
(`persistent=True`: sessions and queued messages survive the restart, so a subscriber
with a persistent session misses nothing while it reconnects).
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import ipaddress
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.processes import Proc, pick_free_port, wait_for


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto")
    if not found:
        raise RuntimeError("mosquitto is missing: `make test` installs Debian's mosquitto")
    return found


@dataclass
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_tls(directory: Path, host: str = "127.0.0.1") -> TlsFiles:
    """A throwaway CA and a server certificate for `host` (an IP or a DNS name SAN)
    signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "petcam test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([_san(host)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.TraditionalOpenSSL,
                                            serialization.NoEncryption()))
    return files


class Broker:
    """mosquitto on 127.0.0.1:<free port>; `users` {name: password} turns anonymous off."""

    def __init__(self, directory: Path, *, users: dict[str, str] | None = None,
                 tls: TlsFiles | None = None, persistent: bool = False) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = pick_free_port()
        self.tls = tls
        store = ["persistence true", f"persistence_location {self.dir}/"] if persistent \
            else ["persistence false"]
        # As root, mosquitto would drop to its own user, who cannot read the tmp dir.
        lines = [f"user {getpass.getuser()}", f"listener {self.port} 127.0.0.1", *store,
                 "log_dest stdout", "log_type error", "log_type warning", "log_type notice",
                 "log_type information", "connection_messages true"]
        if users:
            passwd = self.dir / "passwd"
            for i, (name, password) in enumerate(users.items()):
                subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []),
                                str(passwd), name, password], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if tls:
            lines += [f"cafile {tls.ca}", f"certfile {tls.cert}", f"keyfile {tls.key}"]
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = Proc("mosquitto", [mosquitto_binary(), "-c", str(self.conf)],
                         {"PATH": "/usr/sbin:/usr/bin:/bin"}, self.dir)

        def listening() -> bool:
            assert self.proc is not None and self.proc.alive(), self.proc and self.proc.log()
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1):
                return True
            return False

        wait_for(listening, 10, "mosquitto to listen")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.dir.glob("mosquitto-*.log"))


@contextlib.contextmanager
def running_broker(directory: Path, **kwargs) -> Iterator[Broker]:
    broker = Broker(directory, **kwargs)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float  # time.time() on arrival


@dataclass
class Subscriber:
    """A paho client (its own thread) subscribed to `topics`, keeping every message."""

    broker: Broker
    topics: list[str]
    username: str | None = None
    password: str | None = None
    client_id: str = ""  # with one: a persistent session (QoS 1 kept while away)
    messages: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                  clean_session=not self.client_id)
        if self.username:
            self.client.username_pw_set(self.username, self.password)
        if self.broker.tls:
            self.client.tls_set(ca_certs=str(self.broker.tls.ca))
        self.client.on_connect = self._connected
        self.client.on_message = self._message
        self.client.on_subscribe = self._suback
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async("127.0.0.1", self.broker.port)
        self.client.loop_start()

    def _connected(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe([(topic, 1) for topic in self.topics])

    def _suback(self, client, userdata, mid, reason_codes, properties) -> None:
        self.subscribed.set()

    def _message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, msg.payload, bool(msg.retain), time.time()))

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def latest(self, topic: str) -> bytes | None:
        found = self.on(topic)
        return found[-1].payload if found else None

    def wait_subscribed(self) -> Subscriber:
        assert self.subscribed.wait(10), "the test subscriber never subscribed"
        return self

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
