"""Chromium plays the camera only through a real coturn (the live page's `?ice=relay`),
with the TURN credential GET /api/webrtc/ice-servers/ gave it; and with a credential
coturn refuses (wrong, or expired) the page says it cannot connect and sends no offer.

The media worker here does not use TURN (the default): the relay reaches its direct
candidates, as when coturn runs next to petcam.
"""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import expect, sync_playwright

from streaming.ice_servers import turn_credential
from tests.support.browser import launch
from tests.support.processes import Client, start_install, start_simulator, wait_for
from tests.support.turn_server import running_coturn

pytestmark = pytest.mark.browser

# The selected candidate pair's local side, as Chromium's getStats reports it.
SELECTED_LOCAL_CANDIDATE = """async () => {
  const report = await petcamPlayer.pc.getStats();
  for (const r of report.values()) {
    if (r.type !== "transport" || !r.selectedCandidatePairId) continue;
    const pair = report.get(r.selectedCandidatePairId);
    const local = report.get(pair.localCandidateId);
    return {type: local.candidateType, relayProtocol: local.relayProtocol || null,
            url: local.url || null};
  }
  return null;
}"""


@pytest.fixture(scope="module")
def turn(tmp_path_factory):
    with running_coturn(tmp_path_factory.mktemp("coturn")) as server:
        yield server


@pytest.fixture(scope="module")
def site(turn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("turn-browser")
    install = start_install(tmp, **turn.site_env())
    sim = start_simulator(install.env, tmp / "logs", "--bitrate", "300")
    try:
        client = Client(install.base)
        client.login(install.username, install.password)
        wait_for(lambda: client.get_json("/api/cameras/default/")[1].get("live"), 30,
                 "the camera to go live")
        yield install
    finally:
        sim.stop()
        install.site.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        browser = launch(pw)
        yield browser
        browser.close()


def logged_in_page(browser, site, tamper=None):
    """A new context, logged in, on the live page with the relay forced. `tamper` may
    rewrite the ice-servers answer on its way to the page."""
    context = browser.new_context()
    if tamper is not None:
        def handle(route):
            response = route.fetch()
            route.fulfill(response=response, body=json.dumps(tamper(response.json())))
        context.route("**/api/webrtc/ice-servers/", handle)
    page = context.new_page()
    page.goto(site.base + "/accounts/login/?next=/%3Fice%3Drelay")
    page.get_by_label("Username").fill(site.username)
    page.get_by_label("Password").fill(site.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(site.base + "/?ice=relay")
    return page


def test_chromium_plays_the_camera_through_the_relay(browser, site, turn):
    page = logged_in_page(browser, site)
    try:
        stats = wait_for(lambda: (s := page.evaluate("petcamPlayer.stats()"))
                         and s["framesDecoded"] >= 10 and s, 20, "frames through the relay",
                         interval=0.2)
        assert stats["frameWidth"] == 320, stats
        assert page.evaluate("petcamPlayer.pc.getConfiguration().iceTransportPolicy") == "relay"
        local = page.evaluate(SELECTED_LOCAL_CANDIDATE)
        assert local and local["type"] == "relay", local
        offered = page.evaluate("petcamPlayer.pc.localDescription.sdp")
        candidates = [x for x in offered.splitlines() if x.startswith("a=candidate:")]
        assert candidates and all(" typ relay " in x for x in candidates), candidates
        # coturn saw this user's credential: <expiry>:<user id>
        assert "incoming packet ALLOCATE processed, success" in turn.proc.log()
        print(f"time to first frame through TURN: {page.evaluate('petcamPlayer.ttff()'):.0f} ms")
    finally:
        page.context.close()


def wrong(body: dict) -> dict:
    for server in body["iceServers"]:
        if "username" in server:
            server["credential"] = "not-the-credential"
    return body


def expired(secret: str):
    def tamper(body: dict) -> dict:
        for server in body["iceServers"]:
            if "username" in server:
                user = server["username"].split(":", 1)[1]
                server["username"], server["credential"] = turn_credential(
                    secret, user, int(time.time()) - 60)
        return body
    return tamper


@pytest.mark.parametrize("which", ["wrong", "expired"])
def test_a_refused_credential_says_it_cannot_connect(browser, site, turn, which):
    page = logged_in_page(browser, site, wrong if which == "wrong" else expired(turn.secret))
    try:
        message = page.get_by_test_id("player-message")
        expect(message).to_contain_text(
            "Cannot connect to the camera through the relay server (401", timeout=15_000)
        expect(message).to_contain_text("Retrying")
        player = page.evaluate("({connects: petcamPlayer.connects, session: petcamPlayer.session,"
                               " reason: petcamPlayer.lastReason})")
        assert player["connects"] == 0 and player["session"] is None, player
        assert "no_relay" in player["reason"], player
    finally:
        page.context.close()
