"""The account page's "Phone notifications" section in a real headless Chromium, under
the site's Content-Security-Policy: a device subscribed through the API shows in the
list and its Remove button deletes it; "Notify this device" asks for permission and
either subscribes this browser (the API then lists it as this one) or, where the browser
has no push service (headless Chromium refuses: "permission denied"), says so on the page.
Then a real event of the simulator's pet is made (a rule, its event with the start
snapshot), and the push message petcam sends for it (events/push.payload), delivered to
the site's service worker through DevTools, shows a notification with the title, body,
the event's link and the event's own snapshot (fetched with the session, as a data: URL
holding exactly the snapshot's bytes). The push protocol itself (VAPID, aes128gcm) is
tested against a local push service (tests/unit/test_event_push.py, tests/integration/
test_push_live.py, test_event_delivery_e2e.py)."""

from __future__ import annotations

import base64
import json
import os
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import expect

from events.push import payload as push_payload
from events.webpush import b64url, public_bytes
from tests.browser.test_browser_csp import Watch, browser, log_in, open_context, site  # noqa: F401
from tests.support.processes import wait_for

pytestmark = pytest.mark.browser


def browser_keys() -> dict:
    key = ec.generate_private_key(ec.SECP256R1())
    return {"p256dh": b64url(public_bytes(key.public_key())), "auth": b64url(os.urandom(16))}


def test_notifications_section(site, browser):  # noqa: F811
    endpoint = f"https://push.example.com/{uuid.uuid4().hex}"
    made = site.call("POST", "/api/push/subscriptions/", {
        "endpoint": endpoint, "keys": browser_keys(), "label": "Kitchen tablet",
        "cameras": ["garden"], "classes": ["cat"], "quiet_start": "22:00",
        "quiet_end": "06:00", "timezone": "Europe/Paris"})
    assert made.status == 201, made.body
    watch = Watch()
    context = open_context(browser, watch)
    context.grant_permissions(["notifications"], origin=site.base)
    page = watch.page(context)
    try:
        page.goto(site.base + "/account/")
        log_in(page, site.base, site.username, site.password, "/account/")
        section = page.get_by_test_id("notifications")
        expect(section.get_by_role("heading", name="Phone notifications")).to_be_visible()
        device = page.get_by_test_id("notify-device").filter(has_text="Kitchen tablet")
        expect(device).to_contain_text("garden · cat · quiet 22:00–06:00")
        watch.check(page, "account page with notifications")

        device.get_by_test_id("notify-remove").click()
        expect(device).to_have_count(0)
        mine = site.call("GET", "/api/push/subscriptions/").json()["results"]
        assert all(row["endpoint"] != endpoint for row in mine)

        page.get_by_test_id("notify-label").fill("Headless")
        page.get_by_test_id("notify-enable").click()
        status = page.get_by_test_id("notify-status")
        expect(status).not_to_be_empty(timeout=15_000)
        rows = site.call("GET", "/api/push/subscriptions/").json()["results"]
        if "will be notified" in status.inner_text():  # this Chromium has a push service
            (row,) = [r for r in rows if r["label"] == "Headless"]
            expect(page.get_by_test_id("notify-device").filter(has_text="(this one)"))\
                .to_have_count(1)
            page.get_by_test_id("notify-disable").click()
            expect(status).to_contain_text("not be notified")
        else:
            expect(status).to_contain_text("could not subscribe")
            assert not any(r["label"] == "Headless" for r in rows)
            expect(page.get_by_test_id("notify-enable")).to_be_enabled()
        print(f"\nheadless Chromium subscribe: {status.inner_text()}")
        page.wait_for_timeout(300)
        assert not watch.problems, watch.problems  # no JS error or CSP refusal meanwhile

        # An event of the pet, with its snapshot; once it ended its picture stays put.
        rule = site.call("POST", "/api/event-rules/", {
            "camera": "default", "name": "notify", "classes": ["cat"], "cooldown_seconds": 0})
        assert rule.status == 201, rule.body
        rule_id = rule.json()["id"]
        try:
            event_id = wait_for(lambda: site.call(
                "GET", f"/api/events/?rule={rule_id}").json()["results"], 30,
                "the rule's event")[-1]["id"]
        finally:
            site.call("DELETE", f"/api/event-rules/{rule_id}/")  # ends its open event
        event = wait_for(lambda: (e := site.call("GET", f"/api/events/{event_id}/").json())
                         ["ended_at"] and e, 30, "the event to end")
        jpeg = site.call("GET", event["snapshot_url"])
        assert jpeg.status == 200 and jpeg.headers["Content-Type"] == "image/jpeg"

        # The service worker's push handler, with petcam's message for that event delivered
        # through DevTools (what a push service would hand the browser, decrypted).
        cdp = context.new_cdp_session(page)
        registrations: list[dict] = []
        cdp.on("ServiceWorker.workerRegistrationUpdated",
               lambda e: registrations.extend(e["registrations"]))
        cdp.send("ServiceWorker.enable")
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        (reg,) = [r for r in registrations if r["scopeURL"] == site.base + "/"][:1]
        payload = push_payload(event, "camera")
        assert payload["image"] == event["snapshot_url"]
        cdp.send("ServiceWorker.deliverPushMessage", {
            "origin": site.base, "registrationId": reg["registrationId"],
            "data": json.dumps(payload)})
        shown = wait_for(lambda: page.evaluate("""async () => {
            const list = await (await navigator.serviceWorker.ready).getNotifications();
            return list.length ? list.map((n) => ({title: n.title, body: n.body, tag: n.tag,
              url: n.data && n.data.url, image: n.image || ""})) : null;
        }"""), 20, "the service worker's notification", interval=0.3)
        assert len(shown) == 1, shown
        image = shown[0].pop("image")
        assert shown == [{"title": "Cat in the camera", "body": payload["body"],
                          "tag": f"petcam-event-{event['id']}",
                          "url": f"/events/#event-{event['id']}"}], shown
        assert image.startswith("data:image/jpeg;base64,"), image[:40]
        assert base64.b64decode(image.split(",", 1)[1]) == jpeg.body  # the event's picture
    finally:
        context.close()
        for row in site.call("GET", "/api/push/subscriptions/").json()["results"]:
            site.call("DELETE", f"/api/push/subscriptions/{row['id']}/")
