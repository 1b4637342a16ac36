"""The account page (/account/) and DELETE /api/auth/token/: create, show once, regenerate,
revoke; a revoked key stops working at once. Forms are posted with CSRF checks on, as a
browser does. One Chromium screenshot of the page at a phone's width."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.support.browser import launch, screenshot
from tests.support.roles import make_user

PHONE = {"width": 390, "height": 844}


def browser_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def act(client: Client, action: str):
    """Press one of the page's buttons: GET the page for the CSRF cookie, POST the form."""
    page = client.get("/account/")
    csrf = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
    return client.post("/account/", {"action": action,
                                     "csrfmiddlewaretoken": csrf.group(1).decode()})


def api_status(key: str, method: str = "get", path: str = "/api/recordings/") -> int:
    return getattr(Client(), method)(path, HTTP_AUTHORIZATION=f"Bearer {key}").status_code


@pytest.fixture
def viewer(db):
    return make_user("cat", "viewers")


def test_anonymous_is_sent_to_login(db):
    reply = Client().get("/account/")
    assert reply.status_code == 302 and reply["Location"].startswith("/accounts/login/")
    revoke = Client().delete("/api/auth/token/")
    assert revoke.status_code in (401, 403) and revoke.json()["error"] == "not_authenticated"


def test_create_show_once_regenerate_revoke(viewer):
    client = browser_client(viewer)
    page = client.get("/account/").content.decode()
    assert "You have no API token" in page and "viewers" in page
    assert 'href="/account/"' in page  # linked from the nav

    created = act(client, "create")
    assert created.status_code == 302 and created["Location"] == "/account/"
    key = Token.objects.get(user=viewer).key
    shown = client.get("/account/")
    assert shown["Cache-Control"].startswith("max-age=0") and "no-store" in shown["Cache-Control"]
    assert key in shown.content.decode()  # shown once, right after it was made
    assert api_status(key) == 200
    again = client.get("/account/").content.decode()
    assert key not in again and f"{key[:6]}…" in again  # afterwards only its first characters

    assert act(client, "regenerate").status_code == 302
    new_key = Token.objects.get(user=viewer).key
    assert new_key != key and new_key in client.get("/account/").content.decode()
    assert api_status(key) in (401, 403) and api_status(new_key) == 200

    assert act(client, "revoke").status_code == 302
    assert not Token.objects.filter(user=viewer).exists()
    assert api_status(new_key) in (401, 403)
    assert "You have no API token" in client.get("/account/").content.decode()


def test_forms_need_csrf(viewer):
    client = browser_client(viewer)
    assert client.post("/account/", {"action": "create"}).status_code == 403
    assert not Token.objects.filter(user=viewer).exists()
    assert act(client, "explode").status_code == 400


def test_delete_api_token_revokes_the_callers_token(viewer):
    other = make_user("dog", "viewers")
    mine, theirs = (Token.objects.create(user=u).key for u in (viewer, other))
    assert api_status(mine, "delete", "/api/auth/token/") == 204
    assert api_status(mine) in (401, 403)  # revoked at once
    assert api_status(mine, "delete", "/api/auth/token/") in (401, 403)
    assert api_status(theirs) == 200  # nobody else's token is touched


def test_a_user_without_a_role_has_an_account_page_but_no_api(db):
    user = make_user("nobody")
    client = browser_client(user)
    assert "none yet" in client.get("/account/").content.decode()
    act(client, "create")
    key = Token.objects.get(user=user).key
    reply = Client().get("/api/cameras/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert (reply.status_code, reply.json()["error"]) == (403, "forbidden")


@pytest.mark.browser
def test_account_page_on_a_phone(viewer):
    from playwright.sync_api import sync_playwright

    client = browser_client(viewer)
    act(client, "create")
    html = client.get("/account/").content.decode()  # all database work before the browser
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True)
            page.set_content(html)  # the page's CSS is inline: no server needed
            overflow = page.evaluate(
                "document.scrollingElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"the page is {overflow}px wider than the phone"
            for testid in ("new-token", "token-regenerate", "token-revoke"):
                box = page.get_by_test_id(testid).bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
            screenshot(page, "account-phone")
        finally:
            browser.close()
