"""The portal installs as an app (petcam_site/app_shell.py), in a real Chromium, on the shared
two-camera site: every page links a valid web app manifest (name, icons that exist at
their stated size, start_url, display standalone) that Chromium parses without errors;
the service worker at /sw.js registers for the whole site and activates; and after
watching live video and browsing pages and the API, its caches hold static files only
(the shell), never a page, an API answer or a recording, and only static files are
served from it.
"""

from __future__ import annotations

import struct

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import launch
from tests.support.processes import wait_for

pytestmark = pytest.mark.browser

CACHED_URLS = """async () => {
  const urls = [];
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) urls.push(request.url);
  }
  return urls;
}"""


@pytest.fixture(scope="module")
def site(two_camera_site):
    two_camera_site.wait_both_live()
    return two_camera_site


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    return struct.unpack(">II", data[16:24])


def test_the_portal_installs_and_its_worker_caches_only_the_shell(site):
    with sync_playwright() as pw:
        browser = launch(pw)
        context = browser.new_context()
        page = context.new_page()
        from_worker: list[str] = []
        page.on("response", lambda r: r.from_service_worker and from_worker.append(r.url))
        page.goto(site.base + "/accounts/login/?next=/%3Fcamera%3Ddefault")
        page.get_by_label("Username").fill(site.username)
        page.get_by_label("Password").fill(site.password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(site.base + "/?camera=default")

        # the manifest: linked, parsed by Chromium without errors, installable fields
        href = page.eval_on_selector('link[rel="manifest"]', "l => l.href")
        assert href == site.base + "/manifest.webmanifest"
        cdp = context.new_cdp_session(page)
        parsed = cdp.send("Page.getAppManifest")
        assert parsed["url"] == href and parsed["errors"] == [], parsed
        reply = page.request.get(href)
        assert reply.headers["content-type"] == "application/manifest+json"
        manifest = reply.json()
        assert manifest["name"] == "petcam" and manifest["short_name"] == "petcam"
        assert manifest["start_url"] == "/" and manifest["scope"] == "/"
        assert manifest["display"] == "standalone"
        sizes = set()
        for icon in manifest["icons"]:
            got = page.request.get(site.base + icon["src"])
            assert got.status == 200 and got.headers["content-type"] == icon["type"], icon
            if icon["type"] == "image/png":
                width, height = png_size(got.body())
                assert icon["sizes"] == f"{width}x{height}", icon
                sizes.add(width)
        assert {192, 512} <= sizes, manifest["icons"]

        # the service worker: registered for the whole site, active, controlling the page
        worker = page.evaluate("""async () => {
          const reg = await navigator.serviceWorker.ready;
          return {scope: reg.scope, state: reg.active.state, script: reg.active.scriptURL};
        }""")
        assert worker == {"scope": site.base + "/", "state": "activated",
                          "script": site.base + "/sw.js"}, worker
        wait_for(lambda: page.evaluate("!!navigator.serviceWorker.controller"), 10,
                 "the worker to control the page")

        # watch live video, browse pages, call the API, open a recording, come back
        wait_for(lambda: (page.evaluate("petcamPlayer.stats()") or {}).get("framesDecoded"),
                 20, "live video")
        recordings = page.evaluate("fetch('/api/recordings/?limit=1').then(r => r.json())")
        page.evaluate("fetch('/api/cameras/').then(r => r.json())")
        page.evaluate("fetch('/api/webrtc/ice-servers/').then(r => r.json())")
        if recordings["results"]:
            page.evaluate("u => fetch(u, {headers: {Range: 'bytes=0-999'}}).then(r => r.status)",
                          recordings["results"][0]["download_url"])
        page.goto(site.base + "/recordings/")
        expect(page.get_by_role("heading").first).to_be_visible()
        page.goto(site.base + "/?camera=default")
        wait_for(lambda: (page.evaluate("petcamPlayer.stats()") or {}).get("framesDecoded"),
                 20, "live video again")

        cached = page.evaluate(CACHED_URLS)
        static = site.base + "/static/"
        assert cached and all(u.startswith(static) for u in cached), cached
        # the shell is there: the precached files and the live page's own, cached on use
        for path in ("petcam/base.css", "petcam/icon-512.png", "streaming/live/player.js"):
            assert static + path in cached, (path, cached)
        # and the second visit took them from the worker; nothing else came from it
        assert static + "streaming/live/player.js" in from_worker, from_worker
        assert from_worker and all(u.startswith(static) for u in from_worker), from_worker
        browser.close()
