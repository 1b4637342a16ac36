"""The README's quick tour, walked by an owner in a real headless Chromium.

On one single-camera site (as `make run` starts it), once on a laptop (1366x768) and
once on a phone (390x844, touch): log in, watch the live picture, record a few seconds
and stop (the "Saved" note links to the recording), find it on the recordings page
under its human title, play it (the detection boxes drawn), and share with family: add
a viewer account in the admin (group `viewers`), then log in as that person in a fresh
browser: they see the live video but no record button.

Each step leaves a numbered screenshot in test-artifacts/tour/ (desktop-01-login.png
... phone-07-family-watching.png). With PETCAM_TOUR_SCREENSHOTS=docs/tour the same steps
are also saved there small (JPEG, the visible screen only) for the README:

    PETCAM_TOUR_SCREENSHOTS=docs/tour .venv/bin/python -m pytest -q tests/browser/test_quick_tour.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from tests.support.browser import ARTIFACTS, launch
from tests.support.processes import (
    ROOT,
    Client,
    start_install,
    start_simulator,
    stop_install,
    wait_for,
)

pytestmark = pytest.mark.browser

DEVICES = {
    "desktop": {"viewport": {"width": 1366, "height": 768}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
              "device_scale_factor": 2},
}
# The family member each run adds (one site for both runs: the names differ).
FAMILY = {"desktop": "nana", "phone": "grandpa"}
FAMILY_PASSWORD = "Whiskers-and-tea-42"
WIDTH = 320  # the simulator's picture


class Tour:
    """Numbered screenshots of one device's walk."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.artifacts = ARTIFACTS / "tour"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        docs = os.environ.get("PETCAM_TOUR_SCREENSHOTS")
        self.docs = (ROOT / docs) if docs else None
        if self.docs:
            self.docs.mkdir(parents=True, exist_ok=True)

    def shot(self, page: Page, name: str) -> Path:
        path = self.artifacts / f"{self.device}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if self.docs:  # small for the README: what is on screen, at CSS pixels, JPEG
            page.screenshot(path=str(self.docs / f"{self.device}-{name}.jpg"), type="jpeg",
                            quality=70, scale="css", animations="disabled")
        return path


def press(locator: Locator, touch: bool) -> None:
    """A tap on a phone, a click on a laptop."""
    if touch:
        locator.tap()
    else:
        locator.click()


def playing(selector: str) -> str:
    """JS predicate (a function: the page's CSP refuses eval): the <video> at `selector`
    shows the camera's frames and its clock moves."""
    return (f"() => {{ const v = document.querySelector({selector!r}); "
            f"return !!v && v.videoWidth === {WIDTH} && v.currentTime > 0.3; }}")


# The elements that reach past the right edge of the screen (deepest first), to name the
# culprit when the page scrolls sideways.
WIDER_THAN_SCREEN_JS = """() => [...document.querySelectorAll("body *")].filter((e) => {
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.right > document.documentElement.clientWidth + 0.5;
}).reverse().slice(0, 5).map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
  + "." + [...e.classList].join(".") + " " + Math.round(e.getBoundingClientRect().right))"""


def fits_the_screen(page: Page, width: int) -> None:
    """Nothing scrolls sideways."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width, page.evaluate(
        WIDER_THAN_SCREEN_JS)


def log_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quick-tour")
    install = start_install(tmp)
    sim = None
    try:
        sim = start_simulator(install.env, tmp / "logs", "--gop", "15")
        client = Client(install.base)
        client.login(install.username, install.password)
        wait_for(lambda: client.get_json("/api/cameras/default/")[1].get("state") == "live",
                 30, "the camera to go live", interval=0.2)
        yield install
    finally:
        stop_install(install, sim)


@pytest.fixture(scope="module")
def browser():
    """One Chromium for both walks (each has its own contexts: no shared login)."""
    with sync_playwright() as pw:
        chromium = launch(pw)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.mark.parametrize("device", list(DEVICES))
def test_quick_tour(site, browser, device):
    base, touch, tour = site.base, DEVICES[device].get("has_touch", False), Tour(device)
    width = DEVICES[device]["viewport"]["width"]
    contexts = [browser.new_context(**DEVICES[device]) for _ in range(2)]  # owner, family
    try:
        page = contexts[0].new_page()

        # 1. Log in: the site asks first.
        page.goto(base + "/")
        page.wait_for_url(re.compile(r"/accounts/login/"))
        page.get_by_label("Username").fill(site.username)
        page.get_by_label("Password").fill(site.password)
        tour.shot(page, "01-login")
        press(page.get_by_role("button", name="Log in"), touch)
        page.wait_for_url(base + "/")

        # 2. Watch: the live picture plays, nothing wider than the screen.
        expect(page.get_by_test_id("state")).to_have_text("live", timeout=20_000)
        page.wait_for_function(playing("[data-testid=video]"), timeout=20_000)
        expect(page.get_by_test_id("player-message")).to_be_hidden()
        fits_the_screen(page, width)
        tour.shot(page, "02-watch")

        # 3. Record a few seconds and stop: a note says it was saved, with its link.
        button = page.get_by_test_id("record-button")
        expect(button).to_have_text("● Record")
        press(button, touch)
        expect(button).to_have_text("■ Stop", timeout=10_000)
        page.wait_for_function(
            "() => { const t = document.querySelector('[data-testid=record-timer]')"
            ".textContent.split(':').map(Number); return t[t.length - 1] >= 3; }",
            timeout=15_000)
        press(button, touch)
        expect(button).to_have_text("● Record", timeout=15_000)
        expect(page.get_by_test_id("record-saved")).to_be_visible()
        link = page.get_by_test_id("record-saved-link")
        # a human title: what was seen, the day and time, how long (not a file name)
        expect(link).to_have_text(re.compile(r"^(Cat|Recording) · \w+ \d\d:\d\d · \d+ s$"))
        title = link.text_content()
        rec_id = re.fullmatch(r"/recordings/(\d+)/", link.get_attribute("href")).group(1)
        tour.shot(page, "03-record")

        # 4. Find it on the recordings page, under the same title.
        press(page.get_by_role("link", name="Recordings"), touch)
        page.wait_for_url(base + "/recordings/")
        card = page.locator(f"[data-testid=recording-card][data-id='{rec_id}']")
        expect(card).to_be_visible(timeout=10_000)
        expect(card.get_by_test_id("recording-name")).to_have_text(title)
        page.wait_for_function(
            f"() => {{ const i = document.querySelector("
            f"\"[data-id='{rec_id}'] [data-testid=recording-thumbnail]\");"
            f" return !!i && i.complete && i.naturalWidth > 0; }}", timeout=10_000)
        fits_the_screen(page, width)
        tour.shot(page, "04-find")

        # 5. Play it: its own page, the boxes drawn where the pet was seen.
        press(card.get_by_test_id("recording-open"), touch)
        page.wait_for_url(f"{base}/recordings/{rec_id}/")
        expect(page.get_by_test_id("playback-title")).to_have_text(title)
        page.wait_for_function("() => window.petcamPlayback && window.petcamPlayback.ready",
                               timeout=15_000)
        expect(page.get_by_test_id("timeline-row").first).to_be_visible()
        page.evaluate("document.querySelector('[data-testid=playback-video]').play()")
        page.wait_for_function(
            "() => { const v = document.querySelector('[data-testid=playback-video]');"
            " return v.currentTime > 1 && window.petcamPlayback.boxes.length > 0; }",
            timeout=15_000)
        page.evaluate("document.querySelector('[data-testid=playback-video]').pause()")
        expect(page.get_by_test_id("playback-boxes")).to_have_text(re.compile(r"^\d+ box"))
        tour.shot(page, "05-play")

        # 6. Share with family: the admin adds a viewer (a name and a password, then
        # the group "viewers")...
        family = FAMILY[device]
        page.goto(base + "/admin/auth/user/add/")
        page.locator("#id_username").fill(family)
        page.locator("#id_password1").fill(FAMILY_PASSWORD)
        page.locator("#id_password2").fill(FAMILY_PASSWORD)
        press(page.locator("input[name=_save]"), touch)
        page.wait_for_url(re.compile(r"/admin/auth/user/\d+/change/"))
        page.locator("#id_groups_from").select_option(label="viewers")
        press(page.locator("#id_groups_add"), touch)
        expect(page.locator("#id_groups_to option")).to_have_text(["viewers"])
        page.locator("#id_groups_to").scroll_into_view_if_needed()
        tour.shot(page, "06-family")
        press(page.locator("input[name=_save]"), touch)
        page.wait_for_url(base + "/admin/auth/user/")
        expect(page.locator(".messagelist .success")).to_contain_text(family)

        # ... who logs in on their own device: the live video, no record button.
        other = contexts[1].new_page()
        other.goto(base + "/")
        log_in(other, family, FAMILY_PASSWORD)
        other.wait_for_url(base + "/")
        expect(other.get_by_test_id("state")).to_have_text("live", timeout=20_000)
        other.wait_for_function(playing("[data-testid=video]"), timeout=20_000)
        expect(other.get_by_test_id("record-button")).to_have_count(0)
        expect(other.get_by_test_id("details")).to_have_count(0)  # no technical panel
        expect(other.get_by_role("link", name="Admin")).to_have_count(0)
        tour.shot(other, "07-family-watching")
        # and they find the recordings too, to play, not to delete
        other.goto(base + "/recordings/")
        theirs = other.locator(f"[data-testid=recording-card][data-id='{rec_id}']")
        expect(theirs.get_by_test_id("recording-name")).to_have_text(title, timeout=10_000)
        expect(theirs.get_by_test_id("recording-open")).to_be_visible()
        expect(other.get_by_test_id("recording-delete")).to_have_count(0)
    finally:
        for context in contexts:
            context.close()


def test_the_readme_shows_the_tour_pictures():
    """The README's quick tour names pictures this test made, small enough to keep in git."""
    readme = (ROOT / "README.md").read_text()
    named = re.findall(r'src="(docs/tour/[^"]+)"', readme)
    assert len(named) >= 12, named  # six steps, a laptop and a phone each
    for name in named:
        path = ROOT / name
        assert path.is_file(), f"README shows {name}, which is not there"
        assert path.stat().st_size < 120_000, f"{name} is {path.stat().st_size} bytes"
        assert re.fullmatch(r"docs/tour/(desktop|phone)-\d\d-[a-z-]+\.jpg", name), name
    assert sum(p.stat().st_size for p in (ROOT / "docs/tour").iterdir()) < 1_500_000
