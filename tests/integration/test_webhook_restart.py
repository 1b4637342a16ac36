"""A webhook delivery survives the site's stop: the real simulator's pet fires a rule whose
webhook answers 500 first; the site stops (SIGTERM) while the delivery waits 10 s for
its retry; nothing more is sent while it is down; the site starts again on the same database
and the delivery arrives, exactly once, with the same X-Petcam-Delivery id as the failed
attempt, signed with the rule's secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from tests.support.processes import pick_free_port, site_env, start_site, wait_for
from tests.support.webhook_receiver import Receiver
from tests.support.webrtc_client import create_event_rule, running_site, simulated_camera

SECRET = "s3cret-s3cret-s3cret"


def by_type(receiver: Receiver, kind: str) -> list[tuple[dict, bytes, int]]:
    return [(headers, body, status) for (headers, body), status
            in zip(receiver.requests, receiver.answered, strict=True)
            if json.loads(body)["type"] == f"event.{kind}"]


def test_a_delivery_cut_by_a_stop_arrives_once_after_the_restart(tmp_path):
    receiver = Receiver([500])  # the first request fails, every later one succeeds
    env = site_env(tmp_path, PETCAM_WEBHOOK_ALLOW_LOCAL="1", PETCAM_WEBHOOK_BACKOFF_SECONDS="10",
                   PETCAM_EVENT_END_SECONDS="60", PETCAM_EVENT_RULES_REFRESH_SECONDS="0.3")
    try:
        with running_site(env, tmp_path / "logs") as site:
            create_event_rule(site.base, site.token, camera="default", classes=["cat"],
                              min_confidence=0.8, webhook_url=receiver.url,
                              webhook_secret=SECRET)
            with simulated_camera(site, "--bitrate", "300", "--detect-fps", "15"):
                wait_for(lambda: by_type(receiver, "started"), 20, "the first attempt")
                failed_at = time.monotonic()
                assert site.proc.stop() == 0, site.proc.log_tail()  # the retry is due in 10 s
        stopped = time.monotonic() - failed_at
        print(f"\nthe site stopped {stopped:.1f} s after the failed attempt")
        assert [status for _, _, status in by_type(receiver, "started")] == [500], (
            f"the retry came before the stop ended ({stopped:.1f} s): a slower stop than "
            "this test allows for")
        # Down: the retry's time passes and nothing is sent.
        time.sleep(max(0.0, 12 - (time.monotonic() - failed_at)))
        assert [status for _, _, status in by_type(receiver, "started")] == [500]

        again = start_site(env, pick_free_port(), tmp_path / "logs2")
        try:
            wait_for(lambda: len(by_type(receiver, "started")) == 2, 20,
                     "the retry after the restart")
            # The event the stop ended has its own delivery: sent once, too.
            wait_for(lambda: by_type(receiver, "ended"), 20, "the end's delivery")
            time.sleep(2)  # more resume passes: nothing is sent twice
        finally:
            assert again.stop() == 0, again.log_tail()
    finally:
        receiver.close()

    started, ended = by_type(receiver, "started"), by_type(receiver, "ended")
    assert [status for _, _, status in started] == [500, 200] and len(ended) == 1
    ids = [headers["X-Petcam-Delivery"] for headers, _, _ in started]
    assert ids[0] == ids[1] and ended[0][0]["X-Petcam-Delivery"] != ids[0]
    for headers, body, _ in started + ended:
        stamp = headers["X-Petcam-Timestamp"]
        mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        assert headers["X-Petcam-Signature"] == "sha256=" + mac.hexdigest()
    assert started[0][1] == started[1][1]  # the same body, byte for byte
