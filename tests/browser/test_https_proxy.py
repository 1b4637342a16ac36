"""The site over HTTPS behind the shipped Caddy rules, driven by Chromium and real clients.

One site (PETCAM_TLS=1, Caddy on 127.0.0.1 as its only trusted proxy, hosts from
DJANGO_ALLOWED_HOSTS) and one Caddy (tests/support/caddy.py: deploy/caddy/petcam.caddy,
throwaway certificate for `localhost` from Caddy's own CA) on free loopback ports.
Through https:// only: Chromium logs in, watches live (WebRTC signaling and the
detections WebSocket over wss://), fetches a recording with Range and plays it; an aiortc
viewer uses WHEP; FFmpeg plays the recording's HLS; a client on 127.0.0.2 that forges
X-Forwarded-For is counted (access log, login throttle) under its real address.

Chromium does not know Caddy's root: its contexts have `ignore_https_errors=True`.
Python's clients verify the certificate against that root (SSL_CERT_FILE).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from http.client import HTTPSConnection

import av
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import launch, screenshot
from tests.support.caddy import DEPLOY, Proxy, running_caddy, validate
from tests.support.processes import install, pick_free_port, site_env, start_site
from tests.support.webrtc_client import (
    Site,
    WebRtcClient,
    get_token,
    http,
    nal_types,
    simulated_camera,
)

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 320, 240
SIM_ARGS = ("--profile", "main", "--gop", "15", "--encode", "live", "--bitrate", "600")
FORGED = "203.0.113."  # + a number: a made-up client per request
ADDRESS_LIMIT = 3  # failed logins from one address before its logins are refused
# The live page's video transports, each watched through the proxy by Chromium.
# Both live transports: WebRTC, and MSE over the WebSocket (WS /ws/cameras/{camera}/mse/).
TRANSPORTS = ["webrtc", "mse"]
# The MSE run: a browser without WebRTC, so the page plays over the WebSocket (wss://).
NO_WEBRTC = "delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;"


@dataclass
class ProxiedSite:
    site: Site  # site.base is the proxy's https:// address
    proxy: Proxy
    recording: dict

    @property
    def base(self) -> str:
        return self.proxy.base

    def get(self, path: str, headers: dict[str, str] | None = None):
        return http("GET", self.base + path, None,
                    {"Authorization": f"Bearer {self.site.token}", **(headers or {})})


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("https-proxy")
    env = site_env(tmp, PETCAM_TLS="1", PETCAM_TRUSTED_PROXIES="127.0.0.1",
                   PETCAM_ACCESS_LOG="1", DJANGO_ALLOWED_HOSTS="localhost",
                   PETCAM_HSTS_SECONDS="600",
                   PETCAM_LOGIN_ADDRESS_FAILURE_LIMIT=str(ADDRESS_LIMIT))
    username, password = install(env)
    port = pick_free_port()
    proc = start_site(env, port, tmp / "logs")
    try:
        with pytest.MonkeyPatch.context() as patch, running_caddy(port, tmp / "caddy") as proxy:
            # urllib (tests/support's http(), WebRtcClient) verifies against Caddy's root
            patch.setenv("SSL_CERT_FILE", str(proxy.root_ca))
            site = Site(env, proxy.base, get_token(proxy.base, username, password), username,
                        password, proc, tmp / "logs")
            with simulated_camera(site, *SIM_ARGS, "--width", str(WIDTH),
                                  "--height", str(HEIGHT), width=WIDTH):
                yield ProxiedSite(site, proxy, record(site, 3.0))
    finally:
        proc.stop()
        print(f"site log: {proc.log_path}")


def record(site: Site, seconds: float) -> dict:
    headers = {"Authorization": f"Bearer {site.token}", "Content-Type": "application/json"}
    reply = http("POST", site.base + "/api/cameras/default/recording/start/",
                 json.dumps({"name": "through the proxy"}).encode(), headers)
    assert reply.status == 201, reply.body
    time.sleep(seconds)
    reply = http("POST", site.base + "/api/cameras/default/recording/stop/", b"{}", headers)
    assert reply.status == 200, reply.body
    done = reply.json()
    assert done["status"] == "complete" and done["frame_count"] > 30, done
    reply = http("GET", f"{site.base}/api/recordings/{done['id']}/", None, headers)
    assert reply.status == 200, reply.body
    return reply.json()


def log_in(browser, proxied: ProxiedSite, path: str = "/", init_script: str = ""):
    """A context that takes Caddy's throwaway certificate, logged in at `path`; the page,
    and every URL it asked for (requests and WebSockets)."""
    context = browser.new_context(ignore_https_errors=True,
                                  viewport={"width": 1280, "height": 800})
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.on("websocket", lambda ws: urls.append(ws.url))
    page.goto(proxied.base + path)
    page.get_by_label("Username").fill(proxied.site.username)
    page.get_by_label("Password").fill(proxied.site.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(proxied.base + path)
    return context, page, urls


def watch_live(page, transport: str) -> None:
    """Until the live page's <video> shows the camera's picture over `transport`."""
    if transport == "webrtc":
        page.wait_for_function(
            "() => window.petcamPlayer && document.getElementById('video').videoWidth === "
            f"{WIDTH} && document.getElementById('video').currentTime > 0.3", timeout=20_000)
        stats = page.evaluate("petcamPlayer.stats()")
        assert stats["framesDecoded"] > 0 and stats["frameWidth"] == WIDTH, stats
    elif transport == "mse":
        page.wait_for_function(
            "() => window.petcamPlayer && petcamPlayer.transport === 'mse' && petcamPlayer.mse"
            f" && document.getElementById('video').videoWidth === {WIDTH}"
            " && document.getElementById('video').currentTime > 0.3", timeout=20_000)
        expect(page.get_by_test_id("transport")).to_have_text("WebSocket")
    else:
        raise ValueError(f"unknown transport {transport!r}")


# --- the shipped configuration ------------------------------------------------------------


def test_the_shipped_caddyfile_is_valid(tmp_path):
    """deploy/caddy/Caddyfile as an operator installs it (site address, the imported rules)."""
    result = validate(DEPLOY / "Caddyfile", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid configuration" in result.stdout + result.stderr
    assert "not formatted" not in result.stderr  # `caddy fmt` leaves it as it is


# --- HTTPS and its settings -----------------------------------------------------------------


def test_https_only_cookies_hsts_and_the_redirect(proxied):
    reply = http("GET", proxied.base + "/accounts/login/")
    assert reply.status == 200, reply.body
    assert reply.header("Strict-Transport-Security") == "max-age=600"
    assert re.search(r"csrftoken=[^;]+;.*\bSecure\b", reply.header("Set-Cookie") or ""), \
        reply.headers
    # plain http:// is sent to https:// by Caddy, never served
    plain = http("GET", proxied.proxy.http_base + "/accounts/login/")
    assert plain.status in (301, 308), plain.status
    # to Caddy's https_port, which it leaves out of the URL (443 in production)
    assert plain.header("Location") == "https://localhost/accounts/login/"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_chromium_logs_in_and_watches_over_https(proxied, transport):
    with sync_playwright() as pw:
        browser = launch(pw)
        context, page, urls = log_in(browser, proxied,
                                     init_script=NO_WEBRTC if transport == "mse" else "")
        expect(page.get_by_test_id("state")).to_have_text("live", timeout=20_000)
        watch_live(page, transport)
        # live boxes arrive over the detections WebSocket, through the proxy (wss://)
        page.wait_for_function("() => window.petcamOverlay && "
                               "window.petcamOverlay.counts.messages >= 3", timeout=15_000)
        screenshot(page, f"https-live-{transport}")
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["sessionid"]["secure"] and cookies["sessionid"]["httpOnly"], cookies
        assert cookies["csrftoken"]["secure"], cookies
        sockets = [u for u in urls if u.startswith(("ws:", "wss:"))]
        assert sockets and all(u.startswith(f"wss://localhost:{proxied.proxy.https_port}/ws/")
                               for u in sockets), sockets
        # everything the page asked for went through the proxy, over TLS
        assert all(u.startswith((proxied.base + "/", "wss://localhost:", "data:", "blob:"))
                   for u in urls), urls
        browser.close()


def test_chromium_downloads_a_recording_with_range_and_plays_it(proxied):
    rec = proxied.recording
    whole = proxied.get(rec["download_url"])
    assert whole.status == 200 and len(whole.body) == rec["bytes"] > 2048, whole.headers
    with sync_playwright() as pw:
        browser = launch(pw)
        _context, page, _urls = log_in(browser, proxied, f"/recordings/{rec['id']}/")
        piece = page.evaluate("""async (url) => {
            const r = await fetch(url, {headers: {Range: "bytes=100-1123"}});
            return {status: r.status, range: r.headers.get("Content-Range"),
                    bytes: Array.from(new Uint8Array(await r.arrayBuffer()))};
        }""", rec["download_url"])
        assert piece["status"] == 206, piece["status"]
        assert piece["range"] == f"bytes 100-1123/{len(whole.body)}"
        assert bytes(piece["bytes"]) == whole.body[100:1124]
        # the playback page's <video> plays the file: Chromium seeks it with Range requests
        ranged = []
        page.on("response", lambda r: ranged.append(r.status)
                if "/download/" in r.url else None)
        page.reload()
        page.wait_for_function("() => window.petcamPlayback && window.petcamPlayback.ready",
                               timeout=15_000)
        page.evaluate("document.getElementById('video').play()")
        page.wait_for_function("() => document.getElementById('video').currentTime > 0.5",
                               timeout=15_000)
        assert 206 in ranged, ranged
        browser.close()


# --- other clients through the proxy ----------------------------------------------------------


def test_whep_through_the_proxy(proxied):
    async def run() -> None:
        client = WebRtcClient(proxied.base, proxied.site.token, signaling="whep")
        try:
            await client.connect()
            assert client.offer_reply.status == 201
            assert client.location and client.location.startswith("/whep/"), client.location
            frames = await client.wait_frames(20)
            assert any(5 in nal_types(f.data) for f in frames)  # an IDR came through
        finally:
            reply = await client.close()
        assert reply is not None and reply.status in (200, 204), reply

    asyncio.run(run())


def test_hls_plays_through_the_proxy(proxied):
    rec = proxied.recording
    path = f"/api/recordings/{rec['id']}/hls/index.m3u8"
    playlist = proxied.get(path)
    assert playlist.status == 200 and playlist.body.startswith(b"#EXTM3U"), playlist.body
    options = {"headers": f"Authorization: Bearer {proxied.site.token}\r\n"}
    # FFmpeg fetches the init segment and the byte-range segments over https, via Caddy
    with av.open(proxied.base + path, format="hls", options=options, timeout=10) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == rec["frame_count"]


# --- the client's address -------------------------------------------------------------------


def from_127_0_0_2(proxied: ProxiedSite, method: str, path: str, body: bytes,
                   headers: dict[str, str]) -> int:
    """One request through the proxy from source address 127.0.0.2 (not a trusted proxy,
    not the proxy itself); its status."""
    conn = HTTPSConnection("localhost", proxied.proxy.https_port, timeout=10,
                           source_address=("127.0.0.2", 0),
                           context=proxied.proxy.ssl_context())
    try:
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_a_forged_forwarded_for_is_ignored(proxied):
    """A client that writes its own X-Forwarded-For gets no fresh address per request:
    Caddy replaces the header with the address it saw, and petcam counts that one."""
    statuses = []
    for i in range(ADDRESS_LIMIT + 1):
        body = json.dumps({"username": f"guess{i}", "password": "wrong"}).encode()
        statuses.append(from_127_0_0_2(
            proxied, "POST", "/api/auth/token/", body,
            {"Content-Type": "application/json", "X-Forwarded-For": f"{FORGED}{i + 1}"}))
    assert statuses == [400] * ADDRESS_LIMIT + [429], statuses
    # 127.0.0.1 (here: this test's own connections) is somebody else: not refused
    site = proxied.site
    assert get_token(proxied.base, site.username, site.password)
    # the access log names the real client; the made-up ones appear nowhere
    log = site.proc.log()
    lines = [line for line in log.splitlines() if '"POST /api/auth/token/' in line]
    assert sum("127.0.0.2" in line for line in lines) == ADDRESS_LIMIT + 1, lines
    assert FORGED not in log
