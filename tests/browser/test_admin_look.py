"""The Django admin in the portal's look, in a real headless Chromium.

Dark like the portal whatever the system's colour scheme (the admin's CSS variables
set by petcam/admin_theme.css, no inline style: the CSP test loads these pages too),
and the recordings list fits a 1366x768 laptop with the filters shown: every column
up to "keep" is on screen, nothing scrolls sideways. Screenshots at 1366x768 and
390x844 (a phone) go to test-artifacts/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import launch, screenshot
from tests.support.processes import (
    Client,
    manage,
    start_install,
    start_simulator,
    stop_install,
    wait_for,
)

pytestmark = pytest.mark.browser

PORTAL_BG = "rgb(17, 20, 24)"  # --bg of petcam/base.css


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("admin-look")
    install = start_install(tmp)
    sim = start_simulator(install.env, tmp / "logs", "--gop", "15")
    try:
        client = Client(install.base)
        client.login(install.username, install.password)
        wait_for(lambda: client.get_json("/api/cameras/default/")[1].get("state") == "live",
                 30, "the camera to go live", interval=0.2)
        client.record(2.0, "")  # untitled: the admin shows "Cat · Fri 20:35 · 2 s"
        client.record(2.0, "A long name for a recording of Mimi asleep on the sofa "
                           "by the window in the afternoon sun")
        sim.stop()
        # An hour-long one with a big file's figures, for the widest duration/size cells.
        manage(install.env, "shell", "-c",
               "from recordings.models import Recording;"
               "r = Recording.objects.order_by('id').first();"
               "r.pk = None; r.duration = 3725.4; r.size_bytes = 12_345_678_901;"
               "r.detection_classes = ['cat', 'dog', 'person']; r.save()")
        yield install
    finally:
        stop_install(install, sim)


def admin_page(browser, install, path: str, **context):
    page = browser.new_context(**context).new_page()
    page.goto(install.base + path)
    page.locator("#id_username").fill(install.username)
    page.locator("#id_password").fill(install.password)
    page.locator("input[type=submit]").click()
    page.wait_for_url(install.base + path)
    return page


def background(page, selector: str) -> str:
    return page.evaluate(f"getComputedStyle(document.querySelector('{selector}'))"
                         ".backgroundColor")


def test_the_recordings_admin_is_dark_and_fits_a_laptop_and_a_phone(site):
    # A light system theme: where the stock admin was white next to the dark portal.
    scheme = "light"
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = admin_page(browser, site, "/admin/recordings/recording/",
                              viewport={"width": 1366, "height": 768}, color_scheme=scheme)
            expect(page.locator("#result_list tbody tr")).to_have_count(3)
            assert background(page, "body") == PORTAL_BG, "the admin is not in the portal's dark"
            assert background(page, "#header") == "rgb(27, 32, 38)"  # --panel
            expect(page.locator("#changelist-filter")).to_be_visible()
            assert page.evaluate("document.scrollingElement.scrollWidth") <= 1366
            # The list scrolls inside its box when too wide: it must not need to. Every
            # column's header is inside that box, with the app list open and closed.
            for sidebar in ("open", "closed"):
                if sidebar == "closed":
                    page.locator("#toggle-nav-sidebar").click()
                results = page.locator(".results")
                widths = page.evaluate(
                    "() => [...document.querySelectorAll('#result_list thead th')].map("
                    "(th) => th.className + ' ' + Math.round(th.getBoundingClientRect().width))"
                    " .concat([document.querySelector('.results').scrollWidth,"
                    " document.querySelector('.results').clientWidth])")
                assert page.evaluate("(e) => e.scrollWidth <= e.clientWidth",
                                     results.element_handle()), (sidebar, widths)
                box = results.bounding_box()
                for column in ("title", "started", "duration_s", "size", "keep"):
                    header = page.locator(f"#result_list th.column-{column}").bounding_box()
                    assert header["x"] + header["width"] <= min(1366, box["x"] + box["width"]), (
                        column, header, box, sidebar)
                if sidebar == "open":
                    screenshot(page, "admin-recordings-desktop")
                else:
                    page.locator("#toggle-nav-sidebar").click()  # as the next test expects
            # human titles, not file names; the long name is cut, not wrapped over rows
            titles = page.locator("#result_list td.field-title, #result_list th.field-title")
            texts = titles.all_text_contents()
            assert any(t.startswith("Cat · ") for t in texts), texts
            assert not any(t.endswith(".mp4") for t in texts), texts
            assert page.locator("#result_list td.field-size").all_text_contents().count(
                "11.5 GB") == 1
            # the index too: the portal's colours, a way back to the portal
            page.goto(site.base + "/admin/")
            assert background(page, "body") == PORTAL_BG
            expect(page.get_by_role("link", name="← Back to the portal")).to_be_visible()

            phone = admin_page(browser, site, "/admin/recordings/recording/",
                               viewport={"width": 390, "height": 844}, is_mobile=True,
                               has_touch=True, device_scale_factor=2, color_scheme=scheme)
            expect(phone.locator("#result_list tbody tr")).to_have_count(3)
            assert background(phone, "body") == PORTAL_BG
            screenshot(phone, "admin-recordings-phone")
        finally:
            browser.close()
