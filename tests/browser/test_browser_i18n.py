"""The portal in the browser's language and time zone (issue 17), in a real headless
Chromium set to Japanese (locale ja-JP, Asia/Tokyo): the login page, the navigation, the
live page's state line (from the JS catalog at /jsi18n/) and the account page's time zone
are Japanese / Tokyo's without anybody choosing them; choosing Russian on the account page
switches the next page. Screenshot: test-artifacts/i18n-live-ja.png.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import launch, screenshot
from tests.support.processes import start_install, start_simulator

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
