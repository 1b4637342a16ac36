"""A local Web Push service for tests: what a browser vendor's push service checks, on
loopback. Each `subscribe()` makes a browser-side key pair and auth secret (as a browser
would) and an endpoint URL on this server; every POST to it must carry a valid VAPID
`Authorization: vapid t=<JWT>, k=<key>` (ES256 over the JWT with that key, aud = this
server's origin, exp within 24 h, a mailto:/https: sub) and an aes128gcm body (RFC 8188),
which is decrypted here with the subscription's private key (RFC 8291). The code below
is written from the RFCs, independently of events/webpush.py.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)


@dataclass
class Subscription:
    endpoint: str
    private: ec.EllipticCurvePrivateKey
    auth: bytes
    status: int = 201  # what the service answers
    hang: float = 0.0  # seconds to wait before answering (a slow push service)
    received: list[dict] = field(default_factory=list)  # decrypted payloads
    arrived: list[float] = field(default_factory=list)  # time.time() of each

    @property
    def p256dh(self) -> str:
        return _b64(_point(self.private.public_key()))

    def as_browser_json(self) -> dict:
        """What PushSubscription.toJSON() gives a page."""
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": self.p256dh, "auth": _b64(self.auth)}}


def check_vapid(header: str, origin: str) -> dict:
    """The JWT's claims if `header` is a valid VAPID Authorization for `origin`."""
    assert header.startswith("vapid "), header
    parts = dict(p.strip().split("=", 1) for p in header[len("vapid "):].split(","))
    token, key = parts["t"], _unb64(parts["k"])
    head_b64, claims_b64, sig_b64 = token.split(".")
    assert json.loads(_unb64(head_b64)) == {"typ": "JWT", "alg": "ES256"}
    signature = _unb64(sig_b64)
    assert len(signature) == 64, "JWS ES256 signature is raw r||s"
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                               int.from_bytes(signature[32:], "big"))
    try:
        public.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise AssertionError("VAPID JWT signature does not verify") from None
    claims = json.loads(_unb64(claims_b64))
    assert claims["aud"] == origin, claims
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600, claims
    assert claims["sub"].startswith(("mailto:", "https:")), claims
    return {**claims, "k": parts["k"]}


def decrypt(body: bytes, private: ec.EllipticCurvePrivateKey, auth: bytes) -> bytes:
    """RFC 8188 aes128gcm with RFC 8291's key derivation; one record, delimiter 0x02."""
    salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    sender = body[21:21 + idlen]
    record = body[21 + idlen:]
    assert idlen == 65 and len(record) <= rs, (idlen, rs, len(record))
    shared = private.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), sender))
    ua_public = _point(private.public_key())

    def hkdf(s: bytes, ikm: bytes, info: bytes, n: int) -> bytes:
        return HKDF(hashes.SHA256(), n, s, info).derive(ikm)

    ikm = hkdf(auth, shared, b"WebPush: info\x00" + ua_public + sender, 32)
    cek = hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    plain = AESGCM(cek).decrypt(nonce, record, None).rstrip(b"\x00")
    assert plain.endswith(b"\x02"), "last record must end with delimiter 2"
    return plain[:-1]


class PushService:
    def __init__(self) -> None:
        self.subscriptions: dict[str, Subscription] = {}
        self.errors: list[str] = []
        self.vapid_keys: set[str] = set()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sub = service.subscriptions.get(self.path)
                if sub is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                try:
                    assert self.headers["Content-Encoding"] == "aes128gcm"
                    assert int(self.headers["TTL"]) >= 0
                    claims = check_vapid(self.headers["Authorization"], service.origin)
                    service.vapid_keys.add(claims["k"])
                    data = json.loads(decrypt(body, sub.private, sub.auth))
                except Exception as exc:  # the test reads .errors
                    service.errors.append(f"{type(exc).__name__}: {exc}")
                    self.send_response(400)
                    self.end_headers()
                    return
                sub.received.append(data)
                sub.arrived.append(time.time())
                time.sleep(sub.hang)
                self.send_response(sub.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def subscribe(self) -> Subscription:
        path = f"/push/{_b64(os.urandom(12))}"
        sub = Subscription(self.origin + path, ec.generate_private_key(ec.SECP256R1()),
                           os.urandom(16))
        self.subscriptions[path] = sub
        return sub

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
