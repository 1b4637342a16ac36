"""The portal in the browser's language and time zone (issue 17), in a real headless
Chromium set to Japanese (locale ja-JP, Asia/Tokyo): the login page, the navigation, the
live page's state line (from the JS catalog at /jsi18n/) and the account page's time zone
are Japanese / Tokyo's without anybody choosing them; choosing Russian on the account page
switches the next page. Screenshot: test-artifacts/i18n-live-ja.png.

A zone chosen on the account page also rules the times the scripts write (petcam/zone.js):
with the browser in Tokyo and the account in New York, the recordings list and the
playback page's day strip are New York's, midnight to midnight across a DST change.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import launch, screenshot
from tests.support.processes import Client, start_install, start_simulator

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("i18n")
    install = start_install(tmp)
    sim = start_simulator(install.env, tmp / "logs", "--width", "640", "--height", "360")
    try:
        yield install
    finally:
        sim.stop()
        install.site.stop()


def test_japanese_browser_sees_japanese_pages_and_its_time_zone(site):
    with sync_playwright() as pw:
        browser = launch(pw)
        context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo",
                                      viewport={"width": 1366, "height": 768})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(site.base + "/")
        page.get_by_label("ユーザー名").fill(site.username)
        page.get_by_label("パスワード").fill(site.password)
        page.get_by_role("button", name="ログイン").click()
        page.wait_for_url(site.base + "/")

        expect(page.locator("html")).to_have_attribute("lang", "ja")
        expect(page.get_by_role("button", name="ログアウト")).to_be_visible()
        # the state line, written by live/player.js through gettext()
        expect(page.get_by_test_id("state")).to_have_text("ライブ", timeout=30_000)
        expect(page.get_by_test_id("snapshot-button")).to_have_attribute(
            "aria-label", "スナップショットを保存")
        screenshot(page, "i18n-live-ja")

        # app_shell.js told the server the browser's zone: server-written times use it
        page.goto(site.base + "/account/")
        expect(page.get_by_test_id("pref-now")).to_have_text(
            "このページの時刻は Asia/Tokyo で表示されます。")

        # the account page's choice beats the browser's language
        page.get_by_test_id("pref-language").select_option("ru")
        page.get_by_test_id("pref-save").click()
        expect(page.get_by_role("button", name="Выйти")).to_be_visible()
        page.goto(site.base + "/")
        expect(page.get_by_test_id("state")).to_have_text("в эфире", timeout=30_000)
        assert not errors, errors
        browser.close()


def test_the_account_page_zone_is_the_scripts_zone_too(site):
    client = Client(site.base)
    client.login(site.username, site.password)
    rec = client.record(1.0, "zone check")
    zone = "America/New_York"
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_context(locale="en-US", timezone_id="Asia/Tokyo").new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(site.base + "/account/")
        page.get_by_label("Username").fill(site.username)
        page.get_by_label("Password").fill(site.password)
        page.get_by_role("button", name="Log in").click()
        page.get_by_test_id("pref-language").select_option("")  # the test above chose ru
        page.get_by_test_id("pref-time-zone").select_option(zone)
        page.get_by_test_id("pref-save").click()
        expect(page.get_by_test_id("pref-now")).to_have_text(
            f"Times on these pages are shown in {zone}.")
        expect(page.locator("html")).to_have_attribute("data-time-zone", zone)

        # the recordings list writes the start in New York's time, not the browser's
        page.goto(site.base + "/recordings/")
        card = page.locator(f"[data-testid=recording-card][data-id='{rec['id']}']")
        expect(card).to_be_visible(timeout=15_000)
        shown = {where: page.evaluate(
            """([iso, zone]) => new Date(iso).toLocaleString([], {dateStyle: "medium",
                   timeStyle: "medium", timeZone: zone})""", [rec["started_at"], where])
            for where in (zone, "Asia/Tokyo")}
        assert shown[zone] != shown["Asia/Tokyo"]
        expect(card).to_contain_text(shown[zone])
        expect(card).not_to_contain_text(shown["Asia/Tokyo"])

        # the day strip spans New York's day of the recording
        page.goto(f"{site.base}/recordings/{rec['id']}/")
        strip = page.wait_for_function("() => window.petcamPlayback.dayStrip",
                                       timeout=15_000).json_value()
        began = datetime.fromisoformat(rec["started_at"]).astimezone(ZoneInfo(zone))
        midnight = began.replace(hour=0, minute=0, second=0, microsecond=0)
        assert datetime.fromisoformat(strip["day"].replace("Z", "+00:00")) == midnight

        # midnights across New York's DST start (8 March 2026: a 23-hour day)
        days, offsets = page.evaluate("""async () => {
            const {midnightIn, offsetAt} = await import("/static/petcam/zone.js");
            const noon = new Date("2026-03-08T17:00:00Z");
            return [[-1, 0, 1].map((d) => midnightIn(noon, d).toISOString()),
                    ["2026-01-15T12:00:00.750Z", "2026-07-15T12:00:00Z"].map(
                        (iso) => offsetAt(Date.parse(iso)) / 3600000)]; }""")
        assert days == ["2026-03-07T05:00:00.000Z", "2026-03-08T05:00:00.000Z",
                        "2026-03-09T04:00:00.000Z"]
        assert offsets == [-5, -4]  # EST, EDT: the day strip's ticks sit on these hours
        assert not errors, errors
        browser.close()
