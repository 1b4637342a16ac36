"""The Web Push wire format against RFC 8291's worked example (Appendix A): with the
sender's key and salt fixed, events/webpush.encrypt gives the RFC's body byte for byte,
and the test push service's decryptor (tests/support/push_service.py) reads it back. The
VAPID header verifies the way a push service checks it."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from events import webpush
from tests.support.push_service import check_vapid, decrypt

PLAINTEXT = b"When I grow up, I want to be a watermelon"
AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
AS_PUBLIC = ("BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru"
             "3jl7A8")
UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
UA_PUBLIC = ("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIA"
             "iw4")
SALT = "DGv6ra1nlYgDCS1FRnbzlw"
AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
BODY = ("DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocIn"
        "mYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQ"
        "exSgSxsj_Qulcy4a-fN")


def key(private_b64: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(webpush.b64url_decode(private_b64), "big"),
                                 ec.SECP256R1())


def test_rfc_8291_example_byte_for_byte():
    d = webpush.b64url_decode
    sender = key(AS_PRIVATE)
    assert webpush.b64url(webpush.public_bytes(sender.public_key())) == AS_PUBLIC
    body = webpush.encrypt(PLAINTEXT, d(UA_PUBLIC), d(AUTH), sender=sender, salt=d(SALT))
    assert webpush.b64url(body) == BODY
    assert decrypt(d(BODY), key(UA_PRIVATE), d(AUTH)) == PLAINTEXT


def test_fresh_keys_round_trip_and_limits():
    ua = ec.generate_private_key(ec.SECP256R1())
    auth = b"0123456789abcdef"
    p256dh = webpush.public_bytes(ua.public_key())
    one, two = (webpush.encrypt(b"hello", p256dh, auth) for _ in range(2))
    assert one != two  # a new sender key and salt each time
    assert decrypt(one, ua, auth) == decrypt(two, ua, auth) == b"hello"
    with pytest.raises(ValueError, match="exceeds"):
        webpush.encrypt(b"x" * (webpush.MAX_PAYLOAD + 1), p256dh, auth)
    with pytest.raises(webpush.PushKeyError):
        webpush.encrypt(b"x", p256dh[:-1], auth)
    with pytest.raises(webpush.PushKeyError):
        webpush.check_keys(webpush.b64url(p256dh), webpush.b64url(b"short"))
    with pytest.raises(webpush.PushKeyError):
        webpush.check_keys(webpush.b64url(b"\x04" + b"\x01" * 64), webpush.b64url(auth))


def test_vapid_header_verifies():
    signer = ec.generate_private_key(ec.SECP256R1())
    header = webpush.vapid_authorization(signer, "https://push.example.net:8443/w/abc?x=1",
                                         "mailto:me@example.com")
    claims = check_vapid(header, "https://push.example.net:8443")
    assert claims["sub"] == "mailto:me@example.com"
    assert claims["exp"] <= time.time() + 24 * 3600
    assert claims["k"] == webpush.b64url(webpush.public_bytes(signer.public_key()))
    # Another audience or a tampered claim set fails.
    with pytest.raises(AssertionError):
        check_vapid(header, "https://other.example.net")
    token = header.split("t=", 1)[1].split(",", 1)[0]
    head, _, sig = token.split(".")
    forged = webpush.b64url(json.dumps({"aud": "https://push.example.net:8443",
                                        "exp": int(time.time()) + 60,
                                        "sub": "mailto:evil@example.com"}).encode())
    with pytest.raises(AssertionError, match="signature"):
        check_vapid(header.replace(token, f"{head}.{forged}.{sig}"),
                    "https://push.example.net:8443")
