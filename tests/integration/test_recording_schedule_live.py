"""A recording schedule end to end: the real site, its worker and the real simulator.

A schedule open all week is stored; the worker starts a "schedule" recording, cuts it
every 1.5 s (PETCAM_SCHEDULE_SEGMENT_SECONDS, tests only) at an IDR into linked
segments; disabling the schedule ends it. Every segment decodes (PyAV, ffprobe) from a
keyframe, and each begins in camera time where the previous one's last frame ends.
"""

from __future__ import annotations

from datetime import datetime

from tests.support.processes import manage, site_env, wait_for
from tests.support.recordings import decode_file, ffprobe
from tests.support.webrtc_client import http, running_site, simulated_camera

CREATE = ("from recordings.models import RecordingSchedule as S; from datetime import time; "
          "S.objects.create(camera='default', days=['mon','tue','wed','thu','fri','sat','sun'],"
          " start=time(0, 0), end=time(23, 59), timezone='UTC', segment_minutes=1)")
DISABLE = ("from recordings.models import RecordingSchedule as S; "
           "S.objects.update(enabled=False)")


def test_a_schedule_records_linked_segments_and_stops_when_disabled(tmp_path):
    env = site_env(tmp_path, PETCAM_SCHEDULE_POLL_SECONDS="0.3",
                   PETCAM_SCHEDULE_SEGMENT_SECONDS="1.5")
    with running_site(env, tmp_path / "logs") as site:
        auth = {"Authorization": f"Bearer {site.token}"}

        def api(path: str) -> dict:
            reply = http("GET", site.base + path, None, auth)
            assert reply.status == 200, reply.body
            return reply.json()

        def finished() -> list[dict] | None:
            rows = [r for r in api("/api/recordings/?camera=default")["results"]
                    if r["status"] != "recording"]
            return rows if len(rows) >= 2 else None

        with simulated_camera(site, "--bitrate", "300", "--gop", "15"):
            manage(env, "shell", "-c", CREATE)
            wait_for(finished, 30, "two finished schedule segments")
            manage(env, "shell", "-c", DISABLE)
            wait_for(lambda: not api("/api/cameras/default/recording/")["recording"], 20,
                     "the scheduled recording to stop")
        rows = sorted(api("/api/recordings/?camera=default")["results"], key=lambda r: r["id"])
    media = tmp_path / "var" / "media"
    assert len(rows) >= 3
    assert all(r["trigger"] == "schedule" and r["status"] == "complete" for r in rows)
    assert [r["previous_segment"] for r in rows] == [None, *[r["id"] for r in rows[:-1]]]
    spans = []
    for row in rows:
        frames, errors, packets = decode_file(media / row["file"])
        assert errors == [] and packets[0].is_keyframe and len(frames) == row["frame_count"]
        assert ffprobe(media / row["file"])["nb_read_frames"] == str(row["frame_count"])
        pts = sorted(float(p.pts * p.time_base) for p in packets)
        spans.append(pts[-1] + (pts[-1] - pts[-2]))  # last frame + one frame duration
    for first, second, span in zip(rows, rows[1:], spans, strict=False):
        gap = (datetime.fromisoformat(second["started_at"])
               - datetime.fromisoformat(first["started_at"])).total_seconds() - span
        assert abs(gap) < 0.01, (first["id"], second["id"], gap)  # no frame lost between
