"""ICE servers for clients (streaming/ice_servers.py, GET /api/webrtc/ice-servers/): coturn
REST credentials on exact inputs, settings that are refused with a clear message, and the
endpoint's auth. tests/integration/test_turn_relay.py has a real coturn accept them."""

from __future__ import annotations

import time

import pytest
from django.test import Client, override_settings

from streaming import ice_servers
from streaming.ice_servers import IceConfig, turn_credential
from tests.support.roles import make_user
from tests.support.tokens import make_token

CONFIG = IceConfig(static=({"urls": "stun:stun.example.org:3478"},),
                   turn_urls=("turn:turn.example.org:3478?transport=udp",
                              "turns:turn.example.org:5349?transport=tcp"),
                   turn_secret="north-pole", ttl=600)


def test_credential_is_coturns_rest_scheme():
    # `printf '1700000000:42' | openssl dgst -sha1 -hmac north-pole -binary | base64`
    assert turn_credential("north-pole", "42", 1700000000) == (
        "1700000000:42", "ax9NIEZ6tDg5XADFxxIzadnTGDw=")


def test_each_user_gets_a_credential_that_expires_after_the_ttl():
    servers = CONFIG.for_user("7", now=1_000_000)
    assert servers[0] == {"urls": "stun:stun.example.org:3478"}
    turn = servers[1]
    assert turn["urls"] == list(CONFIG.turn_urls)
    assert turn["username"] == "1000600:7"
    assert (turn["username"], turn["credential"]) == turn_credential("north-pole", "7", 1000600)
    assert CONFIG.for_user("8", now=1_000_000)[1]["credential"] != turn["credential"]


def test_without_turn_only_the_static_servers():
    config = IceConfig(static=({"urls": "stun:stun.example.org"},))
    assert config.for_user("1") == [{"urls": "stun:stun.example.org"}]
    assert IceConfig().for_client("1") == {"iceServers": [], "ttl": 3600,
                                           "iceTransportPolicy": "all"}


@pytest.mark.parametrize(("args", "message"), [
    (({"urls": "stun:x"}, "", "", 60, "all"), "must be a JSON list"),
    (([{"url": "stun:x"}], "", "", 60, "all"), "must be a JSON list"),
    (([], "stun:turn.example.org", "s", 60, "all"), "not a turn: or turns: URL"),
    (([], "turn:turn.example.org", "", 60, "all"), "PETCAM_TURN_SECRET is empty"),
    (([], "turn:turn.example.org", "s", 0, "all"), "PETCAM_TURN_TTL must be a positive"),
    (([], "turn:turn.example.org", "s", 60, "sometimes"), "must be all or relay"),
    (([{"urls": "stun:x"}], "", "", 60, "relay"), "relay needs a TURN server"),
])
def test_bad_settings_are_refused_with_the_reason(args, message):
    with pytest.raises(ValueError, match=message):
        ice_servers.parse(*args)


def test_parse_keeps_what_it_is_given():
    config = ice_servers.parse([{"urls": ["stun:a", "stun:b"]}],
                               " turn:t:3478 , turns:t:5349 ", "s", 120, "relay")
    assert config == IceConfig(({"urls": ["stun:a", "stun:b"]},), ("turn:t:3478", "turns:t:5349"),
                               "s", 120, "relay")


@pytest.fixture
def viewer(db):
    return make_user("cat", "viewers")


@override_settings(PETCAM_ICE=CONFIG)
def test_endpoint_gives_a_session_user_their_own_credential(viewer):
    client = Client()
    client.force_login(viewer)
    before = int(time.time())
    reply = client.get("/api/webrtc/ice-servers/")
    assert reply.status_code == 200, reply.content
    assert reply["Cache-Control"] == "no-store"
    body = reply.json()
    assert body["ttl"] == 600 and body["iceTransportPolicy"] == "all"
    stun, turn = body["iceServers"]
    expiry, user = turn["username"].split(":")
    assert user == str(viewer.pk) and before + 600 <= int(expiry) <= time.time() + 600
    assert (turn["username"], turn["credential"]) == turn_credential("north-pole", user,
                                                                     int(expiry))


@override_settings(PETCAM_ICE=CONFIG)
def test_endpoint_takes_a_bearer_token(viewer):
    reply = Client().get("/api/webrtc/ice-servers/",
                         headers={"Authorization": f"Bearer {make_token(viewer)}"})
    assert reply.status_code == 200
    assert reply.json()["iceServers"][1]["username"].endswith(f":{viewer.pk}")


def test_endpoint_refuses_visitors_and_users_who_may_not_watch(db):
    reply = Client().get("/api/webrtc/ice-servers/")
    assert reply.status_code in (401, 403) and reply.json()["error"] == "not_authenticated"
    reply = Client().get("/api/webrtc/ice-servers/", headers={"Authorization": "Bearer nope"})
    assert reply.status_code in (401, 403) and reply.json()["error"] == "authentication_failed"
    nobody = Client()
    nobody.force_login(make_user("norole"))
    assert nobody.get("/api/webrtc/ice-servers/").status_code == 403
