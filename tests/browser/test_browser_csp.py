"""Every page under the site's Content-Security-Policy in a real headless Chromium.

On the shared two-camera site: the login page, the camera grid, a live page (video,
detection socket, activity chart, record button), the recordings list and the playback
page of a recording made here, the account page, Django's admin (index, change lists,
change and add forms whose widgets are made by the admin's scripts), DRF's browsable
API, the password change page, the 403 pages (no role; expired CSRF token), the HTML and
JSON 404s and the login page after logging out.
Each page must load with no CSP violation (the `securitypolicyviolation` event and
Chromium's console report), no JavaScript error and no script or stylesheet that failed
to load, and its own scripts must have run. Every document carries the policy, with no
'unsafe-inline' or 'unsafe-eval' for scripts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Response,
    expect,
    sync_playwright,
)

from petcam_site.security_headers import POLICY
from tests.support.browser import launch
from tests.support.processes import manage
from tests.support.two_camera_site import SIZES, TwoCameraSite

pytestmark = pytest.mark.browser

# Runs before any page script: every violation goes to the test through a binding
# (Playwright's bindings and init scripts are not subject to the page's policy).
REPORT_VIOLATIONS_JS = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.petcamTestCspViolation({directive: e.effectiveDirective, blocked: e.blockedURI,
                                 source: e.sourceFile, line: e.lineNumber, sample: e.sample});
}, true);
"""
# Chromium's own console lines for refused code or styles (CSP, wrong MIME type).
REFUSALS = ("Content Security Policy", "Content-Security-Policy", "Refused to",
            "Failed to load module script")
CODE = ("script", "stylesheet")  # subresources a page cannot work without
SETTLE_MS = 700  # late violations (timers, sockets) after a page looks ready
# wait_for_function gets functions ("() => ..."): Playwright evals a bare expression on
# every poll, which the policy refuses (no 'unsafe-eval'); a function is evaluated once.


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in filter(str.strip, policy.split(";")):
        name, *values = part.split()
        parsed[name.lower()] = values
    return parsed


@dataclass
class Watch:
    """What went wrong on a browser context's pages, and the policy each document had."""

    problems: list[str] = field(default_factory=list)
    documents: list[Response] = field(default_factory=list)
    violations: int = 0

    def attach(self, context: BrowserContext) -> None:
        context.expose_function("petcamTestCspViolation", self._violation)
        context.add_init_script(REPORT_VIOLATIONS_JS)

    def _violation(self, report: dict) -> None:
        self.violations += 1
        self.problems.append(f"CSP violation: {report}")

    def page(self, context: BrowserContext) -> Page:
        page = context.new_page()
        page.on("console", lambda m: self._console(page, m))
        page.on("pageerror", lambda e: self.problems.append(f"{page.url}: JS error: {e}"))
        page.on("response", self._response)
        page.on("requestfailed", lambda r: r.resource_type in CODE and self.problems.append(
            f"{r.url} ({r.resource_type}) failed: {r.failure}"))
        return page

    def _console(self, page: Page, message: ConsoleMessage) -> None:
        if any(text in message.text for text in REFUSALS):
            self.problems.append(f"{page.url}: console {message.type}: {message.text}")

    def _response(self, response: Response) -> None:
        kind = response.request.resource_type
        if kind == "document":
            self.documents.append(response)
        elif kind in CODE and response.status >= 400:
            self.problems.append(f"{response.url} ({kind}): HTTP {response.status}")

    def check(self, page: Page, what: str) -> None:
        """The page settled with nothing wrong, and every document so far had the policy."""
        page.wait_for_timeout(SETTLE_MS)
        problems, self.problems = self.problems, []
        assert not problems, f"{what}:\n" + "\n".join(problems)
        documents, self.documents = self.documents, []
        assert documents, f"{what}: no document loaded"
        for response in documents:
            policy = response.header_value("content-security-policy")
            assert policy == POLICY, (what, response.url, policy)
            parsed = directives(policy)
            assert parsed["script-src"] == ["'self'"], (response.url, policy)
            for source in ("'unsafe-inline'", "'unsafe-eval'"):
                assert source not in parsed["script-src"] + parsed["default-src"], policy
            assert parsed["frame-ancestors"] == ["'none'"], policy


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = launch(pw)
        yield browser
        browser.close()


@pytest.fixture
def site(two_camera_site: TwoCameraSite) -> TwoCameraSite:
    two_camera_site.wait_both_live()
    two_camera_site.stop_recordings()
    return two_camera_site


@pytest.fixture
def recording(site: TwoCameraSite) -> dict:
    """A few seconds of the default camera, made here (the shared site has others)."""
    started = site.call("POST", "/api/cameras/default/recording/start/",
                        {"name": f"csp {uuid.uuid4().hex[:6]}"})
    assert started.status == 201, started
    time.sleep(3)
    stopped = site.call("POST", "/api/cameras/default/recording/stop/")
    assert stopped.status == 200, stopped
    rec = site.call("GET", f"/api/recordings/{started.json()['id']}/").json()
    assert rec["status"] == "complete", rec
    return rec


def open_context(browser: Browser, watch: Watch) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watch.attach(context)
    return context


def log_in(page: Page, base: str, username: str, password: str, then: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + then)


def test_the_detector_sees_a_violation(site, browser):
    """An inline script is refused and reported: the checks below can fail."""
    watch = Watch()
    context = open_context(browser, watch)
    page = watch.page(context)
    page.goto(site.base + "/accounts/login/")
    page.evaluate("""() => {
      const s = document.createElement("script");
      s.textContent = "window.injectedRan = true";
      document.body.append(s);
      document.body.insertAdjacentHTML("beforeend", '<p style="color:red">styled</p>');
    }""")
    page.wait_for_timeout(SETTLE_MS)
    assert page.evaluate("window.injectedRan") is None
    assert watch.violations >= 2, watch.problems
    assert any("script-src" in p for p in watch.problems), watch.problems
    assert any("style-src" in p for p in watch.problems), watch.problems
    with pytest.raises(AssertionError, match="CSP violation"):
        watch.check(page, "login page with injected code")
    context.close()


def test_every_page_as_superuser(site, browser, recording):
    base = site.base
    watch = Watch()
    context = open_context(browser, watch)
    page = watch.page(context)

    def visit(path: str, ready: Callable[[], None], what: str) -> None:
        page.goto(base + path)
        ready()
        watch.check(page, what)

    # Login, then the grid: both cameras play, each tile its own player.
    page.goto(base + "/accounts/login/")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    watch.check(page, "login page")
    log_in(page, base, site.username, site.password, "/")
    for slug, (width, _) in SIZES.items():
        page.wait_for_function(
            f"() => document.querySelector('[data-testid=tile-{slug}] video').videoWidth"
            f" === {width}",
            timeout=30_000)
    watch.check(page, "camera grid")

    def live_page() -> None:
        page.wait_for_function("() => document.getElementById('video').videoWidth === 320",
                               timeout=30_000)
        # the detection socket (connect-src 'self' covers ws: of the same host)
        page.wait_for_function(
            "() => petcamOverlay.socket === 'open' && petcamOverlay.counts.messages > 0",
            timeout=15_000)
        page.wait_for_function("() => petcamActivity.fetchedAt !== null", timeout=15_000)
        expect(page.get_by_test_id("state")).to_have_text("live", timeout=10_000)
        expect(page.get_by_test_id("record-button")).to_have_text("● Record")
    visit("/?camera=default", live_page, "live page")

    def recordings_page() -> None:
        card = page.locator(f"[data-testid=recording-card][data-id='{recording['id']}']")
        expect(card).to_be_visible(timeout=10_000)
        page.wait_for_function(
            f"() => document.querySelector(\"[data-id='{recording['id']}'] img\")"
            ".naturalWidth > 0",
            timeout=10_000)
        card.get_by_test_id("recording-play").click()
        page.evaluate("(() => { const v = document.querySelector('[data-testid=player-video]');"
                      " v.muted = true; return v.play(); })()")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=player-video]').currentTime > 0.3",
            timeout=10_000)
    visit("/recordings/", recordings_page, "recordings page")

    def playback_page() -> None:
        page.wait_for_function("() => window.petcamPlayback && window.petcamPlayback.ready",
                               timeout=15_000)
        expect(page.get_by_test_id("playback-title")).to_have_text(recording["name"])
        timeline = page.get_by_test_id("timeline")
        timeline.hover()  # the scrub preview: a sprite set as a background image
        page.wait_for_function("() => window.petcamPlayback.thumbnails !== null",
                               timeout=10_000)
        expect(page.get_by_test_id("scrub-preview")).to_be_visible()
        page.wait_for_function("() => window.petcamPlayback.dayStrip !== null", timeout=10_000)
        expect(page.locator(f"[data-testid=day-strip-segment][data-id='{recording['id']}']")
               ).to_have_attribute("aria-current", "true")
    visit(f"/recordings/{recording['id']}/", playback_page, "playback page")

    def schedules_page() -> None:  # its script fills the form and says it in words
        page.locator("[data-testid=schedule-add][data-camera=default]").click()
        expect(page.get_by_test_id("schedule-preview")).to_contain_text("Record continuously")
    visit("/recordings/schedules/", schedules_page, "recording schedules page")

    visit("/account/", lambda: expect(page.get_by_test_id("account-user")).to_have_text(
        site.username), "account page")
    # revoking a token asks first, on a page of its own
    page.get_by_test_id("token-name").fill("csp check")
    page.get_by_test_id("token-create").click()
    expect(page.get_by_test_id("new-token")).to_be_visible()
    # the new key is copied with one click (account.js)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page.get_by_test_id("token-copy").click()
    expect(page.get_by_test_id("token-copy")).to_have_text("Copied")
    key = page.locator("#new-token-key").inner_text().strip()
    assert len(key) > 20 and page.evaluate("() => navigator.clipboard.readText()") == key
    watch.check(page, "account page with a new token")
    page.get_by_test_id("token-row").filter(has_text="csp check").get_by_test_id(
        "token-revoke").click()
    expect(page.get_by_test_id("revoke-confirm")).to_be_visible()
    watch.check(page, "revoke confirmation")
    page.get_by_test_id("revoke-confirm-button").click()
    expect(page.get_by_test_id("token-row").filter(has_text="csp check")).to_have_count(0)
    watch.check(page, "account page after revoking")
    visit("/account/password/", lambda: expect(page.get_by_test_id("password-change"))
          .to_be_visible(), "password change page")

    # Django's admin: its widgets are made by its own scripts.
    visit("/admin/", lambda: expect(page.locator("#content-main")).to_be_visible(),
          "admin index")
    visit("/admin/recordings/recording/", lambda: expect(
        page.locator("#result_list")).to_be_visible(), "admin recordings")
    visit(f"/admin/recordings/recording/{recording['id']}/change/", lambda: expect(
        page.locator("video.recording-media")).to_be_visible(), "admin recording")
    visit("/admin/streaming/camera/", lambda: expect(
        page.locator("#result_list")).to_be_visible(), "admin cameras")

    def camera_add() -> None:  # prepopulate.js fills the slug; the form is not saved
        page.locator("#id_name").press_sequentially("Back yard")
        expect(page.locator("#id_slug")).to_have_value("back-yard")
    visit("/admin/streaming/camera/add/", camera_add, "admin camera add form")
    visit("/admin/auth/user/", lambda: expect(page.locator("#result_list")).to_be_visible(),
          "admin users")

    def user_change() -> None:  # SelectFilter2.js and DateTimeShortcuts.js widgets
        expect(page.locator(".selector").first).to_be_visible()
        expect(page.locator(".datetimeshortcuts").first).to_be_visible()
        page.locator(".datetimeshortcuts a").first.click()  # "Today"
        expect(page.locator(".add-row a").first).to_be_visible()  # inlines.js
    page.goto(base + "/admin/auth/user/")
    page.get_by_role("link", name=site.username, exact=True).click()
    user_change()
    watch.check(page, "admin user form")
    visit("/admin/auth/group/add/", lambda: expect(page.locator(".selector")).to_be_visible(),
          "admin group add form")

    # The REST API as a browser sees it: DRF's browsable API pages.
    for path in ("/api/cameras/", "/api/recordings/", f"/api/recordings/{recording['id']}/"):
        visit(path, lambda: expect(page.locator(".response-info")).to_be_visible(), path)

    # Our HTML 404 for pages (a page, a recording that does not exist); JSON for the API.
    for path in ("/no-such-page/", "/recordings/999999999/"):
        response = page.goto(base + path)
        assert response.status == 404, path
        expect(page.get_by_test_id("not-found")).to_be_visible()
        watch.check(page, f"404 {path}")
    response = page.goto(base + "/api/no-such-thing/")
    assert response.status == 404 and response.json()["error"] == "not_found"
    watch.check(page, "JSON 404")

    # Log out through the header's form: the login page with a note.
    page.goto(base + "/account/")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(base + "/accounts/login/")
    expect(page.get_by_test_id("messages")).to_have_text("You are logged out.")
    watch.check(page, "logged out")
    context.close()


def test_forbidden_pages(site, browser):
    """403 for an account without a role, and the form-expired page (CSRF failure)."""
    username, password = f"csp-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    manage(site.env, "shell", "-c", "from django.contrib.auth.models import User;"
           f"User.objects.create_user({username!r}, password={password!r})")
    watch = Watch()
    context = open_context(browser, watch)
    page = watch.page(context)
    page.goto(site.base + "/recordings/")
    log_in(page, site.base, username, password, "/recordings/")
    expect(page.get_by_test_id("forbidden")).to_be_visible()
    watch.check(page, "403 without a role")

    context.clear_cookies()  # logged out: the login form shows
    page.goto(site.base + "/accounts/login/")
    context.clear_cookies()  # and now without its CSRF cookie: the POST is refused
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("csrf-failed")).to_be_visible()
    watch.check(page, "403 CSRF failure")
    context.close()
