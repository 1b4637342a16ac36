"""The app shell's two public files (petcam_site/app_shell.py) answer with the headers a
browser needs; tests/browser/test_browser_app_shell.py installs the portal in Chromium."""

from __future__ import annotations

import json

from django.test import Client

from petcam_site.security_headers import POLICY


def test_service_worker_is_a_script_for_the_whole_site_with_its_config_in_front(db):
    reply = Client().get("/sw.js")
    assert reply.status_code == 200
    assert reply["Content-Type"] == "text/javascript; charset=utf-8"
    assert reply["Cache-Control"] == "no-cache" and reply["Service-Worker-Allowed"] == "/"
    first, rest = reply.content.decode().split("\n", 1)
    assert first.startswith("self.PETCAM_SHELL = ") and first.endswith(";")
    config = json.loads(first[len("self.PETCAM_SHELL = "):-1])
    assert config["staticPrefix"] == "/static/" and len(config["version"]) == 16
    assert "/static/petcam/base.css" in config["precache"]
    assert all(url.startswith("/static/") for url in config["precache"])
    assert 'addEventListener("fetch"' in rest
    # the same version on the next request: browsers keep the installed worker
    assert Client().get("/sw.js").content.decode().split("\n", 1)[0] == first


def test_manifest_is_public_json_and_the_policy_allows_both(db):
    reply = Client().get("/manifest.webmanifest")
    assert reply.status_code == 200 and reply["Content-Type"] == "application/manifest+json"
    assert reply.json()["display"] == "standalone"
    assert "worker-src 'self'" in POLICY and "manifest-src 'self'" in POLICY
    assert Client().post("/sw.js").status_code == 405
