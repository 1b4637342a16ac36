"""Signed HLS links (recordings/signed_links.py): bound to the credentials they were asked
with, short-lived, unreadable, and never written to a log.

Issue 14: a link survived a password change and a token revoke for up to 2 h, carried
`recording:user id` readably, and daphne's access log printed it in full.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from cryptography.fernet import Fernet, InvalidToken
from rest_framework.test import APIClient

from accounts.models import ApiToken
from petcam_site import logging_config
from petcam_site.access_log import AccessLog, RedactSecrets, redact
from recordings import signed_links
from recordings.media.writers import Mp4FileWriter
from recordings.models import Recording
from tests.support.recordings import camera_units
from tests.support.roles import make_user
from tests.support.tokens import make_token

PASSWORD = "a long enough passphrase"


@pytest.fixture(scope="module")
def mp4(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("links") / "rec.mp4"
    writer = Mp4FileWriter(path)
    writer.create()
    for unit in camera_units(320, 240, 60, 15):
        writer.write(unit)
    writer.close()
    return path


@pytest.fixture
def recording(db, settings, tmp_path, mp4) -> Recording:
    settings.MEDIA_ROOT = tmp_path / "media"
    rel = "recordings/default/2026-01-01/default-20260101T000000Z-link.mp4"
    (settings.MEDIA_ROOT / rel).parent.mkdir(parents=True)
    shutil.copy(mp4, settings.MEDIA_ROOT / rel)
    started = datetime(2026, 1, 1, tzinfo=UTC)
    return Recording.objects.create(
        camera="default", file=rel, format="mp4", status="complete", started_at=started,
        ended_at=started + timedelta(seconds=2), duration=2.0, frame_count=60,
        size_bytes=mp4.stat().st_size, width=320, height=240)


@pytest.fixture
def user(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast
    return make_user("couch", "viewers", password=PASSWORD)


def link_with_session(user, recording) -> dict:
    client = APIClient()
    client.force_login(user)
    return client.get(f"/api/recordings/{recording.pk}/hls/link/").json()


def link_with_token(key: str, recording) -> dict:
    return APIClient().get(f"/api/recordings/{recording.pk}/hls/link/",
                           HTTP_AUTHORIZATION=f"Bearer {key}").json()


def play(url: str):
    return APIClient().get(url)


def test_the_default_lifetime_is_15_minutes_plus_the_recording(user, recording):
    reply = link_with_session(user, recording)
    assert reply["expires_in"] == 15 * 60 + 2  # a player that starts now reaches the end
    assert play(reply["url"]).status_code == 200
    # just before and just after the expiry
    issued = time.time() - reply["expires_in"]
    fresh = signed_links.sign(recording.pk, user, duration_s=2.0, now=issued + 5)
    old = signed_links.sign(recording.pk, user, duration_s=2.0, now=issued - 5)
    base = f"/api/recordings/{recording.pk}/hls/index.m3u8?sig="
    assert play(base + quote(fresh)).status_code == 200
    expired = play(base + quote(old))
    assert (expired.status_code, expired.json()["error"]) == (403, "link_expired")


def test_a_password_change_ends_the_link(user, recording):
    url = link_with_session(user, recording)["url"]
    assert play(url).status_code == 200
    user.set_password("another long passphrase")
    user.save()
    reply = play(url)
    assert (reply.status_code, reply.json()["error"]) == (403, "invalid_link")
    assert "password changed" in reply.json()["detail"]
    # the segments' URLs carry the same sig: refused too
    assert play(url.replace("index.m3u8", "media.mp4")).status_code == 403


def test_revoking_the_token_ends_the_link_made_with_it(user, recording):
    key, other = make_token(user, "tv"), make_token(user, "phone")
    url = link_with_token(key, recording)["url"]
    url_other = link_with_token(other, recording)["url"]
    assert play(url).status_code == 200
    ApiToken.objects.filter(name="tv").delete()
    reply = play(url)
    assert (reply.status_code, reply.json()["error"]) == (403, "invalid_link")
    assert play(url_other).status_code == 200  # the link of the other token still plays


def test_an_expired_token_ends_the_link(user, recording):
    key = make_token(user, "tv")
    url = link_with_token(key, recording)["url"]
    ApiToken.objects.filter(name="tv").update(expiry=datetime.now(UTC) - timedelta(seconds=1))
    assert play(url).status_code == 403


def test_the_link_reveals_nothing_and_cannot_be_edited(user, recording):
    url = link_with_session(user, recording)["url"]
    sig = parse_qs(urlsplit(url).query)["sig"][0]
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    # Encrypted, not just signed: a Fernet token (version byte 0x80) that only the site's
    # key opens; any other key gets nothing out of it. (Byte searches in the ciphertext
    # would fail by chance: random bytes contain '{' or ':1' often.)
    assert raw[0] == 0x80
    with pytest.raises(InvalidToken):
        Fernet(Fernet.generate_key()).decrypt(sig.encode())
    assert str(user.pk).encode() in signed_links._fernet().decrypt(sig.encode())
    flipped = sig[:-6] + ("A" if sig[-6] != "A" else "B") + sig[-5:]
    reply = play(url.replace(quote(sig), quote(flipped)))
    assert (reply.status_code, reply.json()["error"]) == (403, "invalid_link")
    # another recording's URL with this sig
    other = Recording.objects.create(camera="default", file=recording.file.name, format="mp4",
                                     status="complete", started_at=recording.started_at)
    reply = play(url.replace(f"/{recording.pk}/", f"/{other.pk}/"))
    assert reply.status_code == 403 and "another recording" in reply.json()["detail"]


# --- never in a log ----------------------------------------------------------------------


def test_redact_cuts_credentials_out_of_urls():
    cases = {
        "GET /api/recordings/7/hls/index.m3u8?sig=gAAAAB-x_y%3D%3D 200":
            "GET /api/recordings/7/hls/index.m3u8?sig=[redacted] 200",
        "/api/recordings/7/hls/media.mp4?a=1&sig=abc&b=2":
            "/api/recordings/7/hls/media.mp4?a=1&sig=[redacted]&b=2",
        "WS /ws/cameras/default/?token=0123abcd accepted":
            "WS /ws/cameras/default/?token=[redacted] accepted",
        "/x?SIG=1": "/x?SIG=[redacted]",
        "/x?csrftoken=kept&design=kept": "/x?csrftoken=kept&design=kept",
    }
    for text, expected in cases.items():
        assert redact(text) == expected


def test_the_access_log_shows_the_client_and_no_secret(caplog):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"#EXTM3U\n"})

    async def request():
        sent = []

        async def receive():
            return {"type": "http.request", "body": b""}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "GET", "client": ["203.0.113.7", 5000],
                 "path": "/api/recordings/7/hls/index.m3u8",
                 "query_string": b"sig=SECRETSIG123&x=1"}
        await AccessLog(app)(scope, receive, send)
        return sent

    with caplog.at_level(logging.INFO, logger="petcam.access"):
        sent = asyncio.run(request())
    assert sent[0]["status"] == 200
    line = next(r.getMessage() for r in caplog.records if r.name == "petcam.access")
    assert line.startswith(
        '203.0.113.7 "GET /api/recordings/7/hls/index.m3u8?sig=[redacted]&x=1"')
    assert " 200 8 " in line and "SECRETSIG123" not in line


def test_every_log_line_goes_through_the_redaction_filter():
    config = logging_config.build("INFO", "text")
    assert "redact_secrets" in config["handlers"]["console"]["filters"]
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1,
                               "Forbidden: %s", ("/api/recordings/1/hls/media.mp4?sig=abc",),
                               None)
    assert RedactSecrets().filter(record) is True
    assert record.getMessage() == "Forbidden: /api/recordings/1/hls/media.mp4?sig=[redacted]"
