"""No dead ends (issue 17, item 5): logout lands on our login page with a note, unknown
browser pages get our HTML 404 (API paths keep JSON), every user can change their
password, /favicon.ico answers, and revoking a token asks first. Forms are posted with
CSRF checks on, as a browser does."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken
from recordings.models import Recording
from tests.support.roles import make_user
from tests.support.tokens import make_token

PASSWORD = "an old long passphrase"


def csrf_post(client: Client, page: str, path: str, data: dict):
    """GET `page` for the CSRF cookie and token, POST `data` to `path`."""
    found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(page).content)
    assert found, page
    return client.post(path, {**data, "csrfmiddlewaretoken": found.group(1).decode()})


def no_csrf(html: bytes) -> bytes:
    """The page without its per-response CSRF token (the header's logout form)."""
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", html)


@pytest.fixture
def viewer(db):
    return make_user("cat", "viewers", password=PASSWORD)


@pytest.fixture
def client(viewer) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    return client


def test_logout_lands_on_our_login_page_with_a_note(client):
    reply = csrf_post(client, "/account/", "/accounts/logout/", {})
    assert reply.status_code == 302 and reply["Location"] == "/accounts/login/"
    page = client.get(reply["Location"]).content.decode()
    assert "You are logged out." in page and 'name="password"' in page
    assert "quality time" not in page
    assert client.get("/account/").status_code == 302  # really logged out
    # the note is shown once
    assert "You are logged out." not in client.get("/accounts/login/").content.decode()


def test_unknown_pages_are_html_and_api_paths_stay_json(client):
    for path in ("/recordings/987654/", "/no-such-page/"):
        reply = client.get(path)
        assert reply.status_code == 404, path
        assert reply["Content-Type"].startswith("text/html"), path
        assert b'data-testid="not-found"' in reply.content and b"{" not in reply.content
    anonymous = Client().get("/no-such-page/")
    assert anonymous.status_code == 404 and b'data-testid="not-found"' in anonymous.content
    for path in ("/api/no-such-thing/", "/api/recordings/987654/", "/whep/nosuchcam/x/y"):
        reply = client.get(path)
        assert reply.status_code == 404, path
        assert reply.json()["error"] in ("not_found", "unknown_camera"), path


def test_a_recording_of_a_camera_the_user_may_not_see_looks_unknown(db):
    from streaming.models import Camera

    Camera.objects.create(slug="garden", name="Garden", stream_segment="/petcam_nowhere")
    rec = Recording.objects.create(camera="default", file="x.h264", format="h264",
                                   status="complete", started_at=timezone.now())
    limited = Client()
    limited.force_login(make_user("limited", "viewers", cameras=("garden",)))
    hidden, unknown = limited.get(f"/recordings/{rec.pk}/"), limited.get("/recordings/987654/")
    assert hidden.status_code == unknown.status_code == 404
    assert no_csrf(hidden.content) == no_csrf(unknown.content)


def test_every_user_can_change_their_password(viewer, client):
    page = client.get("/account/").content.decode()
    assert 'href="/account/password/"' in page
    form = client.get("/account/password/")
    assert form.status_code == 200 and b'name="new_password1"' in form.content
    # the validators are on: a short one is refused, nothing changes
    short = csrf_post(client, "/account/password/", "/account/password/",
                      {"old_password": PASSWORD, "new_password1": "cat",
                       "new_password2": "cat"})
    assert short.status_code == 200 and b"too short" in short.content
    wrong = csrf_post(client, "/account/password/", "/account/password/",
                      {"old_password": "not it", "new_password1": "a new long passphrase",
                       "new_password2": "a new long passphrase"})
    assert wrong.status_code == 200 and b"incorrectly" in wrong.content
    viewer.refresh_from_db()
    assert viewer.check_password(PASSWORD)
    done = csrf_post(client, "/account/password/", "/account/password/",
                     {"old_password": PASSWORD, "new_password1": "a new long passphrase",
                      "new_password2": "a new long passphrase"})
    assert done.status_code == 302 and done["Location"] == "/account/"
    viewer.refresh_from_db()
    assert viewer.check_password("a new long passphrase")
    after = client.get("/account/")  # this session stays logged in
    assert after.status_code == 200 and b"Your password was changed." in after.content


def test_password_page_needs_a_login(db):
    reply = Client().get("/account/password/")
    assert reply.status_code == 302 and reply["Location"].startswith("/accounts/login/")


def test_favicon(db):
    page = Client().get("/accounts/login/").content.decode()
    icon = re.search(r'<link rel="icon" href="([^"]+)"', page)
    assert icon and icon.group(1).endswith(".svg")
    reply = Client().get("/favicon.ico")
    assert reply.status_code == 302 and reply["Location"] == icon.group(1)
    # the home-screen icon of phones: a 180 px PNG
    touch = re.search(r'<link rel="apple-touch-icon" href="/static/([^"]+)"', page)
    assert touch, page
    png = Path(finders.find(touch.group(1))).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (180, 180)  # IHDR width, height
    assert finders.find(icon.group(1).removeprefix("/static/"))


def test_revoke_asks_first(viewer, client):
    key = make_token(viewer)
    token = ApiToken.objects.get(user=viewer)
    page = client.get("/account/").content.decode()
    assert "mobile app" not in page
    asked = csrf_post(client, "/account/", "/account/",
                      {"action": "confirm_revoke", "token": token.pk})
    assert asked.status_code == 200 and b'data-testid="revoke-confirm"' in asked.content
    assert ApiToken.objects.filter(pk=token.pk).exists()  # nothing revoked yet
    assert Client().get("/api/recordings/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    # the confirm page's own form revokes
    found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', asked.content)
    done = client.post("/account/", {"action": "revoke", "token": token.pk,
                                     "csrfmiddlewaretoken": found.group(1).decode()})
    assert done.status_code == 302 and not ApiToken.objects.filter(pk=token.pk).exists()
    # all: asks too
    make_token(viewer)
    make_token(viewer)
    asked = csrf_post(client, "/account/", "/account/", {"action": "confirm_revoke_all"})
    assert asked.status_code == 200 and b"all 2 tokens" in asked.content
    assert ApiToken.objects.filter(user=viewer).count() == 2
    # someone else's token: no confirm page, nothing shown about it
    other = make_user("dog", "viewers")
    make_token(other)
    theirs = ApiToken.objects.get(user=other)
    reply = csrf_post(client, "/account/", "/account/",
                      {"action": "confirm_revoke", "token": theirs.pk})
    assert reply.status_code == 302 and ApiToken.objects.filter(pk=theirs.pk).exists()
