"""API tokens are stored hashed, shown once, expire, come several to a user with names,
and are revoked one by one (accounts/, django-rest-knox).

Issue 14: the admin's token list showed every key in clear (DRF's authtoken stored them
so), and a user had a single token without expiry.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from importlib import import_module

import pytest
from asgiref.sync import async_to_sync
from django.apps import apps
from django.test import Client
from rest_framework.authtoken.models import Token

from accounts.models import ApiToken
from accounts.tokens import user_for_key
from tests.support.roles import make_user
from tests.support.tokens import make_token

PASSWORD = "a long enough passphrase"


@pytest.fixture
def cat(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast
    return make_user("cat", "viewers", password=PASSWORD)


def login(name: str | None = None, username: str = "cat", password: str = PASSWORD):
    body = {"username": username, "password": password, **({"name": name} if name else {})}
    return Client().post("/api/auth/token/", json.dumps(body), content_type="application/json")


def api_status(key: str, scheme: str = "Bearer") -> int:
    return Client().get("/api/recordings/", HTTP_AUTHORIZATION=f"{scheme} {key}").status_code


def test_a_key_is_stored_only_as_its_sha512(cat):
    reply = login("Pixel 8")
    assert reply.status_code == 200
    body = reply.json()
    key = body["token"]
    assert len(key) == 64 and body["name"] == "Pixel 8"
    row = ApiToken.objects.get(user=cat)
    assert row.digest == hashlib.sha512(key.encode()).hexdigest()
    # knox keeps the first 15 characters to find the row; the rest is nowhere
    stored = [str(getattr(row, f.attname)) for f in ApiToken._meta.concrete_fields]
    assert not any(key in value for value in stored)
    assert row.token_key == key[:15]
    # both schemes work
    assert api_status(key) == 200 and api_status(key, "Token") == 200


def test_the_key_is_shown_once(cat):
    key = login().json()["token"]
    client = Client()
    client.force_login(cat)
    page = client.get("/account/").content.decode()
    assert key not in page and key[:6] in page  # made over the API: the page never shows it
    # a second login makes another token, it does not hand out the first again
    assert login().json()["token"] != key


def test_tokens_expire(cat, settings):
    settings.PETCAM_TOKEN_TTL_DAYS = 7
    body = login().json()
    expiry = datetime.fromisoformat(body["expiry"])
    assert abs((expiry - datetime.now(UTC)) - timedelta(days=7)) < timedelta(minutes=1)
    assert api_status(body["token"]) == 200
    ApiToken.objects.filter(user=cat).update(expiry=datetime.now(UTC) - timedelta(seconds=1))
    # WHEP lists the token first: a 401 with WWW-Authenticate: Bearer (RFC 9725)
    reply = Client().post("/whep/default", "v=0\r\n", content_type="application/sdp",
                          HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert reply.status_code == 401 and reply["WWW-Authenticate"] == "Bearer"
    assert reply.json()["error"] == "authentication_failed"
    assert not ApiToken.objects.filter(user=cat).exists()  # knox deletes it on sight
    assert user_for_key(body["token"]) is None  # the WebSocket's ?token= as well


def test_no_expiry_only_when_the_operator_allows_it(cat, settings):
    settings.PETCAM_TOKEN_TTL_DAYS = 0
    assert login().json()["expiry"] is None


def test_several_named_tokens_and_revoking_one(cat):
    phone, scraper = (login(name).json()["token"] for name in ("Pixel 8", "Prometheus"))
    assert set(ApiToken.objects.filter(user=cat).values_list("name", flat=True)) == {
        "Pixel 8", "Prometheus"}
    assert api_status(phone) == api_status(scraper) == 200
    revoke = Client().delete("/api/auth/token/", HTTP_AUTHORIZATION=f"Bearer {phone}")
    assert revoke.status_code == 204
    assert api_status(phone) in (401, 403) and api_status(scraper) == 200
    assert user_for_key(phone) is None and user_for_key(scraper) == cat


def test_a_user_holds_a_bounded_number_of_tokens(cat, settings):
    settings.PETCAM_TOKENS_PER_USER = 2
    assert login().status_code == login().status_code == 200
    third = login()
    assert (third.status_code, third.json()["error"]) == (403, "too_many_tokens")
    assert ApiToken.objects.filter(user=cat).count() == 2
    ApiToken.objects.filter(user=cat).update(expiry=datetime.now(UTC) - timedelta(seconds=1))
    assert login().status_code == 200  # expired ones do not count


def test_an_inactive_user_s_token_does_not_work(cat):
    key = make_token(cat)
    cat.is_active = False
    cat.save()
    assert api_status(key) in (401, 403) and user_for_key(key) is None


@pytest.mark.parametrize("key", ["", "x", "0" * 64, "é" * 10, "a b", "0" * 10_000])
def test_garbage_keys_are_refused(cat, key):
    make_token(cat)
    assert user_for_key(key) is None


def test_old_drf_keys_keep_working_after_the_migration(cat):
    """accounts/migrations/0002: a DRF key (40 hex) is hashed into knox's table, its
    clear text deleted; the app that holds it is not logged out."""
    old = Token.objects.create(user=cat)
    migration = import_module("accounts.migrations.0002_hash_old_tokens")
    migration.hash_old_tokens(apps, None)
    assert not Token.objects.exists()
    moved = ApiToken.objects.get(user=cat)
    assert moved.digest == hashlib.sha512(old.key.encode()).hexdigest()
    assert moved.name == migration.MOVED_NAME and moved.expiry is not None
    assert moved.created == old.created
    assert api_status(old.key) == 200
    assert async_to_sync(_ws_user)(old.key) == cat


async def _ws_user(key: str):
    from streaming.consumers import authenticate_token

    found = await authenticate_token(key)
    return found[0] if found else None
