"""The client address behind reverse proxies (petcam_site/proxy_headers.py).

Issue 14: behind `daphne --proxy-headers` the first X-Forwarded-For entry was believed;
a spoofed entry reached /metrics and dodged the login lockout. Now the header counts
only from a proxy in PETCAM_TRUSTED_PROXIES, and the client is the right-most entry that
is not a trusted proxy. The whole ASGI stack is driven here (Django's handler behind the
middleware), as daphne drives it.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application

from petcam_site.proxy_headers import (
    TrustedProxyHeaders,
    client_address,
    parse_networks,
    proxy_ssl_header,
)
from tests.support.roles import make_user

PROXIES = parse_networks("127.0.0.1, ::1, 10.1.0.0/16")
OUTSIDE = "203.0.113.9"


@pytest.mark.parametrize(("peer", "forwarded", "expected"), [
    # not from a trusted proxy: the header is the client's own words
    (OUTSIDE, ["127.0.0.1"], None),
    ("198.51.100.4", ["127.0.0.1", "10.1.2.3"], None),
    # from the proxy: the entry it appended
    ("127.0.0.1", [OUTSIDE], OUTSIDE),
    # a spoofed first entry is skipped: the right-most untrusted one is the client
    ("127.0.0.1", ["127.0.0.1", OUTSIDE], OUTSIDE),
    ("127.0.0.1", ["1.2.3.4", "127.0.0.1", OUTSIDE], OUTSIDE),
    # two trusted hops (a load balancer, then nginx)
    ("127.0.0.1", ["9.9.9.9", OUTSIDE, "10.1.0.5"], OUTSIDE),
    # every hop trusted: a request from inside, the left-most is where it came from
    ("127.0.0.1", ["10.1.0.7", "10.1.0.5"], "10.1.0.7"),
    # IPv6, ports, mapped addresses, brackets
    ("::1", ["2001:db8::7"], "2001:db8::7"),
    ("::ffff:127.0.0.1", ["[2001:db8::7]:4711"], "2001:db8::7"),
    ("127.0.0.1", [f"{OUTSIDE}:4711"], OUTSIDE),
    # garbage from the client's side: the proxy's own address stays
    ("127.0.0.1", ["not-an-address"], None),
    ("127.0.0.1", ["", " "], None),
])
def test_client_address(peer, forwarded, expected):
    assert client_address(peer, forwarded, PROXIES) == expected


def test_nothing_is_trusted_by_default():
    assert client_address("127.0.0.1", [OUTSIDE], parse_networks("")) is None


def test_a_bad_setting_names_the_entry():
    with pytest.raises(ValueError, match="'10.0.0.300'"):
        parse_networks("127.0.0.1, 10.0.0.300")


def test_the_scheme_follows_the_trusted_proxy_only():
    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)

    def run(peer: str):
        scope = {"type": "http", "scheme": "http", "client": [peer, 1234],
                 "headers": [(b"x-forwarded-for", OUTSIDE.encode()),
                             (b"x-forwarded-proto", b"https")]}
        async_to_sync(TrustedProxyHeaders(app, "127.0.0.1"))(scope, None, None)
        return seen["client"][0], seen["scheme"]

    assert run("127.0.0.1") == (OUTSIDE, "https")
    assert (b"x-forwarded-proto", b"https") in seen["headers"]
    assert run("198.51.100.4") == ("198.51.100.4", "http")
    # the client's own claim is gone before Django's SECURE_PROXY_SSL_HEADER could read it
    assert [name for name, _ in seen["headers"]] == [b"x-forwarded-for"]


@pytest.mark.parametrize(("requested", "tls", "trusted", "expected"), [
    (None, False, [], None),  # nothing asked: nothing believed
    (None, True, [], None),  # TLS in daphne itself or an unlisted proxy: not believed
    (None, True, ["127.0.0.1", "::1"], ("HTTP_X_FORWARDED_PROTO", "https")),
    (None, False, ["127.0.0.1"], None),  # a plain-HTTP proxy
    (True, False, ["10.0.0.0/8"], ("HTTP_X_FORWARDED_PROTO", "https")),
    (False, True, ["127.0.0.1"], None),  # turned off on purpose
])
def test_proxy_ssl_header(requested, tls, trusted, expected):
    assert proxy_ssl_header(requested, tls, trusted) == expected


def test_proxy_ssl_header_without_a_trusted_proxy_is_refused():
    with pytest.raises(ValueError, match="needs PETCAM_TRUSTED_PROXIES"):
        proxy_ssl_header(True, True, [])


# --- the whole stack --------------------------------------------------------------------


def call(trusted: str, path: str, peer: str, forwarded: str | None = None,
         method: str = "GET", body: bytes = b"", headers: dict | None = None
         ) -> tuple[int, dict[str, str], bytes]:
    app = TrustedProxyHeaders(get_asgi_application(), trusted)
    raw = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
           (b"content-length", str(len(body)).encode())]
    if forwarded is not None:
        raw.append((b"x-forwarded-for", forwarded.encode()))
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": raw,
             "client": [peer, 40000], "server": ["127.0.0.1", 8000]}

    async def run():
        comm = ApplicationCommunicator(app, scope)
        await comm.send_input({"type": "http.request", "body": body, "more_body": False})
        start = await comm.receive_output(20)
        content = b""
        while True:
            message = await comm.receive_output(20)
            content += message.get("body", b"")
            if not message.get("more_body"):
                break
        return (start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]},
                content)

    return async_to_sync(run)()


@pytest.fixture
def site(transactional_db, settings):
    """Django's ASGI handler runs views on its own connection: no test transaction around
    them (it would hold SQLite's lock)."""
    settings.PETCAM_HEALTH_TIMEOUT = 0.1  # no media worker in-process: fail fast
    settings.PETCAM_METRICS_TIMEOUT = 0.1
    settings.AXES_FAILURE_LIMIT = 3
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_user("cat", "viewers", password="a long enough passphrase")


@pytest.mark.parametrize("spoofed", ["127.0.0.1", "::1", "127.0.0.1, ::1"])
def test_a_spoofed_loopback_entry_does_not_reach_metrics(site, spoofed):
    # through the trusted proxy, which appends the real client
    status, _, body = call("127.0.0.1", "/metrics", "127.0.0.1", f"{spoofed}, {OUTSIDE}")
    assert status == 403 and json.loads(body)["error"] == "forbidden"
    # straight from outside, no proxy involved
    assert call("127.0.0.1", "/metrics", OUTSIDE, spoofed)[0] == 403


def test_a_local_proxy_that_is_not_trusted_is_not_loopback(site):
    """nginx on the same host but PETCAM_TRUSTED_PROXIES unset: every request comes from
    127.0.0.1 with someone else's address in X-Forwarded-For; it is not local."""
    assert call("", "/metrics", "127.0.0.1", OUTSIDE)[0] == 403
    status, _, body = call("", "/health", "127.0.0.1", OUTSIDE)
    assert "cameras" not in json.loads(body)  # the anonymous summary
    status, _, body = call("", "/health", "127.0.0.1")  # the machine itself
    assert "cameras" in json.loads(body)


def test_the_login_lockout_counts_the_real_client(site):
    """Varying the spoofable part of X-Forwarded-For no longer gives fresh tries."""
    def token(password: str, spoofed: str):
        return call("127.0.0.1", "/api/auth/token/", "127.0.0.1", f"{spoofed}, {OUTSIDE}",
                    method="POST",
                    body=json.dumps({"username": "cat", "password": password}).encode())

    statuses = [token("guess", f"192.0.2.{i}")[0] for i in range(1, 5)]
    assert statuses == [400, 400, 429, 429]
    status, headers, body = token("a long enough passphrase", "192.0.2.99")
    assert status == 429 and json.loads(body)["error"] == "too_many_attempts"
    assert int(headers["retry-after"]) > 0
    # the same user through the same proxy from another client is not locked out
    other = call("127.0.0.1", "/api/auth/token/", "127.0.0.1", "198.51.100.20",
                 method="POST", body=json.dumps({"username": "cat",
                                                 "password": "a long enough passphrase"}).encode())
    assert other[0] == 200


def test_only_the_trusted_proxy_makes_a_request_secure(site, settings):
    """HSTS goes out on secure requests only: the trusted proxy's X-Forwarded-Proto makes
    one secure, the same header from anyone else does not (it is dropped)."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 600
    https = {"X-Forwarded-Proto": "https"}
    _, headers, _ = call("127.0.0.1", "/accounts/login/", "127.0.0.1", OUTSIDE, headers=https)
    assert headers["strict-transport-security"] == "max-age=600"
    for peer, forwarded in ((OUTSIDE, None), (OUTSIDE, "127.0.0.1"), ("127.0.0.2", OUTSIDE)):
        _, headers, _ = call("127.0.0.1", "/accounts/login/", peer, forwarded, headers=https)
        assert "strict-transport-security" not in headers, (peer, forwarded)
