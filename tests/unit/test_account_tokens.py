"""The account page (/account/) and DELETE /api/auth/token/: create named tokens, show a
key once, revoke one or all; a revoked key stops working at once. Forms are posted with
CSRF checks on, as a browser does. One Chromium screenshot of the page at a phone's width.
Hashing, expiry and the migration of old keys: tests/unit/test_tokens_hashed.py."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import ApiToken
from tests.support.browser import launch, screenshot
from tests.support.roles import make_user
from tests.support.tokens import make_token

PHONE = {"width": 390, "height": 844}


def browser_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def act(client: Client, action: str, **fields: str):
    """Press one of the page's buttons: GET the page for the CSRF cookie, POST the form."""
    page = client.get("/account/")
    csrf = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
    return client.post("/account/", {"action": action, **fields,
                                     "csrfmiddlewaretoken": csrf.group(1).decode()})


def new_key(page: str) -> str:
    found = re.search(r'id="new-token-key">([0-9a-f]+)<', page)
    assert found, page
    return found.group(1)


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


def test_create_show_once_several_named_revoke(viewer):
    client = browser_client(viewer)
    page = client.get("/account/").content.decode()
    assert "You have no API token" in page and "viewers" in page
    assert 'href="/account/"' in page  # linked from the nav

    created = act(client, "create", name="Pixel 8", lifetime="7")
    assert created.status_code == 302 and created["Location"] == "/account/"
    shown = client.get("/account/")
    assert shown["Cache-Control"].startswith("max-age=0") and "no-store" in shown["Cache-Control"]
    phone = new_key(shown.content.decode())  # shown once, right after it was made
    assert api_status(phone) == 200
    again = client.get("/account/").content.decode()
    assert phone not in again and f"{phone[:6]}…" in again  # afterwards only its first characters
    assert "Pixel 8" in again

    act(client, "create", name="Prometheus")
    scraper = new_key(client.get("/account/").content.decode())
    tokens = {t.name: t for t in ApiToken.objects.filter(user=viewer)}
    assert set(tokens) == {"Pixel 8", "Prometheus"}
    assert api_status(phone) == 200 and api_status(scraper) == 200

    # revoking one leaves the other working
    assert act(client, "revoke", token=tokens["Pixel 8"].pk).status_code == 302
    assert api_status(phone) in (401, 403) and api_status(scraper) == 200
    assert "Pixel 8" not in client.get("/account/").content.decode()

    act(client, "create", name="tablet")
    assert act(client, "revoke_all").status_code == 302
    assert not ApiToken.objects.filter(user=viewer).exists()
    assert api_status(scraper) in (401, 403)
    assert "You have no API token" in client.get("/account/").content.decode()


def test_nobody_revokes_someone_else_s_token_from_the_page(viewer):
    other = make_user("dog", "viewers")
    theirs = make_token(other)
    victim = ApiToken.objects.get(user=other)
    act(browser_client(viewer), "revoke", token=victim.pk)
    assert api_status(theirs) == 200


def test_forms_need_csrf_and_known_values(viewer):
    client = browser_client(viewer)
    assert client.post("/account/", {"action": "create"}).status_code == 403
    assert not ApiToken.objects.filter(user=viewer).exists()
    assert act(client, "explode").status_code == 400
    assert act(client, "create", lifetime="100000").status_code == 400
    assert not ApiToken.objects.filter(user=viewer).exists()


def test_delete_api_token_revokes_the_token_it_is_called_with(viewer):
    other = make_user("dog", "viewers")
    mine, spare, theirs = make_token(viewer), make_token(viewer, "spare"), make_token(other)
    assert api_status(mine, "delete", "/api/auth/token/") == 204
    assert api_status(mine) in (401, 403)  # revoked at once
    assert api_status(mine, "delete", "/api/auth/token/") in (401, 403)
    assert api_status(spare) == 200  # the user's other token is not touched
    assert api_status(theirs) == 200  # nor anybody else's


def test_a_user_without_a_role_has_an_account_page_but_no_api(db):
    user = make_user("nobody")
    client = browser_client(user)
    assert "none yet" in client.get("/account/").content.decode()
    act(client, "create")
    key = new_key(client.get("/account/").content.decode())
    reply = Client().get("/api/cameras/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert (reply.status_code, reply.json()["error"]) == (403, "forbidden")


@pytest.mark.browser
def test_account_page_on_a_phone(viewer):
    from playwright.sync_api import sync_playwright

    client = browser_client(viewer)
    act(client, "create", name="a phone with a long name that must still fit")
    act(client, "create", name="tablet")
    html = client.get("/account/").content.decode()  # all database work before the browser
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True)
            page.set_content(html)  # the page's CSS is inline: no server needed
            overflow = page.evaluate(
                "document.scrollingElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"the page is {overflow}px wider than the phone"
            for testid in ("new-token", "token-create", "token-revoke", "token-revoke-all"):
                box = page.get_by_test_id(testid).first.bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
            screenshot(page, "account-phone")
        finally:
            browser.close()
