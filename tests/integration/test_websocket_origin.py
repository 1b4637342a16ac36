"""A browser's WebSocket is accepted only from the site's own origin, compared whole.

Issue 14 item 9: the Origin check ignored scheme and port, so `http://127.0.0.1:9999`
(any other service on the same machine, which gets the user's cookies too) could open a
socket with the user's session. Now scheme://host:port must be the site's own (the Host
of the handshake, which must be in ALLOWED_HOSTS, over the scheme the site is served
with) or in DJANGO_CSRF_TRUSTED_ORIGINS; apps without an Origin still connect with a token.

One real site with a logged-in browser's cookie, PETCAM_PROXY_SSL_HEADER on (a TLS proxy
on 127.0.0.1 says X-Forwarded-Proto: https; from any other address the header is dropped)
and two trusted origins.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.support.processes import Client, start_install

TRUSTED = "https://cam.example.org,https://*.pets.example"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    install = start_install(tmp_path_factory.mktemp("origin"), PETCAM_PROXY_SSL_HEADER="1",
                            PETCAM_TRUSTED_PROXIES="127.0.0.1",
                            DJANGO_CSRF_TRUSTED_ORIGINS=TRUSTED)
    browser = Client(install.base)
    browser.login(install.username, install.password)
    install.cookie = "; ".join(f"{c.name}={c.value}" for c in browser.jar)
    yield install
    install.site.stop()


def handshake(site, headers: dict[str, str], source: str = "127.0.0.1") -> int | dict:
    """101 -> the first message the socket gets (it is logged in: a status or detections
    event); a refused handshake -> its HTTP status. `source`: the address it comes from."""

    headers = dict(headers)
    # The URI's host is what the Host header says; the socket goes to the site regardless.
    host = headers.pop("Host", f"127.0.0.1:{site.port}")

    async def run() -> int | dict:
        try:
            async with websockets.connect(f"ws://{host}/ws/cameras/default/",
                                          host="127.0.0.1", port=site.port,
                                          local_addr=(source, 0),
                                          additional_headers={"Cookie": site.cookie,
                                                              **headers}) as ws:
                await ws.send(json.dumps({"type": "ping"}))
                while (message := json.loads(await asyncio.wait_for(ws.recv(), 10)))[
                        "type"] not in ("pong", "error"):
                    pass
                return message
        except websockets.InvalidStatus as refused:
            return refused.response.status_code

    return asyncio.run(run())


@pytest.mark.parametrize(("origin", "host"), [
    ("http://127.0.0.1:9999", None),  # the probe's input: another port of the same host
    ("https://127.0.0.1:{port}", None),  # another scheme (no TLS proxy said so)
    ("http://127.0.0.1", None),  # no port: port 80
    ("http://localhost:{port}", None),  # another host name than the one connected to
    ("http://127.0.0.1.evil.example:{port}", None),  # a look-alike host
    ("null", None),  # sandboxed iframes, file:// pages
    ("http://evil.example:{port}", "evil.example:{port}"),  # DNS rebinding: Host not allowed
    ("https://cam.example.org:8443", None),  # a trusted origin, but another port
    ("http://cam.example.org", None),  # ... or scheme
    ("https://evilpets.example", None),  # not a subdomain of pets.example
])
def test_a_foreign_origin_is_refused_before_the_socket_opens(site, origin, host):
    headers = {"Origin": origin.format(port=site.port)}
    if host:
        headers["Host"] = host.format(port=site.port)
    assert handshake(site, headers) == 403


@pytest.mark.parametrize(("origin", "headers"), [
    ("http://127.0.0.1:{port}", {}),  # the site's own page
    ("http://localhost:{port}", {"Host": "localhost:{port}"}),
    ("https://127.0.0.1:{port}", {"X-Forwarded-Proto": "https"}),  # behind the TLS proxy
    ("https://cam.example.org", {}),  # DJANGO_CSRF_TRUSTED_ORIGINS
    ("https://live.pets.example", {}),  # ... with a wildcard
])
def test_the_sites_own_and_trusted_origins_are_accepted(site, origin, headers):
    headers = {k: v.format(port=site.port) for k, v in {"Origin": origin, **headers}.items()}
    assert handshake(site, headers) == {"type": "pong"}


def test_apps_send_no_origin_and_still_connect(site):
    assert handshake(site, {}) == {"type": "pong"}


def test_only_the_trusted_proxy_may_say_https(site):
    """From 127.0.0.2 (not the trusted proxy) X-Forwarded-Proto is dropped: the socket is
    plain ws://, and an https origin is foreign."""
    headers = {"Origin": f"https://127.0.0.1:{site.port}", "X-Forwarded-Proto": "https"}
    assert handshake(site, headers, source="127.0.0.2") == 403
    assert handshake(site, {"Origin": f"http://127.0.0.1:{site.port}"},
                     source="127.0.0.2") == {"type": "pong"}
