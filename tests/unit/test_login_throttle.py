"""Password guessing is throttled (django-axes) on the login page and POST /api/auth/token/.

After AXES_FAILURE_LIMIT wrong passwords for one username from one address, that pair is
locked out: the page says so (429), the API answers 429 too_many_attempts, and even the
right password is refused until the cool-off ends. Other users and other addresses are
not affected; a success before the limit resets the count. The login page is also driven
through Django's ASGI handler, the path daphne takes (axes' async middleware).
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from tests.support.roles import make_user

LIMIT = 3
PASSWORD = "correct horse battery"


@pytest.fixture
def users(db, settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast
    return {name: make_user(name, "viewers", password=PASSWORD) for name in ("cat", "dog")}


def login(client: Client, username: str, password: str, ip: str = "10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password},
                       REMOTE_ADDR=ip)


def get_token(username: str, password: str, ip: str = "10.0.0.1"):
    return Client().post("/api/auth/token/", json.dumps({"username": username,
                                                         "password": password}),
                         content_type="application/json", REMOTE_ADDR=ip)


def test_login_page_locks_out_after_the_limit(users):
    client = Client()
    for _ in range(LIMIT - 1):
        reply = login(client, "cat", "guess")
        assert reply.status_code == 200 and b"Wrong username or password" in reply.content
    locked = login(client, "cat", "guess")
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content and b"15 minutes" in locked.content
    assert int(locked["Retry-After"]) == 15 * 60
    # now even the right password is refused, and no session is opened
    again = login(client, "cat", PASSWORD)
    assert again.status_code == 429 and b"Too many failed logins" in again.content
    assert client.get("/").status_code == 302  # still sent to the login page
    # another user from the same address, and the same user from another address, are fine
    assert login(Client(), "dog", PASSWORD).status_code == 302
    elsewhere = Client()
    assert login(elsewhere, "cat", PASSWORD, ip="10.0.0.2").status_code == 302
    assert elsewhere.get("/?camera=default").status_code == 200


def test_token_endpoint_locks_out_with_json_429(users):
    for _ in range(LIMIT - 1):
        wrong = get_token("cat", "guess")
        assert wrong.status_code == 400 and wrong.json()["error"] == "authorization"
    locked = get_token("cat", "guess")
    assert locked.status_code == 429
    assert locked.json()["error"] == "too_many_attempts"
    assert "Try again in 15 minutes" in locked.json()["detail"]
    refused = get_token("cat", PASSWORD)  # the right password does not help now
    assert (refused.status_code, refused.json()["error"]) == (429, "too_many_attempts")
    assert "token" not in refused.json()
    # the login page shares the count: cat is locked there too, from that address
    assert login(Client(), "cat", PASSWORD).status_code == 429
    ok = get_token("dog", PASSWORD)
    assert ok.status_code == 200 and len(ok.json()["token"]) == 40


def test_a_success_resets_the_count(users):
    for _ in range(2):
        for _ in range(LIMIT - 1):
            assert get_token("cat", "guess").status_code == 400
        assert get_token("cat", PASSWORD).status_code == 200
    assert get_token("cat", "guess").status_code == 400  # not locked: counting from 0


def test_lockout_through_the_asgi_handler(users):
    """daphne runs Django's async handler, where axes' middleware takes its async path."""
    client = AsyncClient()

    def post(password: str):
        return async_to_sync(client.post)("/accounts/login/",
                                          {"username": "cat", "password": password})

    for _ in range(LIMIT - 1):
        assert post("guess").status_code == 200
    locked = post("guess")
    assert locked.status_code == 429 and b"Too many failed logins" in locked.content
    assert post(PASSWORD).status_code == 429
