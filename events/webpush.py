"""Web Push's wire format with `cryptography` only: VAPID (RFC 8292) and aes128gcm (RFC 8291).

Django-free. `encrypt` turns a payload into the body a push service takes (RFC 8188 record
with the sender's ephemeral public key as key id, one record, padding delimiter 0x02);
`vapid_authorization` signs the JWT (ES256) that tells the push service who sends.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import time
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

RECORD_SIZE = 4096
# Push services accept at least 4096 bytes of body: 86 of header, 16 of tag, 1 delimiter.
MAX_PAYLOAD = RECORD_SIZE - 86 - 16 - 1
JWT_LIFETIME = 12 * 3600  # RFC 8292: at most 24 h


class PushKeyError(ValueError):
    """A subscription's keys are not a P-256 point and a 16-byte secret."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not a string")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)


def parse_public(raw: bytes) -> ec.EllipticCurvePublicKey:
    if len(raw) != 65 or raw[0] != 4:
        raise PushKeyError("p256dh must be an uncompressed P-256 point (65 bytes)")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError as exc:
        raise PushKeyError("p256dh is not a point on P-256") from exc


def check_keys(p256dh: str, auth: str) -> None:
    """Raise PushKeyError unless these are a browser subscription's keys (base64url)."""
    try:
        raw_key, raw_auth = b64url_decode(p256dh), b64url_decode(auth)
    except (ValueError, TypeError) as exc:
        raise PushKeyError("keys must be base64url") from exc
    parse_public(raw_key)
    if len(raw_auth) != 16:
        raise PushKeyError("auth must be 16 bytes")


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def encrypt(payload: bytes, p256dh: bytes, auth: bytes, *,
            sender: ec.EllipticCurvePrivateKey | None = None, salt: bytes | None = None) -> bytes:
    """The aes128gcm body for one subscription (`sender`/`salt` fixed only by tests)."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    ua_public = parse_public(p256dh)
    sender = sender or ec.generate_private_key(ec.SECP256R1())
    salt = salt or os.urandom(16)
    as_public = public_bytes(sender.public_key())
    shared = sender.exchange(ec.ECDH(), ua_public)
    ikm = _hkdf(auth, shared, b"WebPush: info\x00" + p256dh + as_public, 32)
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    record = AESGCM(cek).encrypt(nonce, payload + b"\x02", None)
    header = salt + struct.pack("!IB", RECORD_SIZE, len(as_public)) + as_public
    return header + record


def origin(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def vapid_authorization(key: ec.EllipticCurvePrivateKey, endpoint: str, subject: str,
                        now: float | None = None) -> str:
    """`Authorization: vapid t=<JWT>, k=<public key>` for a POST to `endpoint`."""
    header = b64url(json.dumps({"typ": "JWT", "alg": "ES256"}).encode())
    claims = {"aud": origin(endpoint), "exp": int((now or time.time()) + JWT_LIFETIME),
              "sub": subject}
    signing_input = f"{header}.{b64url(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS: raw r||s, not DER
    public = b64url(public_bytes(key.public_key()))
    return f"vapid t={signing_input}.{b64url(signature)}, k={public}"
