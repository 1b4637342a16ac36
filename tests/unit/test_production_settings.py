"""Secure defaults: DEBUG off, no start on a known secret key, a stored key for the embedded
default, TLS-only cookies + HSTS on request (X-Forwarded-Proto believed only behind a
trusted proxy), security headers on every response.

Settings are read once per process, so each configuration runs `manage.py` in its own
subprocess (started together: they are independent); headers are checked in-process.
"""

from __future__ import annotations

import json
import secrets
import stat
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from petcam_site import secret_key, security_headers, sqlite_file
from petcam_site.secret_key import DEV_SECRET_KEY
from tests.support.processes import ROOT, site_env

PRINT_SETTINGS = ("import json; from django.conf import settings as s; print(json.dumps({"
                  "'debug': s.DEBUG, 'key': s.SECRET_KEY, "
                  "'session_secure': s.SESSION_COOKIE_SECURE, 'csrf_secure': s.CSRF_COOKIE_SECURE,"
                  " 'hsts': s.SECURE_HSTS_SECONDS, 'hosts': s.ALLOWED_HOSTS,"
                  " 'origins': s.CSRF_TRUSTED_ORIGINS,"
                  " 'proxy_ssl': getattr(s, 'SECURE_PROXY_SSL_HEADER', None)}))")


def start(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def settings_of(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_production_configurations(tmp_path):
    strong = secrets.token_urlsafe(50)
    runs = {
        # DEBUG off (the default) with the development key: refused, and told why and how
        "dev_key": start(site_env(tmp_path / "a", DJANGO_SECRET_KEY=DEV_SECRET_KEY),
                         "check", "--deploy"),
        # development: the same key is accepted with PETCAM_DEBUG=1
        "dev_debug": start(site_env(tmp_path / "c", DJANGO_SECRET_KEY=DEV_SECRET_KEY,
                                    PETCAM_DEBUG="1"), "shell", "-c", PRINT_SETTINGS),
        # the embedded default (what `make run` and the tests do): no key given
        "embedded": start(site_env(tmp_path / "d"), "shell", "-c", PRINT_SETTINGS),
        # production behind TLS: Django's security deployment checks find nothing to warn about
        "tls": start(site_env(tmp_path / "e", DJANGO_SECRET_KEY=strong, PETCAM_TLS="1",
                              PETCAM_SSL_REDIRECT="1", PETCAM_HSTS_INCLUDE_SUBDOMAINS="1",
                              PETCAM_HSTS_PRELOAD="1", DJANGO_ALLOWED_HOSTS="cam.example.org"),
                     "check", "--deploy", "--tag", "security", "--fail-level", "WARNING"),
        # PETCAM_TLS without a proxy (TLS elsewhere): nobody's X-Forwarded-Proto counts
        "tls_no_proxy": start(site_env(tmp_path / "f", DJANGO_SECRET_KEY=strong,
                                       PETCAM_TLS="1"), "shell", "-c", PRINT_SETTINGS),
        # behind the HTTPS proxy (deploy/caddy/): hosts and origins from the environment
        "behind_proxy": start(site_env(tmp_path / "g", DJANGO_SECRET_KEY=strong, PETCAM_TLS="1",
                                       PETCAM_TRUSTED_PROXIES="127.0.0.1,::1",
                                       PETCAM_HSTS_SECONDS="600",
                                       DJANGO_ALLOWED_HOSTS="cam.example.org, petcam.lan",
                                       DJANGO_CSRF_TRUSTED_ORIGINS="https://cam.example.org:8443"),
                              "shell", "-c", PRINT_SETTINGS),
        # asked to believe X-Forwarded-Proto with no trusted proxy: refused, and told why
        "ssl_header_no_proxy": start(site_env(tmp_path / "h", DJANGO_SECRET_KEY=strong,
                                              PETCAM_TLS="1", PETCAM_PROXY_SSL_HEADER="1"),
                                     "check"),
    }
    results = {name: finish(proc) for name, proc in runs.items()}

    code, out, err = results["dev_key"]
    assert code != 0, (out, err)
    message = err.strip().splitlines()[-1]  # the last line an operator sees
    assert "Refusing to start: DEBUG is off and the secret key is insecure" in message, err
    assert "published development key" in message and "DJANGO_SECRET_KEY" in message

    code, out, err = results["dev_debug"]
    assert code == 0, err
    assert settings_of(out)["debug"] is True

    code, out, err = results["embedded"]
    assert code == 0, err
    embedded = settings_of(out)
    assert embedded["debug"] is False  # DEBUG is off unless asked for
    key_file = tmp_path / "d" / "var" / "secret_key"
    assert key_file.read_text().strip() == embedded["key"] and len(embedded["key"]) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # the SQLite file too (issue 14: it was 0644, readable by anyone on the machine)
    assert stat.S_IMODE((key_file.parent / "petcam.sqlite3").stat().st_mode) == 0o600
    assert not (embedded["session_secure"] or embedded["csrf_secure"] or embedded["hsts"])
    # the next process of the same install signs with the same key (sessions survive)
    assert secret_key.load(key_file.parent) == embedded["key"]

    code, out, err = results["tls"]
    assert code == 0, out + err

    code, out, err = results["tls_no_proxy"]
    assert code == 0, err
    assert settings_of(out) | {"key": None} == {
        "debug": False, "key": None, "session_secure": True, "csrf_secure": True,
        "hsts": 31_536_000, "hosts": ["127.0.0.1", "localhost", "[::1]"], "origins": [],
        "proxy_ssl": None}

    code, out, err = results["behind_proxy"]
    assert code == 0, err
    assert settings_of(out) | {"key": None} == {
        "debug": False, "key": None, "session_secure": True, "csrf_secure": True,
        "hsts": 600, "hosts": ["cam.example.org", "petcam.lan"],
        "origins": ["https://cam.example.org:8443"],
        "proxy_ssl": ["HTTP_X_FORWARDED_PROTO", "https"]}

    code, out, err = results["ssl_header_no_proxy"]
    assert code != 0, out
    assert "PETCAM_PROXY_SSL_HEADER=1 needs PETCAM_TRUSTED_PROXIES" in err, err


@pytest.mark.django_db
def test_security_headers_on_pages_and_api():
    client = Client()
    for path in ("/accounts/login/", "/api/cameras/", "/"):
        response = client.get(path)
        assert response["X-Content-Type-Options"] == "nosniff", path
        assert response["Referrer-Policy"] == "same-origin", path
        assert response["X-Frame-Options"] == "DENY", path
        assert response["Content-Security-Policy"] == security_headers.POLICY, path
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"], path
    login = client.get("/accounts/login/")
    assert login.cookies["csrftoken"]["samesite"] == "Lax"


@pytest.mark.parametrize("key, reason", [
    (DEV_SECRET_KEY, "published development key"),
    ("django-insecure-" + "x" * 50, "'insecure' placeholder"),
    ("hunter2", "shorter than 32 characters"),
    ("change-me-to-50-random-characters", "placeholder from an example file"),
    ("", "shorter than 32 characters"),
])
def test_insecure_keys_are_refused_without_debug(key, reason):
    with pytest.raises(ImproperlyConfigured, match=reason):
        secret_key.refuse_insecure(key, debug=False)
    secret_key.refuse_insecure(key, debug=True)  # development: allowed
    secret_key.refuse_insecure(secrets.token_urlsafe(50), debug=False)


def test_two_processes_creating_the_key_at_once_agree(tmp_path, monkeypatch):
    """The file is linked into place: a process that loses the race reads the winner's key."""
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    first = secret_key.load(tmp_path)
    (tmp_path / "secret_key").write_text(first + "\n")  # as the winner left it
    assert secret_key._create(tmp_path / "secret_key") == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]  # no temp files left


def test_the_sqlite_file_is_owner_only(tmp_path):
    """Made 0600 before SQLite would make it 0644; an existing one (and its journal) is
    tightened at the next start; SQLite then writes into it as into any database."""
    import sqlite3

    fresh = tmp_path / "new" / "petcam.sqlite3"
    sqlite_file.secure(fresh)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600 and fresh.stat().st_size == 0
    with sqlite3.connect(fresh) as db:
        db.execute("CREATE TABLE t (x)")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600 and fresh.stat().st_size > 0

    old = tmp_path / "old.sqlite3"
    for path in (old, tmp_path / "old.sqlite3-wal"):
        path.write_bytes(b"")
        path.chmod(0o644)
    sqlite_file.secure(old)
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "old.sqlite3-wal").stat().st_mode) == 0o600
    sqlite_file.secure(":memory:")  # nothing to do, no file made
    assert not (ROOT / ":memory:").exists()
